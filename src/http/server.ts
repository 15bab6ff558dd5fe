import Fastify, { LogController, type FastifyInstance, type FastifyRequest } from 'fastify';
import { errors } from '../errors.js';
import type { Services } from '../services.js';
import { clientErrorHandler, installErrorHandling, JSON_TYPE } from './errors.js';
import { chatMessageRoutes } from './routes/chatmessages.js';
import { managementRoutes } from './routes/management.js';
import { messageRoutes } from './routes/messages.js';
import { statusRoutes } from './routes/status.js';
import { tokenRoutes } from './routes/tokens.js';
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
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw errors.jsonParse(describeJsonError(text, e));
  }
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
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  app.decorateRequest('startedAt', 0);
  app.decorateRequest('declaredType', undefined);
  app.addHook('onRequest', async (req) => {
    req.startedAt = Date.now();
    const declared = req.headers['content-type'];
    req.declaredType = declared;
    if (!declared?.toLowerCase().trimStart().startsWith('multipart/')) {
      // One parser reads every non-multipart body as JSON (see parseBody).
      req.headers['content-type'] = BODY_TYPE;
    }
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(BODY_TYPE, { parseAs: 'buffer' }, (req, body, done) => {
    try {
      done(null, parseBody(req, body as Buffer));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    const t = reply.getHeader('content-type');
    if (t === undefined || String(t).startsWith('application/json')) reply.header('content-type', JSON_TYPE);
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    req.log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: Date.now() - req.startedAt }, 'request');
  });
  installErrorHandling(app);

  statusRoutes(app, s);
  managementRoutes(app, s);
  tokenRoutes(app, s);
  userRoutes(app, s);
  messageRoutes(app, s);
  chatMessageRoutes(app, s);
  return app;
}
