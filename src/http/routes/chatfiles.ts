import { PassThrough, type Readable } from 'node:stream';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { StagedFile } from '../../domain/files.js';
import { chatFileEntity } from '../../domain/files.js';
import type { Principal } from '../../domain/tokens.js';
import { ApiError, errors } from '../../errors.js';
import type { Services } from '../../services.js';
import type { AppRow } from '../../store/store.js';
import { optionalPrincipal } from '../auth.js';
import { envelope } from '../envelope.js';

type AppParams = { org: string; app: string };
type FileParams = AppParams & { uuid: string };

const FILE_PART = 'file';

/** A header's trimmed value (header names are case-insensitive: node lower-cases them). */
function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined ? undefined : s.trim();
}

/** The share-secret of a download: the header, else the `?share-secret=` query parameter. */
function shareSecret(req: FastifyRequest): string | undefined {
  const h = header(req, 'share-secret');
  if (h !== undefined && h !== '') return h;
  const q = (req.query as Record<string, unknown>)['share-secret'];
  const v = Array.isArray(q) ? q[0] : q;
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Refuses a principal that is neither an admin of the app nor one of its IM users (E1/E2: app users may upload). */
async function requireMember(s: Services, req: FastifyRequest, app: AppRow, p: Principal | null): Promise<void> {
  if (p && p.kind === 'user' && p.app.id === app.id) return;
  if (p && (await s.tenants.canAdminApp(p, app))) return;
  throw errors.noPermission(req.method.toLowerCase(), app.uuid, '/chatfiles');
}

/**
 * Hands a multipart file stream to a consumer without letting the consumer destroy it: busboy
 * stalls the whole request when a file stream it still writes to is destroyed. When the consumer
 * stops early (too large, disk error) the rest of the part is read and dropped, so the parser
 * reaches the end of the body and the answer goes out on a clean connection.
 */
function shielded(file: Readable): Readable {
  const pass = new PassThrough();
  file.on('error', (e: Error) => pass.destroy(errors.illegalArgument(`the multipart body is malformed or was cut short: ${e.message}`)));
  file.pipe(pass);
  pass.on('close', () => {
    if (file.readableEnded) return;
    file.unpipe(pass);
    file.resume();
  });
  return pass;
}

/** Errors of the multipart parser itself (bad framing, missing boundary, limits) as the client should see them. */
function multipartError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const code = (e as { code?: unknown }).code;
  if (code === 'FST_PARTS_LIMIT' || code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT') return errors.tooLarge();
  const msg = e instanceof Error ? e.message : String(e);
  return errors.illegalArgument(`the multipart body could not be read: ${msg}`);
}

/** Chat files (spec §6): multipart upload, download with share-secret, thumbnails. */
export function chatFileRoutes(app: FastifyInstance, s: Services): void {
  // Encapsulated: the multipart parser exists only for these routes.
  void app.register(async (scope) => {
    await scope.register(multipart, {
      // One byte over the limit reaches the file service, which refuses it (413) and keeps nothing.
      limits: { fileSize: s.config.fileMaxBytes + 1, files: 8, fields: 64, fieldSize: 64 * 1024, parts: 100, headerPairs: 100 },
      throwFileSizeLimit: false,
      // The PHP example sends the file as a plain form field (no filename, no Content-Type).
      isPartAFile: (name, type, filename) => name === FILE_PART || filename !== undefined || type === 'application/octet-stream',
    });

    scope.post<{ Params: AppParams }>('/:org/:app/chatfiles', {
      preParsing: async (req) => {
        if (!req.declaredType?.trim().toLowerCase().startsWith('multipart/form-data')) {
          throw errors.illegalArgument('a chat file is uploaded as multipart/form-data, the file in a part named file');
        }
      },
    }, async (req) => {
      const a = await s.tenants.app(req.params.org, req.params.app, 'chatfiles');
      await requireMember(s, req, a, await optionalPrincipal(s, req));
      const fields = new Map<string, string>();
      let staged: StagedFile | null = null;
      let failure: Error | null = null;
      try {
        for await (const part of req.parts()) {
          if (part.type === 'field') {
            if (typeof part.value === 'string' && !fields.has(part.fieldname)) fields.set(part.fieldname, part.value);
          } else if (part.fieldname !== FILE_PART || staged !== null || failure !== null) {
            part.file.resume();
          } else {
            try {
              staged = await s.files.stage(shielded(part.file), part.mimetype);
            } catch (e) {
              // Keep reading to the end of the body, so the answer is not cut off.
              failure = e as Error;
            }
          }
        }
      } catch (e) {
        failure ??= multipartError(e);
      }
      if (failure !== null) {
        req.raw.resume();
        if (staged) await s.files.discard(staged);
        throw failure;
      }
      if (staged === null) throw errors.illegalArgument('the multipart body has no part named file');
      const row = await s.files.commit(a, staged, { restrictAccess: header(req, 'restrict-access'), fields });
      return envelope(req, s.config.publicUrl, { action: 'post', app: a, path: '/chatfiles', entities: [chatFileEntity(row)] });
    });

    scope.get<{ Params: FileParams }>('/:org/:app/chatfiles/:uuid', async (req, reply) => {
      const a = await s.tenants.app(req.params.org, req.params.app, `chatfiles/${req.params.uuid}`);
      const p = await optionalPrincipal(s, req);
      if (p) await requireMember(s, req, a, p);
      const content = await s.files.open(a, req.params.uuid, {
        authenticated: p !== null,
        secret: shareSecret(req),
        thumbnail: header(req, 'thumbnail')?.toLowerCase() === 'true',
      });
      return reply.header('content-length', content.size).type(content.contentType).send(content.body);
    });
  });
}
