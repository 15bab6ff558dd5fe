import { ApiError, errors } from '../errors.js';
import { DuplicateError, type AppRow, type NewUser, type Store, type UserPosition, type UserRow } from '../store/store.js';
import { UUID_RE, uuidV1 } from '../util/ids.js';
import type { CursorCodec } from './cursor.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { readTtl, unsupportedGrant } from './tenants.js';
import type { TokenService } from './tokens.js';

const USERNAME_RE = /^[a-zA-Z0-9_.-]{1,64}$/;
export const MAX_BATCH_REGISTER = 60;
// Properties that belong to the entity itself; a client cannot set them through properties.
const RESERVED = new Set(['uuid', 'type', 'created', 'modified', 'username', 'password', 'activated', 'metadata', 'name', 'newpassword', 'oldpassword']);

/** Parsed paging parameters of a list request. */
export interface Page {
  limit: number;
  cursor: string | undefined;
}

/** Reads `limit` like Usergrid: missing, zero, negative or non-numeric falls back; above max clamps. */
export function readLimit(raw: unknown, fallback: number, max: number): number {
  const s = Array.isArray(raw) ? raw[0] : raw;
  const n = typeof s === 'string' && /^\s*-?\d+\s*$/.test(s) ? Number(s) : typeof s === 'number' ? s : NaN;
  if (!Number.isFinite(n) || n <= 0) return fallback;
  return Math.min(Math.floor(n), max);
}

/** The user entity as the API shows it (never the password). */
export function userEntity(u: UserRow): Record<string, unknown> {
  return { uuid: u.uuid, type: 'user', created: u.created, modified: u.modified, username: u.username, activated: u.activated, ...u.properties };
}

/** IM users of an app: registration, lookup, paging, passwords, properties. */
export class UserService {
  constructor(
    private readonly store: Store,
    private readonly tokens: TokenService,
    private readonly cursors: CursorCodec,
    private readonly ttl: number,
    /** Runs before users are deleted, with their ids: deletes what they own (groups, rooms). */
    private readonly beforeDelete: (userIds: number[]) => Promise<void> = async () => {},
    /** Ends the users' real-time connections on every node (a kick, a deactivation, a deletion). */
    private readonly cutOff: (appId: number, usernames: string[]) => Promise<void> = async () => {},
  ) {}

  /** `GET /users/{u}/disconnect`: closes the user's connections (they may log in again). */
  async disconnect(app: AppRow, nameOrUuid: string): Promise<UserRow> {
    const u = await this.get(app, nameOrUuid);
    await this.cutOff(app.id, [u.username]);
    return u;
  }

  /** Registers one user or a batch (all-or-nothing). */
  async register(app: AppRow, body: unknown): Promise<UserRow[]> {
    const batch = Array.isArray(body);
    const items = batch ? body : [body];
    if (items.length === 0) throw errors.illegalArgument('the list of users to register is empty');
    if (items.length > MAX_BATCH_REGISTER) throw errors.illegalArgument(`at most ${MAX_BATCH_REGISTER} users can be registered in one request`);
    const seen = new Set<string>();
    const parsed = items.map((item) => {
      const u = parseNewUser(item);
      const key = u.username.toLowerCase();
      if (seen.has(key)) throw errors.duplicateUser(app.uuid, u.username);
      seen.add(key);
      return u;
    });
    const now = Date.now();
    const rows: NewUser[] = await Promise.all(
      parsed.map(async (u) => ({ uuid: uuidV1(now), username: u.username, passwordHash: await hashPassword(u.password), properties: u.properties, created: now })),
    );
    try {
      return await this.store.createUsers(app.id, rows);
    } catch (e) {
      if (e instanceof DuplicateError) throw errors.duplicateUser(app.uuid, e.value);
      throw e;
    }
  }

  /** `POST /{org}/{app}/token` with `grant_type: password`. */
  async passwordToken(app: AppRow, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (body.grant_type !== 'password') throw unsupportedGrant(body.grant_type);
    const ttl = readTtl(body, this.ttl);
    const username = typeof body.username === 'string' ? body.username : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const user = username ? await this.store.getUser(app.id, username) : null;
    if (!user || !(await verifyPassword(password, user.passwordHash))) throw errors.invalidGrant('invalid username or password');
    if (!user.activated) throw errors.deactivatedUser(user.username, true);
    return { access_token: this.tokens.issue('user', user.id, user.pwGen, ttl), expires_in: ttl, user: userEntity(user) };
  }

  /** The user, or 404 service_resource_not_found. */
  async get(app: AppRow, nameOrUuid: string): Promise<UserRow> {
    const u = await this.store.getUser(app.id, nameOrUuid);
    if (!u) throw errors.notFound();
    return u;
  }

  /** One page of users, oldest first, with the cursor of the next page when there is one. */
  async list(app: AppRow, page: Page): Promise<{ users: UserRow[]; cursor: string | undefined }> {
    const after = page.cursor ? this.position(app, page.cursor) : null;
    const rows = await this.store.listUsers(app.id, after, page.limit + 1);
    return this.paged(app, rows, page.limit);
  }

  /** Deletes one user. */
  async delete(app: AppRow, nameOrUuid: string): Promise<UserRow> {
    const u = await this.get(app, nameOrUuid);
    const [deleted] = await this.remove([u.id]);
    if (!deleted) throw errors.notFound();
    return deleted;
  }

  /** `DELETE /users?limit=N`: deletes the N oldest users. */
  async deleteOldest(app: AppRow, page: Page): Promise<{ users: UserRow[]; cursor: string | undefined }> {
    const after = page.cursor ? this.position(app, page.cursor) : null;
    const rows = await this.store.listUsers(app.id, after, page.limit + 1);
    const { users, cursor } = this.paged(app, rows, page.limit);
    return { users: await this.remove(users.map((u) => u.id)), cursor };
  }

  private async remove(userIds: number[]): Promise<UserRow[]> {
    await this.beforeDelete(userIds);
    const deleted = await this.store.deleteUsers(userIds);
    this.tokens.forget();
    const byApp = new Map<number, string[]>();
    for (const u of deleted) byApp.set(u.appId, [...(byApp.get(u.appId) ?? []), u.username]);
    for (const [appId, names] of byApp) await this.cutOff(appId, names);
    return deleted;
  }

  /** Sets a new password; a user acting on itself must also give the old one. */
  async resetPassword(app: AppRow, nameOrUuid: string, body: Record<string, unknown>, self: boolean): Promise<void> {
    const u = await this.store.getUser(app.id, nameOrUuid);
    if (!u) throw new ApiError(404, 'entity_not_found', 'User null not found');
    const next = body.newpassword;
    if (typeof next !== 'string' || next === '') throw errors.illegalArgument('newpassword is required');
    checkPassword(next);
    if (self) {
      const old = body.oldpassword ?? body.oldPassword;
      if (typeof old !== 'string' || old === '') throw errors.illegalArgument('oldPassword is required');
      if (!(await verifyPassword(old, u.passwordHash))) throw errors.illegalArgument('oldPassword is not correct');
    }
    await this.store.updateUser(u.id, { passwordHash: await hashPassword(next), modified: Date.now() });
    this.tokens.forget();
  }

  /** Updates `nickname` and custom properties; a null value removes a property. */
  async update(app: AppRow, nameOrUuid: string, body: unknown): Promise<UserRow> {
    const u = await this.get(app, nameOrUuid);
    if (!isObject(body)) throw errors.illegalArgument('the request body must be a JSON object of user properties');
    const props = { ...u.properties };
    for (const [k, v] of Object.entries(body)) {
      if (RESERVED.has(k)) continue;
      if (v === null) delete props[k];
      else props[k] = checkProperty(k, v);
    }
    return this.store.updateUser(u.id, { properties: props, modified: Date.now() });
  }

  /** Deactivates or activates a user: deactivated, it cannot log in or send, and its tokens are refused. */
  async setActivated(app: AppRow, nameOrUuid: string, activated: boolean): Promise<UserRow> {
    const u = await this.get(app, nameOrUuid);
    if (u.activated === activated) return u;
    const updated = await this.store.updateUser(u.id, { activated, modified: Date.now() });
    this.tokens.forget();
    if (!activated) await this.cutOff(app.id, [u.username]);
    return updated;
  }

  /** How many messages (one-to-one and group) wait for the user's ack on any of its clients. */
  async offlineMessageCount(app: AppRow, nameOrUuid: string): Promise<{ user: UserRow; count: number }> {
    const user = await this.get(app, nameOrUuid);
    return { user, count: await this.store.countPendingDeliveries(app.id, user.username.toLowerCase()) };
  }

  /** Whether a client of the user acked the message; 404 for a msg_id that was not sent to the user. */
  async offlineMessageStatus(app: AppRow, nameOrUuid: string, msgId: string): Promise<'delivered' | 'undelivered'> {
    const user = await this.get(app, nameOrUuid);
    const status = await this.store.deliveryStatus(app.id, user.username.toLowerCase(), msgId);
    if (!status) throw errors.notFound();
    return status;
  }

  private paged(app: AppRow, rows: UserRow[], limit: number): { users: UserRow[]; cursor: string | undefined } {
    const users = rows.slice(0, limit);
    const last = users[users.length - 1];
    const cursor = rows.length > limit && last ? this.cursors.encode(`users:${app.uuid}`, [last.created, last.id]) : undefined;
    return { users, cursor };
  }

  private position(app: AppRow, cursor: string): UserPosition {
    const p = this.cursors.decode(`users:${app.uuid}`, cursor);
    if (!Array.isArray(p) || p.length !== 2 || !p.every(Number.isSafeInteger)) throw errors.illegalArgument('cursor is not a valid cursor');
    return { created: p[0] as number, id: p[1] as number };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkPassword(p: string): void {
  if ([...p].length > 64) throw errors.illegalArgument('password is longer than 64 characters');
}

function checkProperty(key: string, v: unknown): unknown {
  if (key.length > 64 || !/^[a-zA-Z_][a-zA-Z0-9_.-]*$/.test(key)) throw errors.illegalArgument(`property name [${key}] is not legal`);
  if (key === 'nickname') {
    if (typeof v !== 'string') throw errors.illegalArgument('nickname must be a string');
    if ([...v].length > 100) throw errors.illegalArgument('nickname is longer than 100 characters');
  }
  if (JSON.stringify(v).length > 4096) throw errors.illegalArgument(`property ${key} is larger than 4 KB`);
  return v;
}

function parseNewUser(item: unknown): { username: string; password: string; properties: Record<string, unknown> } {
  if (!isObject(item)) throw errors.illegalArgument('each user must be a JSON object with username and password');
  const username = item.username;
  if (username === undefined || username === null || username === '') throw errors.illegalArgument('Entity user requires a property named username');
  // A uuid-shaped name is refused (spec §2.1): `users/{x}` also looks users up by uuid, so it could shadow another user.
  if (typeof username !== 'string' || !USERNAME_RE.test(username) || UUID_RE.test(username)) {
    throw errors.illegalArgument(`username [${String(username)}] is not legal`);
  }
  const password = item.password;
  if (typeof password !== 'string' || password === '') throw errors.illegalArgument('password or pin must provided');
  checkPassword(password);
  const properties: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) {
    if (RESERVED.has(k) || v === null) continue;
    properties[k] = checkProperty(k, v);
  }
  return { username, password, properties };
}
