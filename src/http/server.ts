import Fastify, { LogController, type FastifyInstance, type FastifyRequest } from 'fastify';
import { ApiError, errors } from '../errors.js';
import type { Services } from '../services.js';
import { installCors } from './cors.js';
import { clientErrorHandler, frameworkErrorHandler, installErrorHandling, JSON_TYPE } from './errors.js';
import { chatFileRoutes } from './routes/chatfiles.js';
import { chatMessageRoutes } from './routes/chatmessages.js';
import { groupRoutes } from './routes/groups.js';
import { contactRoutes } from './routes/contacts.js';
import { managementRoutes } from './routes/management.js';
import { messageRoutes } from './routes/messages.js';
import { statusRoutes } from './routes/status.js';
import { tokenRoutes } from './routes/tokens.js';
import { userLifecycleRoutes } from './routes/user-lifecycle.js';
import { userRoutes } from './routes/users.js';

const BODY_TYPE = 'application/json';

/**
 * Reads a request body. Easemob clients send JSON under every Content-Type (form-urlencoded,
 * text/plain, none at all), so the body is JSON whatever is declared; a real form body
 * (`a=b&c=d`, as OAuth token requests may send) is read as a form.
 */
export function parseBody(req: FastifyRequest, raw: Buffer): unknown {
  const text = raw.toString('utf8').replace(/^\uFEFF/, '');
  if (text.trim() === '') return undefined;
  const declared = req.declaredType?.toLowerCase() ?? '';
  const first = text.trimStart()[0];
  if (declared.startsWith('application/x-www-form-urlencoded') && first !== '{' && first !== '[') {
    return Object.fromEntries(new URLSearchParams(text));
  }
  // Deeper documents would overflow the stack of whatever walks them later (JSON.stringify, validators).
  if (tooDeep(text)) throw errors.jsonParse(`Document nesting depth exceeds the maximum allowed (${MAX_NESTING})`);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw errors.jsonParse(describeJsonError(text, e));
  }
}

// Jackson's default limit, which Easemob's parser had.
const MAX_NESTING = 1000;

/** True when objects and arrays nest deeper than MAX_NESTING (brackets inside strings do not count). */
function tooDeep(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_NESTING) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

// JSON.parse's message names a position; Easemob's Jackson message named line and column.
function describeJsonError(text: string, e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /position (\d+)/.exec(msg);
  if (!m) return `${msg}`;
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  const ch = text[pos];
  const shown = ch === undefined ? 'end of input' : `'${ch}' (code ${ch.codePointAt(0)})`;
  return `Unexpected character (${shown}): ${msg}\n at [line: ${line}, column: ${column}]`;
}

/** Builds the HTTP app (routes, parsers, the one error path) over the services. */
export function buildServer(s: Services): FastifyInstance {
  const app = Fastify({
    logger: { level: s.config.logLevel },
    // Per-request lines would cost more than a message send; onResponse logs them at debug level.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: s.config.bodyMaxBytes,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 1024 },
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
    // Refused through the one error path instead (Easemob body and content type), see below.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
  });

  // While stopping, requests already received finish; new ones on open connections get a 503.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.decorateRequest('startedAt', 0);
  app.decorateRequest('declaredType', undefined);
  // Hooks on every request are callback-style: an async hook costs a promise per request.
  app.addHook('onRequest', (req, _reply, done) => {
    req.startedAt = Date.now();
    const declared = req.headers['content-type'];
    req.declaredType = declared;
    if (!declared?.toLowerCase().trimStart().startsWith('multipart/')) {
      // One parser reads every non-multipart body as JSON (see parseBody).
      req.headers['content-type'] = BODY_TYPE;
    }
    done(closing ? new ApiError(503, 'service_unavailable', 'Service Unavailable') : undefined);
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(BODY_TYPE, { parseAs: 'buffer' }, (req, body, done) => {
    try {
      done(null, parseBody(req, body as Buffer));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  app.addHook('onSend', (_req, reply, payload, done) => {
    // A client must not reuse a connection of a server that is stopping.
    if (closing) reply.header('connection', 'close');
    const t = reply.getHeader('content-type');
    if (reply.statusCode !== 204 && (t === undefined || String(t).startsWith('application/json'))) reply.header('content-type', JSON_TYPE);
    done(null, payload);
  });
  if (['debug', 'trace'].includes(s.config.logLevel)) {
    app.addHook('onResponse', (req, reply, done) => {
      req.log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: Date.now() - req.startedAt }, 'request');
      done();
    });
  }
  installErrorHandling(app);
  installCors(app, s.config.corsOrigins);

  statusRoutes(app, s);
  managementRoutes(app, s);
  tokenRoutes(app, s);
  userRoutes(app, s);
  userLifecycleRoutes(app, s);
  contactRoutes(app, s);
  messageRoutes(app, s);
  groupRoutes(app, s, 'group');
  groupRoutes(app, s, 'room');
  chatMessageRoutes(app, s);
  chatFileRoutes(app, s);
  return app;
}
