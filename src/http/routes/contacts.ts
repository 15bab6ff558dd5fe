import type { FastifyInstance, FastifyRequest } from 'fastify';
import { userEntity } from '../../domain/users.js';
import type { Services } from '../../services.js';
import type { AppRow } from '../../store/store.js';
import { requireAdminOrSelf } from '../auth.js';
import { envelope } from '../envelope.js';

type OwnerParams = { org: string; app: string; owner: string };
type PairParams = OwnerParams & { other: string };

/** Friends and user block lists (spec §2.2). An IM user may read and change its own. */
export function contactRoutes(app: FastifyInstance, s: Services): void {
  const contacts = '/:org/:app/users/:owner/contacts/users';
  const blocks = '/:org/:app/users/:owner/blocks/users';

  // The app of the path, once the token may act for the owner; `rest` is the path below the app.
  const authorize = async (req: FastifyRequest<{ Params: OwnerParams }>, rest: string): Promise<AppRow> => {
    const a = await s.tenants.app(req.params.org, req.params.app, rest);
    await requireAdminOrSelf(s, req, a, req.params.owner, '/users');
    return a;
  };
  const contactsPath = (p: OwnerParams) => `/users/${p.owner}/contacts/users`;
  const blocksPath = (p: OwnerParams) => `/users/${p.owner}/blocks/users`;

  app.get<{ Params: OwnerParams }>(contacts, async (req) => {
    const path = contactsPath(req.params);
    const a = await authorize(req, path.slice(1));
    const names = await s.contacts.list(a, req.params.owner);
    return envelope(req, s.config.publicUrl, { action: 'get', app: a, path, entities: [], data: names, count: names.length });
  });

  app.post<{ Params: PairParams }>(`${contacts}/:other`, async (req) => {
    const path = `${contactsPath(req.params)}/${req.params.other}`;
    const a = await authorize(req, path.slice(1));
    const friend = await s.contacts.add(a, req.params.owner, req.params.other);
    return envelope(req, s.config.publicUrl, { action: 'post', app: a, path, entities: [userEntity(friend)] });
  });

  app.delete<{ Params: PairParams }>(`${contacts}/:other`, async (req) => {
    const path = `${contactsPath(req.params)}/${req.params.other}`;
    const a = await authorize(req, path.slice(1));
    const friend = await s.contacts.remove(a, req.params.owner, req.params.other);
    return envelope(req, s.config.publicUrl, { action: 'delete', app: a, path, entities: [userEntity(friend)] });
  });

  // Easemob answered this one with only action, uri, entities, data, timestamp and duration.
  app.get<{ Params: OwnerParams }>(blocks, async (req) => {
    const path = blocksPath(req.params);
    const a = await authorize(req, path.slice(1));
    const names = await s.contacts.blocks(a, req.params.owner);
    const uri = `${s.config.publicUrl}/${a.orgName}/${a.name}${path}`;
    return envelope(req, s.config.publicUrl, { action: 'get', uri, noParams: true, entities: [], data: names });
  });

  app.post<{ Params: OwnerParams }>(blocks, async (req) => {
    const path = blocksPath(req.params);
    const a = await authorize(req, path.slice(1));
    const names = await s.contacts.block(a, req.params.owner, req.body);
    return envelope(req, s.config.publicUrl, { action: 'post', app: a, path, entities: [], data: names });
  });

  app.delete<{ Params: PairParams }>(`${blocks}/:other`, async (req) => {
    const path = `${blocksPath(req.params)}/${req.params.other}`;
    const a = await authorize(req, path.slice(1));
    const unblocked = await s.contacts.unblock(a, req.params.owner, req.params.other);
    return envelope(req, s.config.publicUrl, { action: 'delete', app: a, path, entities: [userEntity(unblocked)] });
  });
}
