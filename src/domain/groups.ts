import { randomInt } from 'node:crypto';
import { ApiError, errors } from '../errors.js';
import {
  DuplicateError,
  type AppRow, type GroupKind, type GroupMember, type GroupPatch, type GroupRow, type JoinRefusal, type Store, type UserRow,
} from '../store/store.js';
import type { CursorCodec } from './cursor.js';
import type { Page } from './users.js';

/** A user may own or belong to at most this many groups, and as many chat rooms (spec §3.2, E3). */
export const MAX_JOINED = 500;
/** Most usernames in one batch request (add, remove, block). */
export const MAX_BATCH = 60;
/** Most ids in one details request. */
export const MAX_DETAILS = 100;
const DEFAULT_MAX_USERS = 200;
const MAX_NAME = 128;
const MAX_DESCRIPTION = 512;

type Json = Record<string, unknown>;
type Change = keyof Omit<GroupPatch, 'modified'> | 'newowner';

/** What differs between chat groups and chat rooms in requests. */
interface KindRules {
  /** Body keys that name the group on create, the documented one first. */
  nameKeys: string[];
  descriptionKeys: string[];
  /** The largest maxusers. */
  maxUsersLimit: number;
  /** Keys PUT accepts, and what each changes. */
  updatable: Record<string, Change>;
}

const RULES: Record<GroupKind, KindRules> = {
  group: {
    nameKeys: ['groupname'],
    descriptionKeys: ['desc', 'description'],
    maxUsersLimit: 3000,
    updatable: {
      groupname: 'name', description: 'description', maxusers: 'maxUsers', public: 'public',
      membersonly: 'membersOnly', allowinvites: 'allowInvites', newowner: 'newowner',
    },
  },
  room: {
    // Some clients name a room with the group keys (`groupname`, `desc`).
    nameKeys: ['name', 'groupname'],
    descriptionKeys: ['description', 'desc'],
    maxUsersLimit: 10000,
    updatable: { name: 'name', groupname: 'name', description: 'description', maxusers: 'maxUsers', newowner: 'newowner' },
  },
};

// The texts of spec §3.2 and §7.2; they say "group" for chat rooms too, as Easemob's did.
const refuse = {
  alreadyIn: (u: string, gid: string) => errors.forbiddenOp(`can not join this group, reason:user: ${u} already in group: ${gid}\n`),
  blocked: (u: string, gid: string) => errors.forbiddenOp(`can not join this group, reason:user: ${u} is blocked in group: ${gid}`),
  full: (gid: string, max: number) => errors.forbiddenOp(`can not join this group, reason:group: ${gid} has reached maxusers ${max}`),
  tooMany: (u: string) => errors.forbiddenOp(`can not join this group, reason：user ${u} has joined too many groups/chatroom!`),
  notMembers: (us: string[]) => errors.forbiddenOp(`users [${us.join(', ')}] are not members of this group!`),
  notInGroup: (u: string, gid: string) => `user: ${u} doesn't exist in group: ${gid}`,
  notBlocked: (u: string, gid: string) => `user: ${u} is not blocked in group: ${gid}`,
  owner: 'forbidden operation on group owner!',
};

/** One group with its owner and members (the details view). */
export interface GroupDetail {
  group: GroupRow;
  members: GroupMember[];
}

/** The outcome for one user of a batch block or unblock. */
export interface UserResult {
  user: string;
  result: boolean;
  reason?: string;
}

/** Group ids like Easemob's: epoch milliseconds and three more digits (16 digits), growing. */
class GroupIdGenerator {
  private last = 0;

  next(now: number): string {
    this.last = Math.max(now * 1000 + randomInt(1000), this.last + 1);
    return String(this.last);
  }
}

/** Chat groups and chat rooms (spec §3): one service for both, every call naming the kind. */
export class GroupService {
  private readonly ids = new GroupIdGenerator();

  constructor(private readonly store: Store, private readonly cursors: CursorCodec, private readonly maxJoined = MAX_JOINED) {}

  /** Creates a group (or room) with its owner and members. */
  async create(app: AppRow, kind: GroupKind, body: unknown): Promise<GroupRow> {
    const b = objectBody(body);
    const rules = RULES[kind];
    const name = text(b, rules.nameKeys, MAX_NAME, true);
    const description = text(b, rules.descriptionKeys, MAX_DESCRIPTION, false);
    const maxUsers = b.maxusers === undefined ? DEFAULT_MAX_USERS : readMaxUsers(b.maxusers, rules.maxUsersLimit);
    const isPublic = b.public === undefined ? true : flag(b.public, 'public');
    const approval = b.membersonly ?? b.approval;
    const membersOnly = approval === undefined ? false : flag(approval, b.membersonly === undefined ? 'approval' : 'membersonly');
    const allowInvites = b.allowinvites === undefined ? false : flag(b.allowinvites, 'allowinvites');
    if (typeof b.owner !== 'string' || b.owner === '') throw errors.illegalArgument('owner must be provided');
    const owner = await this.store.getUser(app.id, b.owner);
    if (!owner) throw errors.illegalArgument(`group owner ${b.owner} doesn't exist`);
    // A member list may name the owner too (one client sends it so); the owner is not a member.
    const members = b.members === undefined ? [] : (await this.users(app, usernames(b.members, 'members'))).filter((u) => u.id !== owner.id);
    const everyone = [owner, ...members];
    for (let attempt = 0; ; attempt++) {
      const now = Date.now();
      const groupId = this.ids.next(now);
      try {
        const made = await this.store.createGroup(app.id, {
          kind, groupId, name, description, public: isPublic, membersOnly, allowInvites, maxUsers,
          ownerId: owner.id, memberIds: members.map((u) => u.id), created: now,
        }, this.maxJoined);
        if ('refused' in made) throw refusal(made, groupId, maxUsers, everyone);
        return made;
      } catch (e) {
        // Another node took the id in the same millisecond: draw again.
        if (!(e instanceof DuplicateError) || attempt >= 3) throw e;
      }
    }
  }

  /** Every group of the kind (page null), or one page of them with the next page's cursor; newest first. */
  async list(app: AppRow, kind: GroupKind, page: Page | null): Promise<{ groups: GroupRow[]; cursor: string | undefined }> {
    if (!page) return { groups: await this.store.listGroups(app.id, kind, null, null), cursor: undefined };
    const scope = `${kind}s:${app.uuid}`;
    let before: number | null = null;
    if (page.cursor) {
      const p = this.cursors.decode(scope, page.cursor);
      if (!Number.isSafeInteger(p)) throw errors.illegalArgument('cursor is not a valid cursor');
      before = p as number;
    }
    const rows = await this.store.listGroups(app.id, kind, before, page.limit + 1);
    const groups = rows.slice(0, page.limit);
    const last = groups[groups.length - 1];
    return { groups, cursor: rows.length > page.limit && last ? this.cursors.encode(scope, last.id) : undefined };
  }

  /** The details of one or several groups; 404 when one of them does not exist. */
  async details(app: AppRow, kind: GroupKind, groupIds: string[]): Promise<GroupDetail[]> {
    const wanted = [...new Set(groupIds)];
    if (wanted.length > MAX_DETAILS) throw errors.illegalArgument(`at most ${MAX_DETAILS} ids can be asked for at once`);
    const groups = await this.store.getGroups(app.id, kind, wanted);
    if (groups.length < wanted.length) throw errors.notFound();
    return Promise.all(groups.map(async (group) => ({ group, members: await this.store.groupMembers(group.id) })));
  }

  /** The group, or 404 service_resource_not_found. */
  async get(app: AppRow, kind: GroupKind, groupId: string): Promise<GroupRow> {
    const [g] = await this.store.getGroups(app.id, kind, [groupId]);
    if (!g) throw errors.notFound();
    return g;
  }

  /** Updates the keys sent (and transfers ownership for `newowner`); resolves with the keys changed. */
  async update(app: AppRow, kind: GroupKind, groupId: string, body: unknown): Promise<string[]> {
    const g = await this.get(app, kind, groupId);
    const b = objectBody(body);
    const rules = RULES[kind];
    const keys = Object.keys(b);
    const invalid = keys.filter((k) => !Object.hasOwn(rules.updatable, k));
    if (invalid.length > 0) throw new ApiError(400, 'invalid_parameter', `some of [${invalid.join(', ')}] are not valid fields`);
    if (keys.length === 0) throw errors.illegalArgument(`nothing to update: send any of ${Object.keys(rules.updatable).join(', ')}`);
    const patch: GroupPatch = { modified: Date.now() };
    let newOwner: UserRow | null = null;
    for (const k of keys) {
      const change = rules.updatable[k]!;
      if (change === 'name') patch.name = text(b, [k], MAX_NAME, true);
      else if (change === 'description') patch.description = text(b, [k], MAX_DESCRIPTION, false);
      else if (change === 'maxUsers') {
        patch.maxUsers = readMaxUsers(b[k], rules.maxUsersLimit);
        if (patch.maxUsers < g.memberCount) throw errors.illegalArgument(`maxusers ${patch.maxUsers} is less than the ${g.memberCount} members`);
      } else if (change === 'newowner') newOwner = await this.transferTarget(app, g, b[k]);
      else patch[change] = flag(b[k], k);
    }
    if (newOwner) await this.store.setGroupOwner(g.id, newOwner.id, patch.modified);
    if (Object.keys(patch).length > 1) await this.store.updateGroup(g.id, patch);
    return keys;
  }

  /** Deletes a group; its messages stay in the store. */
  async delete(app: AppRow, kind: GroupKind, groupId: string): Promise<GroupRow> {
    const g = await this.get(app, kind, groupId);
    await this.store.deleteGroups([g.id]);
    return g;
  }

  /** The owner first, then the members in the order they joined. */
  async members(app: AppRow, kind: GroupKind, groupId: string): Promise<GroupMember[]> {
    return this.store.groupMembers((await this.get(app, kind, groupId)).id);
  }

  /** Adds one member; an existing member is a 403. */
  async addMember(app: AppRow, kind: GroupKind, groupId: string, username: string): Promise<{ group: GroupRow; user: UserRow }> {
    const group = await this.get(app, kind, groupId);
    const [user] = await this.users(app, [username]);
    const members = await this.store.groupMembers(group.id);
    if (members.some((m) => m.userId === user!.id)) throw refuse.alreadyIn(user!.username, group.groupId);
    await this.join(group, [user!]);
    return { group, user: user! };
  }

  /** Adds members from `{"usernames": [...]}`; resolves with those that were not members yet. */
  async addMembers(app: AppRow, kind: GroupKind, groupId: string, body: unknown): Promise<{ group: GroupRow; added: string[] }> {
    const group = await this.get(app, kind, groupId);
    const users = await this.users(app, bodyUsernames(body));
    const members = new Set((await this.store.groupMembers(group.id)).map((m) => m.userId));
    const fresh = users.filter((u) => !members.has(u.id));
    await this.join(group, fresh);
    return { group, added: fresh.map((u) => u.username) };
  }

  /** Removes members (all or none): the owner and non-members are a 403. */
  async removeMembers(app: AppRow, kind: GroupKind, groupId: string, names: string[]): Promise<{ group: GroupRow; removed: string[] }> {
    const group = await this.get(app, kind, groupId);
    checkBatch(names);
    const members = await this.store.groupMembers(group.id);
    const byName = new Map(members.map((m) => [m.username.toLowerCase(), m]));
    const found = names.map((n) => byName.get(n.toLowerCase()));
    if (found.some((m) => m?.owner)) throw errors.forbiddenOp(refuse.owner);
    const missing = names.filter((_, i) => !found[i]);
    if (missing.length > 0) throw refuse.notMembers(missing);
    const removed = found as GroupMember[];
    await this.store.removeGroupMembers(group.id, removed.map((m) => m.userId));
    return { group, removed: removed.map((m) => m.username) };
  }

  /** The usernames on the group's block list. */
  async blocks(app: AppRow, kind: GroupKind, groupId: string): Promise<string[]> {
    return (await this.store.groupBlocks((await this.get(app, kind, groupId)).id)).map((m) => m.username);
  }

  /** Blocks members (they leave the group); the owner and non-members fail, each on its own. */
  async block(app: AppRow, kind: GroupKind, groupId: string, names: string[]): Promise<{ group: GroupRow; results: UserResult[] }> {
    const group = await this.get(app, kind, groupId);
    checkBatch(names);
    const listed = new Map<string, GroupMember>();
    for (const m of [...(await this.store.groupMembers(group.id)), ...(await this.store.groupBlocks(group.id))]) listed.set(m.username.toLowerCase(), m);
    const blocked: number[] = [];
    const results = names.map((n): UserResult => {
      const m = listed.get(n.toLowerCase());
      if (!m) return { user: n, result: false, reason: refuse.notInGroup(n, group.groupId) };
      if (m.owner) return { user: m.username, result: false, reason: refuse.owner };
      blocked.push(m.userId);
      return { user: m.username, result: true };
    });
    if (blocked.length > 0) await this.store.blockGroupUsers(group.id, blocked, Date.now());
    return { group, results };
  }

  /** Takes users off the block list; those not on it fail, each on its own. */
  async unblock(app: AppRow, kind: GroupKind, groupId: string, names: string[]): Promise<{ group: GroupRow; results: UserResult[] }> {
    const group = await this.get(app, kind, groupId);
    checkBatch(names);
    const listed = new Map((await this.store.groupBlocks(group.id)).map((m) => [m.username.toLowerCase(), m]));
    const results = names.map((n): UserResult => {
      const m = listed.get(n.toLowerCase());
      return m ? { user: m.username, result: true } : { user: n, result: false, reason: refuse.notBlocked(n, group.groupId) };
    });
    const unblocked = names.flatMap((n) => listed.get(n.toLowerCase())?.userId ?? []);
    if (unblocked.length > 0) await this.store.unblockGroupUsers(group.id, unblocked);
    return { group, results };
  }

  /** The groups of the kind a user owns or belongs to; 404 for an unknown user. */
  async joined(app: AppRow, kind: GroupKind, username: string): Promise<GroupRow[]> {
    const user = await this.store.getUser(app.id, username);
    if (!user) throw errors.notFound();
    return this.store.groupsOfUser(app.id, kind, user.id);
  }

  /** Passes when every id names a group of the kind (a message target); else 404. */
  async requireExisting(app: AppRow, kind: GroupKind, groupIds: string[]): Promise<GroupRow[]> {
    const wanted = [...new Set(groupIds)];
    const found = await this.store.getGroups(app.id, kind, wanted);
    if (found.length < wanted.length) throw errors.notFound();
    return found;
  }

  /** Deletes the groups and rooms the users own: called before the users are deleted. */
  async deleteOwnedBy(userIds: number[]): Promise<void> {
    await this.store.deleteGroupsOwnedBy(userIds);
  }

  /** The new owner named by `newowner`: a member other than the owner. */
  private async transferTarget(app: AppRow, g: GroupRow, raw: unknown): Promise<UserRow> {
    if (typeof raw !== 'string' || raw === '') throw errors.illegalArgument('newowner must be a username');
    const user = await this.store.getUser(app.id, raw);
    if (user?.id === g.ownerId) throw errors.forbiddenOp('new owner and old owner are the same');
    const members = await this.store.groupMembers(g.id);
    if (!user || !members.some((m) => m.userId === user.id)) throw errors.forbiddenOp(refuse.notInGroup(raw, g.groupId));
    return user;
  }

  private async join(group: GroupRow, users: UserRow[]): Promise<void> {
    const blocked = new Set((await this.store.groupBlocks(group.id)).map((m) => m.userId));
    const banned = users.find((u) => blocked.has(u.id));
    if (banned) throw refuse.blocked(banned.username, group.groupId);
    if (users.length === 0) return;
    const refused = await this.store.addGroupMembers(group.id, users.map((u) => u.id), Date.now(), this.maxJoined);
    if (refused) throw refusal(refused, group.groupId, group.maxUsers, users);
  }

  /** The users named, without repeats; an unknown one is a 400. */
  private async users(app: AppRow, names: string[]): Promise<UserRow[]> {
    const out = new Map<number, UserRow>();
    for (const n of names) {
      const u = await this.store.getUser(app.id, n);
      if (!u) throw errors.illegalArgument(`group member ${n} doesn't exist`);
      out.set(u.id, u);
    }
    return [...out.values()];
  }
}

function refusal(r: JoinRefusal, groupId: string, maxUsers: number, users: UserRow[]): ApiError {
  if (r.refused === 'full') return refuse.full(groupId, maxUsers);
  const userId = r.userId;
  return refuse.tooMany(users.find((u) => u.id === userId)?.username ?? String(userId));
}

function objectBody(body: unknown): Json {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw errors.illegalArgument('the request body must be a JSON object');
  return body as Json;
}

/** The first of `keys` present in the body, as a string of at most `max` characters. */
function text(b: Json, keys: string[], max: number, required: boolean): string {
  const key = keys.find((k) => b[k] !== undefined && b[k] !== null) ?? keys[0]!;
  const v = b[key];
  if (v === undefined || v === null) {
    if (required) throw errors.illegalArgument(`${key} must be provided`);
    return '';
  }
  if (typeof v !== 'string') throw errors.illegalArgument(`${key} must be a string`);
  if (required && v.trim() === '') throw errors.illegalArgument(`${key} must be provided`);
  if ([...v].length > max) throw errors.illegalArgument(`${key} is longer than ${max} characters`);
  // Names and descriptions are text columns, and PostgreSQL's text cannot hold U+0000.
  if (v.includes('\u0000')) throw errors.illegalArgument(`${key} must not contain the NUL character`);
  return v;
}

function flag(v: unknown, key: string): boolean {
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw errors.illegalArgument(`${key} must be true or false`);
}

function readMaxUsers(v: unknown, limit: number): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > limit) throw errors.illegalArgument(`maxusers must be an integer from 1 to ${limit}`);
  return n;
}

/** The `usernames` of a batch request body (`{"usernames": [...]}`). */
export function bodyUsernames(body: unknown): string[] {
  const names = usernames(objectBody(body).usernames, 'usernames');
  checkBatch(names);
  return names;
}

function usernames(v: unknown, key: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x): x is string => typeof x === 'string' && x !== '')) {
    throw errors.illegalArgument(`${key} must be a non-empty array of usernames`);
  }
  return v;
}

function checkBatch(names: string[]): void {
  if (names.length > MAX_BATCH) throw errors.illegalArgument(`at most ${MAX_BATCH} users can be named in one request`);
}
