import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errors } from '../../errors.js';
import { readLimit, userEntity, type Page } from '../../domain/users.js';
import type { Services } from '../../services.js';
import type { AppRow } from '../../store/store.js';
import { optionalPrincipal, requireAdminOrSelf, requireAppAdmin } from '../auth.js';
import { envelope } from '../envelope.js';

type AppParams = { org: string; app: string };
type UserParams = AppParams & { username: string };

function page(req: FastifyRequest, fallback: number, max: number): Page {
  const q = req.query as Record<string, unknown>;
  const c = Array.isArray(q.cursor) ? q.cursor[0] : q.cursor;
  return { limit: readLimit(q.limit, fallback, max), cursor: typeof c === 'string' && c !== '' ? c : undefined };
}

function objectBody(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw errors.illegalArgument('the request body must be a JSON object');
  return b as Record<string, unknown>;
}

/** IM users (spec §2): register, list, get, update, delete, passwords, status. */
export function userRoutes(app: FastifyInstance, s: Services): void {
  // Read s.config.publicUrl per request: with PORT=0 it only gets its real port once the server listens.
  const appOf = (p: AppParams, rest: string): Promise<AppRow> => s.tenants.app(p.org, p.app, rest);

  app.post<{ Params: AppParams }>('/:org/:app/users', async (req) => {
    const a = await appOf(req.params, 'users');
    const batch = Array.isArray(req.body);
    if (batch || !a.openRegistration) {
      const p = await optionalPrincipal(s, req);
      if (!p && !batch) throw errors.unauthorized('registration is not open, please contact the app admin');
      await requireAppAdmin(s, req, a, '/users');
    }
    const users = await s.users.register(a, req.body);
    return envelope(req, s.config.publicUrl, { action: 'post', app: a, path: '/users', entities: users.map(userEntity), ...(batch ? { data: [] } : {}) });
  });

  app.get<{ Params: AppParams }>('/:org/:app/users', async (req) => {
    const a = await appOf(req.params, 'users');
    await requireAppAdmin(s, req, a, '/users');
    const { users, cursor } = await s.users.list(a, page(req, 10, 100));
    return envelope(req, s.config.publicUrl, { action: 'get', app: a, path: '/users', entities: users.map(userEntity), cursor, count: users.length });
  });

  app.delete<{ Params: AppParams }>('/:org/:app/users', async (req) => {
    const a = await appOf(req.params, 'users');
    await requireAppAdmin(s, req, a, '/users');
    const { users, cursor } = await s.users.deleteOldest(a, page(req, 10, 1000));
    return envelope(req, s.config.publicUrl, { action: 'delete', app: a, path: '/users', entities: users.map(userEntity), cursor, count: users.length });
  });

  // Usergrid also answered one entity under the singular type (`/user/{id}`), as its SDK's
  // entity save/reload/remove address it.
  for (const one of ['/:org/:app/users/:username', '/:org/:app/user/:username']) {
    app.get<{ Params: UserParams }>(one, async (req) => {
      const a = await appOf(req.params, `users/${req.params.username}`);
      await requireAdminOrSelf(s, req, a, req.params.username, '/users');
      const u = await s.users.get(a, req.params.username);
      return envelope(req, s.config.publicUrl, { action: 'get', app: a, path: '/users', entities: [userEntity(u)], count: 1 });
    });

    app.put<{ Params: UserParams }>(one, async (req) => {
      const a = await appOf(req.params, `users/${req.params.username}`);
      await requireAdminOrSelf(s, req, a, req.params.username, '/users');
      const u = await s.users.update(a, req.params.username, req.body);
      return envelope(req, s.config.publicUrl, { action: 'put', app: a, path: '/users', entities: [userEntity(u)] });
    });

    app.delete<{ Params: UserParams }>(one, async (req) => {
      const a = await appOf(req.params, `users/${req.params.username}`);
      await requireAppAdmin(s, req, a, '/users');
      const u = await s.users.delete(a, req.params.username);
      return envelope(req, s.config.publicUrl, { action: 'delete', app: a, path: '/users', entities: [userEntity(u)] });
    });
  }

  app.put<{ Params: UserParams }>('/:org/:app/users/:username/password', async (req) => {
    const a = await appOf(req.params, `users/${req.params.username}/password`);
    const self = await requireAdminOrSelf(s, req, a, req.params.username, '/users');
    // No body at all is a missing newpassword, not a malformed request.
    await s.users.resetPassword(a, req.params.username, req.body === undefined ? {} : objectBody(req), self);
    const now = Date.now();
    return { action: 'set user password', timestamp: now, duration: now - req.startedAt };
  });

  app.get<{ Params: UserParams }>('/:org/:app/users/:username/status', async (req) => {
    const a = await appOf(req.params, `users/${req.params.username}/status`);
    await requireAppAdmin(s, req, a, '/users');
    const u = await s.users.get(a, req.params.username);
    const online = s.realtime.presence.isOnline(a.id, u.username);
    return envelope(req, s.config.publicUrl, { action: 'get', app: a, entities: [], data: { [u.username]: online ? 'online' : 'offline' } });
  });
}
