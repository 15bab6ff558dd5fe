import type { FastifyInstance } from 'fastify';

/** Which origins may call the API from a browser: every one, or these (exact `scheme://host[:port]`). */
export type CorsOrigins = '*' | string[];

// Headers the browser SDKs send besides the simple ones (file uploads and downloads add theirs).
const ALLOWED_HEADERS = 'authorization, content-type, accept, share-secret, thumbnail, restrict-access, x-requested-with';
const EXPOSED_HEADERS = 'content-disposition, content-length, retry-after';
const METHODS = 'GET, POST, PUT, DELETE, OPTIONS';

/**
 * CORS for browser clients. Authorization is by bearer token, never by cookie, so any origin may
 * be allowed safely (the default); credentials are not allowed. A preflight `OPTIONS` of any path
 * is answered 204 (with the CORS headers only for an allowed origin).
 */
export function installCors(app: FastifyInstance, origins: CorsOrigins): void {
  const allowed = (origin: string): boolean => origins === '*' || origins.includes(origin);
  app.addHook('onRequest', (req, reply, done) => {
    const origin = req.headers.origin;
    if (typeof origin === 'string' && allowed(origin)) {
      reply.header('access-control-allow-origin', origins === '*' ? '*' : origin);
      reply.header('access-control-expose-headers', EXPOSED_HEADERS);
    }
    if (origins !== '*') reply.header('vary', 'Origin');
    done();
  });
  app.options('*', (req, reply) => {
    const origin = req.headers.origin;
    if (typeof origin === 'string' && allowed(origin)) {
      const asked = req.headers['access-control-request-headers'];
      reply.header('access-control-allow-methods', METHODS);
      reply.header('access-control-allow-headers', typeof asked === 'string' && asked.trim() !== '' ? asked : ALLOWED_HEADERS);
      reply.header('access-control-max-age', '86400');
    }
    reply.code(204).send();
  });
}
