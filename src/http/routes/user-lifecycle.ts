import type { FastifyInstance, FastifyRequest } from 'fastify';
import { userEntity } from '../../domain/users.js';
import type { Services } from '../../services.js';
import type { AppRow } from '../../store/store.js';
import { requireAppAdmin } from '../auth.js';
import { envelope } from '../envelope.js';

type UserParams = { org: string; app: string; username: string };

/** Account lifecycle and offline messages of an IM user (spec §2.2); app admins only. */
export function userLifecycleRoutes(app: FastifyInstance, s: Services): void {
  const user = '/:org/:app/users/:username';

  const authorize = async (req: FastifyRequest<{ Params: UserParams }>, rest: string): Promise<AppRow> => {
    const a = await s.tenants.app(req.params.org, req.params.app, `users/${req.params.username}/${rest}`);
    await requireAppAdmin(s, req, a, '/users');
    return a;
  };

  app.post<{ Params: UserParams }>(`${user}/deactivate`, async (req) => {
    const a = await authorize(req, 'deactivate');
    const u = await s.users.setActivated(a, req.params.username, false);
    return envelope(req, s.config.publicUrl, { action: 'Deactivate user', app: a, path: '/users', entities: [userEntity(u)] });
  });

  app.post<{ Params: UserParams }>(`${user}/activate`, async (req) => {
    const a = await authorize(req, 'activate');
    await s.users.setActivated(a, req.params.username, true);
    return envelope(req, s.config.publicUrl, { action: 'activate user', app: a, path: '/users' });
  });

  // Closes the user's connections on every node ("User removed"); the user may log in again.
  app.get<{ Params: UserParams }>(`${user}/disconnect`, async (req) => {
    const a = await authorize(req, 'disconnect');
    await s.users.disconnect(a, req.params.username);
    return envelope(req, s.config.publicUrl, { action: 'Disconnect user', app: a, path: '/users', data: { result: true } });
  });

  // Easemob answered this one with only action, uri, entities, data, timestamp and duration.
  app.get<{ Params: UserParams }>(`${user}/offline_msg_count`, async (req) => {
    const a = await authorize(req, 'offline_msg_count');
    const { user: u, count } = await s.users.offlineMessageCount(a, req.params.username);
    const uri = `${s.config.publicUrl}/${a.orgName}/${a.name}/users/${u.username}/offline_msg_count`;
    return envelope(req, s.config.publicUrl, { action: 'get', uri, noParams: true, entities: [], data: { [u.username]: count } });
  });

  app.get<{ Params: UserParams & { msgId: string } }>(`${user}/offline_msg_status/:msgId`, async (req) => {
    const a = await authorize(req, `offline_msg_status/${req.params.msgId}`);
    const status = await s.users.offlineMessageStatus(a, req.params.username, req.params.msgId);
    return envelope(req, s.config.publicUrl, { action: 'get', app: a, entities: [], data: { [req.params.msgId]: status } });
  });
}
