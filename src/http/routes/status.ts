import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { VERSION } from '../../version.js';

/** `GET /status`: answers once the server accepts requests. */
export function statusRoutes(app: FastifyInstance, s: Services): void {
  const started = Date.now();
  app.get('/status', async () => ({
    status: 'ok',
    version: VERSION,
    store: s.store.kind,
    uptime: Math.floor((Date.now() - started) / 1000),
    timestamp: Date.now(),
  }));
}
