import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bodyUsernames, type GroupDetail, type UserResult } from '../../domain/groups.js';
import { readLimit, type Page } from '../../domain/users.js';
import { errors } from '../../errors.js';
import type { Services } from '../../services.js';
import type { AppRow, GroupKind, GroupMember, GroupRow } from '../../store/store.js';
import { requireAppAdmin } from '../auth.js';
import { envelope } from '../envelope.js';

type Json = Record<string, unknown>;
type AppParams = { org: string; app: string };
type GroupParams = AppParams & { id: string };
type MemberParams = GroupParams & { username: string };

/** What a handler answers: the envelope's `data`, and `count`/`cursor` for lists. */
interface Answer {
  data: unknown;
  count?: number;
  cursor?: string | undefined;
}

/** How one kind looks on the wire (spec §3.2 for groups, §3.3 for chat rooms). */
interface Shape {
  collection: 'chatgroups' | 'chatrooms';
  idKey: 'groupid' | 'id';
  /** The largest `limit` of a paged list. */
  maxLimit: number;
  listItem(g: GroupRow, app: AppRow, paged: boolean): Json;
  joinedItem(g: GroupRow): Json;
}

const SHAPES: Record<GroupKind, Shape> = {
  group: {
    collection: 'chatgroups',
    idKey: 'groupid',
    maxLimit: 100,
    listItem: (g, app, paged) => ({
      groupid: g.groupId, groupname: g.name, owner: `${app.orgName}#${app.name}_${g.owner}`, affiliations: g.memberCount,
      ...(paged ? { type: 'group', last_modified: String(g.modified) } : {}),
    }),
    joinedItem: (g) => ({ groupid: g.groupId, groupname: g.name }),
  },
  room: {
    collection: 'chatrooms',
    idKey: 'id',
    maxLimit: 1000,
    listItem: (g) => ({ id: g.groupId, name: g.name, owner: g.owner, affiliations_count: g.memberCount }),
    joinedItem: (g) => ({ id: g.groupId, name: g.name }),
  },
};

/** The details view of §3.1 (chat rooms answer the same fields). */
function detail(d: GroupDetail): Json {
  const g = d.group;
  return {
    id: g.groupId, name: g.name, description: g.description, public: g.public, membersonly: g.membersOnly,
    allowinvites: g.allowInvites, maxusers: g.maxUsers, created: g.created, affiliations_count: g.memberCount,
    affiliations: d.members.map((m) => (m.owner ? { owner: m.username } : { member: m.username })),
  };
}

/** `GET .../users` lists the members first and the owner last, as Easemob answered. */
function memberList(members: GroupMember[]): Json[] {
  return [...members.filter((m) => !m.owner).map((m) => ({ member: m.username })), ...members.filter((m) => m.owner).map((m) => ({ owner: m.username }))];
}

/** Comma-separated ids or usernames of a path segment (`/users/u1,u2`). */
function segmentList(v: string): string[] {
  const out = v.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (out.length === 0) throw errors.illegalArgument('the path names no one');
  return out;
}

/** Paging of a list: null (every group) unless `limit` or `cursor` is given. */
function pageOf(req: FastifyRequest, max: number): Page | null {
  const q = req.query as Record<string, unknown>;
  const c = Array.isArray(q.cursor) ? q.cursor[0] : q.cursor;
  const cursor = typeof c === 'string' && c !== '' ? c : undefined;
  if (q.limit === undefined && cursor === undefined) return null;
  return { limit: readLimit(q.limit, 10, max), cursor };
}

/** Chat groups (spec §3.1, §3.2) or chat rooms (§3.3): one set of routes per kind. */
export function groupRoutes(app: FastifyInstance, s: Services, kind: GroupKind): void {
  const shape = SHAPES[kind];
  const base = `/:org/:app/${shape.collection}`;
  const collection = `/${shape.collection}`;
  const g = s.groups;

  const userResult = (action: string, gid: string, r: UserResult): Json => ({
    result: r.result, action, [shape.idKey]: gid, user: r.user, ...(r.reason !== undefined ? { reason: r.reason } : {}),
  });
  // A request naming one user answers one object (and a refusal is an error); several, an array.
  const oneOrMany = (action: string, gid: string, results: UserResult[], single: boolean): unknown => {
    const [first] = results;
    if (!single) return results.map((r) => userResult(action, gid, r));
    if (first && !first.result) throw errors.forbiddenOp(first.reason ?? 'forbidden operation');
    return userResult(action, gid, first!);
  };

  /** Resolves the app, checks the admin token, and wraps the handler's answer in the envelope. */
  const handle = <P extends AppParams>(authPath: string, run: (req: FastifyRequest<{ Params: P }>, a: AppRow) => Promise<Answer>) =>
    async (req: FastifyRequest<{ Params: P }>) => {
      const path = req.url.split('?')[0]!.replace(/\/{2,}/g, '/').replace(/(.)\/$/, '$1');
      const p = req.params as AppParams; // P extends AppParams; fastify's mapped type hides it
      const a = await s.tenants.app(p.org, p.app, path.split('/').slice(3).join('/'));
      await requireAppAdmin(s, req, a, authPath);
      const { data, count, cursor } = await run(req, a);
      return envelope(req, s.config.publicUrl, {
        action: req.method.toLowerCase(), app: a, path: authPath, uri: s.config.publicUrl + path, entities: [], data, count, cursor,
      });
    };

  app.post<{ Params: AppParams }>(base, handle(collection, async (req, a) => ({
    data: { [shape.idKey]: (await g.create(a, kind, req.body)).groupId },
  })));

  app.get<{ Params: AppParams }>(base, handle(collection, async (req, a) => {
    const page = pageOf(req, shape.maxLimit);
    const { groups, cursor } = await g.list(a, kind, page);
    return { data: groups.map((x) => shape.listItem(x, a, page !== null)), count: groups.length, cursor };
  }));

  app.get<{ Params: GroupParams }>(`${base}/:id`, handle(collection, async (req, a) => {
    const details = await g.details(a, kind, segmentList(req.params.id));
    return { data: details.map(detail), count: details.length };
  }));

  app.put<{ Params: GroupParams }>(`${base}/:id`, handle(collection, async (req, a) => {
    const keys = await g.update(a, kind, req.params.id, req.body);
    return { data: Object.fromEntries(keys.map((k) => [k, true])) };
  }));

  app.delete<{ Params: GroupParams }>(`${base}/:id`, handle(collection, async (req, a) => ({
    data: { success: true, [shape.idKey]: (await g.delete(a, kind, req.params.id)).groupId },
  })));

  app.get<{ Params: GroupParams }>(`${base}/:id/users`, handle(collection, async (req, a) => {
    const members = await g.members(a, kind, req.params.id);
    return { data: memberList(members), count: members.length };
  }));

  app.post<{ Params: GroupParams }>(`${base}/:id/users`, handle(collection, async (req, a) => {
    const { group, added } = await g.addMembers(a, kind, req.params.id, req.body);
    return { data: { newmembers: added, action: 'add_member', [shape.idKey]: group.groupId } };
  }));

  app.post<{ Params: MemberParams }>(`${base}/:id/users/:username`, handle(collection, async (req, a) => {
    const { group, user } = await g.addMember(a, kind, req.params.id, req.params.username);
    return { data: userResult('add_member', group.groupId, { user: user.username, result: true }) };
  }));

  app.delete<{ Params: MemberParams }>(`${base}/:id/users/:username`, handle(collection, async (req, a) => {
    const names = segmentList(req.params.username);
    const { group, removed } = await g.removeMembers(a, kind, req.params.id, names);
    return { data: oneOrMany('remove_member', group.groupId, removed.map((user) => ({ user, result: true })), names.length === 1) };
  }));

  app.get<{ Params: GroupParams }>(`${base}/:id/blocks/users`, handle(collection, async (req, a) => {
    const blocked = await g.blocks(a, kind, req.params.id);
    return { data: blocked, count: blocked.length };
  }));

  app.post<{ Params: GroupParams }>(`${base}/:id/blocks/users`, handle(collection, async (req, a) => {
    const { group, results } = await g.block(a, kind, req.params.id, bodyUsernames(req.body));
    // A one-element batch answers the single object, failed or not (observed in a client's tests).
    const data = results.map((r) => userResult('add_blocks', group.groupId, r));
    return { data: data.length === 1 ? data[0] : data };
  }));

  app.post<{ Params: MemberParams }>(`${base}/:id/blocks/users/:username`, handle(collection, async (req, a) => {
    const { group, results } = await g.block(a, kind, req.params.id, [req.params.username]);
    return { data: oneOrMany('add_blocks', group.groupId, results, true) };
  }));

  app.delete<{ Params: MemberParams }>(`${base}/:id/blocks/users/:username`, handle(collection, async (req, a) => {
    const names = segmentList(req.params.username);
    const { group, results } = await g.unblock(a, kind, req.params.id, names);
    return { data: oneOrMany('remove_blocks', group.groupId, results, names.length === 1) };
  }));

  app.get<{ Params: AppParams & { username: string } }>(`/:org/:app/users/:username/joined_${shape.collection}`, handle('/users', async (req, a) => {
    const groups = await g.joined(a, kind, req.params.username);
    return { data: groups.map(shape.joinedItem), count: groups.length };
  }));
}
