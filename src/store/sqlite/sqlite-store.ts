import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { textContains, textTokens, type ContainsQuery } from '../../domain/text-match.js';
import { SqliteContacts } from './sqlite-contacts.js';
import { SqliteFiles } from './sqlite-files.js';
import { SqliteGroups } from './sqlite-groups.js';
import { migrate } from './sqlite-schema.js';
import { compileWhere, distanceMeters, normalizeJsonPath, sortExpression, type Fragment, type SqlParam } from './sqlite-ql.js';
import type { ChatFileRow, NewChatFile } from '../store.js';
import type { GroupKind, GroupMember, GroupPatch, GroupRow, JoinRefusal, MessageAddress, NewGroup } from '../store.js';
import {
  DuplicateError,
  type AdminRow, type AppRow, type MessageHit, type MessageQuery, type MessageRow, type NewMessage, type NewUser, type OrgRow,
  type Store, type UserPatch, type UserPosition, type UserRow,
} from '../store.js';

type Row = Record<string, unknown>;

const num = (v: unknown): number => Number(v);
const str = (v: unknown): string => String(v);

function orgFrom(r: Row): OrgRow {
  return {
    id: num(r.id), uuid: str(r.uuid), name: str(r.name), clientId: str(r.client_id),
    clientSecret: str(r.client_secret), credGen: num(r.cred_gen), created: num(r.created),
  };
}

function appFrom(r: Row): AppRow {
  return {
    id: num(r.id), uuid: str(r.uuid), orgId: num(r.org_id), orgName: str(r.org_name), name: str(r.name),
    clientId: str(r.client_id), clientSecret: str(r.client_secret), credGen: num(r.cred_gen),
    openRegistration: num(r.open_registration) === 1, created: num(r.created),
  };
}

function adminFrom(r: Row): AdminRow {
  return {
    id: num(r.id), uuid: str(r.uuid), username: str(r.username), email: str(r.email),
    passwordHash: str(r.password_hash), pwGen: num(r.pw_gen), sysadmin: num(r.sysadmin) === 1,
    created: num(r.created), modified: num(r.modified),
  };
}

function userFrom(r: Row): UserRow {
  return {
    id: num(r.id), appId: num(r.app_id), uuid: str(r.uuid), username: str(r.username),
    passwordHash: str(r.password_hash), pwGen: num(r.pw_gen), activated: num(r.activated) === 1,
    properties: JSON.parse(str(r.properties)) as Record<string, unknown>,
    created: num(r.created), modified: num(r.modified),
  };
}

function messageFrom(r: Row): MessageRow {
  return {
    seq: BigInt(r.seq as bigint), appId: num(r.app_id), uuid: str(r.uuid), msgId: str(r.msg_id),
    timestamp: num(r.timestamp), created: num(r.created), from: str(r.from_user), to: str(r.to_id),
    chatType: str(r.chat_type) as MessageRow['chatType'],
    bodyType: r.body_type === null ? null : str(r.body_type),
    text: null,
    lat: r.lat === null ? null : num(r.lat),
    lng: r.lng === null ? null : num(r.lng),
    entity: r.entity as Buffer,
  };
}

const MAX_CACHED_STATEMENTS = 256;

interface PendingWrite {
  messages: NewMessage[];
  resolve(seqs: bigint[]): void;
  reject(err: unknown): void;
}

const APP_SELECT = 'SELECT apps.*, orgs.name AS org_name FROM apps JOIN orgs ON orgs.id = apps.org_id';

/** The embedded default store: one SQLite file in the data folder, WAL, fsync on every commit. */
export class SqliteStore implements Store {
  private db!: Database.Database;
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  private stmts!: ReturnType<SqliteStore['prepare']>;
  fresh = false;
  readonly kind = 'sqlite';

  constructor(private readonly file: string, private readonly groupCommitMax = 256) {}

  async open(): Promise<void> {
    if (this.file !== ':memory:') fs.mkdirSync(path.dirname(this.file), { recursive: true });
    this.fresh = this.file === ':memory:' || !fs.existsSync(this.file);
    this.db = new Database(this.file);
    this.db.pragma('journal_mode = WAL');
    // FULL: a commit is on disk before we acknowledge it, so a power cut loses nothing.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    // Index pages of a large message table must stay in memory for inserts and keyset pages
    // to be fast: 128 MiB of page cache, and reads through mmap.
    this.db.pragma('cache_size = -131072');
    this.db.pragma('mmap_size = 1073741824');
    migrate(this.db);
    this.registerFunctions();
    this.stmts = this.prepare();
  }

  // Functions the compiled ql calls (sqlite-ql.ts); deterministic, so SQLite may cache results.
  private registerFunctions(): void {
    const det = { deterministic: true };
    this.db.function('cv_path', det, (k: unknown) => (typeof k === 'string' ? normalizeJsonPath(k) : null));
    this.db.function('cv_lower', det, (v: unknown) => (typeof v === 'string' ? v.toLowerCase() : (v as SqlParam)));
    const parsed = new Map<string, ContainsQuery>();
    this.db.function('cv_contains', det, (text: unknown, q: unknown) => {
      if (typeof text !== 'string' || typeof q !== 'string') return 0;
      let cq = parsed.get(q);
      if (!cq) {
        cq = JSON.parse(q) as ContainsQuery;
        if (parsed.size > 1000) parsed.clear();
        parsed.set(q, cq);
      }
      return textContains(text, cq) ? 1 : 0;
    });
    this.db.function('cv_distance', det, (lat1: unknown, lng1: unknown, lat2: unknown, lng2: unknown) =>
      typeof lat1 === 'number' && typeof lng1 === 'number' && typeof lat2 === 'number' && typeof lng2 === 'number'
        ? distanceMeters(lat1, lng1, lat2, lng2)
        : null,
    );
  }

  private prepare() {
    const db = this.db;
    return {
      insertMessage: db.prepare(
        `INSERT INTO messages (app_id, uuid, msg_id, timestamp, created, from_user, to_id, chat_type, body_type, lat, lng, entity)
         VALUES (@appId, @uuid, @msgId, @timestamp, @created, @from, @to, @chatType, @bodyType, @lat, @lng, @entity)`,
      ),
      insertText: db.prepare('INSERT INTO messages_fts (rowid, bi, uni) VALUES (?, ?, ?)'),
      insertGeo: db.prepare('INSERT INTO messages_geo (id, min_lat, max_lat, min_lng, max_lng) VALUES (?, ?, ?, ?, ?)'),
      deleteMessage: db.prepare('DELETE FROM messages WHERE app_id = ? AND seq = ?'),
      deleteText: db.prepare('DELETE FROM messages_fts WHERE rowid = ?'),
      deleteGeo: db.prepare('DELETE FROM messages_geo WHERE id = ?'),
      maxSeq: db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").pluck().safeIntegers(true),
      messageSeq: db.prepare('SELECT seq FROM messages WHERE app_id = ? AND msg_id = ?').pluck().safeIntegers(true),
      // Covered by the (app_id, timestamp, seq) index: no table rows are read.
      messageStats: db.prepare('SELECT count(*), max(seq), total(seq) FROM messages WHERE app_id = ? AND timestamp >= ? AND timestamp < ?').raw(true).safeIntegers(true),
      messagesAfter: db.prepare('SELECT * FROM messages WHERE app_id = ? AND seq > ? ORDER BY seq LIMIT ?').safeIntegers(true),
      getUserByName: db.prepare('SELECT * FROM users WHERE app_id = ? AND username = ? COLLATE NOCASE'),
      getUserByUuid: db.prepare('SELECT * FROM users WHERE app_id = ? AND uuid = ?'),
      getUserById: db.prepare('SELECT * FROM users WHERE id = ?'),
      insertUser: db.prepare(
        `INSERT INTO users (app_id, uuid, username, password_hash, properties, created, modified)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      getAppById: db.prepare(`${APP_SELECT} WHERE apps.id = ?`),
    };
  }

  async close(): Promise<void> {
    if (!this.db?.open) return;
    this.flush();
    this.db.close();
  }

  async getMeta(key: string): Promise<string | null> {
    const r = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as Row | undefined;
    return r ? str(r.value) : null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  async createOrg(o: Omit<OrgRow, 'id' | 'credGen'>): Promise<OrgRow> {
    try {
      const info = this.db
        .prepare('INSERT INTO orgs (uuid, name, client_id, client_secret, created) VALUES (?, ?, ?, ?, ?)')
        .run(o.uuid, o.name, o.clientId, o.clientSecret, o.created);
      return (await this.getOrgById(Number(info.lastInsertRowid)))!;
    } catch (e) {
      throw uniqueToDuplicate(e, o.name);
    }
  }

  async getOrgByName(name: string): Promise<OrgRow | null> {
    const r = this.db.prepare('SELECT * FROM orgs WHERE name = ?').get(name) as Row | undefined;
    return r ? orgFrom(r) : null;
  }

  async getOrgById(id: number): Promise<OrgRow | null> {
    const r = this.db.prepare('SELECT * FROM orgs WHERE id = ?').get(id) as Row | undefined;
    return r ? orgFrom(r) : null;
  }

  async getOrgByClientId(clientId: string): Promise<OrgRow | null> {
    const r = this.db.prepare('SELECT * FROM orgs WHERE client_id = ?').get(clientId) as Row | undefined;
    return r ? orgFrom(r) : null;
  }

  async upsertAdmin(a: Omit<AdminRow, 'id' | 'pwGen' | 'modified'>): Promise<AdminRow> {
    const existing = this.db.prepare('SELECT * FROM admins WHERE username = ?').get(a.username) as Row | undefined;
    if (!existing) return this.createAdmin(a);
    const cur = adminFrom(existing);
    const pwChanged = cur.passwordHash !== a.passwordHash;
    this.db
      .prepare('UPDATE admins SET password_hash = ?, pw_gen = pw_gen + ?, sysadmin = ?, email = ?, modified = ? WHERE id = ?')
      .run(a.passwordHash, pwChanged ? 1 : 0, a.sysadmin ? 1 : 0, a.email, Date.now(), cur.id);
    return (await this.getAdminById(cur.id))!;
  }

  async createAdmin(a: Omit<AdminRow, 'id' | 'pwGen' | 'modified'>): Promise<AdminRow> {
    try {
      const info = this.db
        .prepare('INSERT INTO admins (uuid, username, email, password_hash, sysadmin, created, modified) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(a.uuid, a.username, a.email, a.passwordHash, a.sysadmin ? 1 : 0, a.created, a.created);
      return (await this.getAdminById(Number(info.lastInsertRowid)))!;
    } catch (e) {
      throw uniqueToDuplicate(e, a.username);
    }
  }

  async findAdmin(nameOrEmail: string): Promise<AdminRow | null> {
    const r = this.db
      .prepare('SELECT * FROM admins WHERE username = ? OR email = ? ORDER BY username = ? DESC LIMIT 1')
      .get(nameOrEmail, nameOrEmail, nameOrEmail) as Row | undefined;
    return r ? adminFrom(r) : null;
  }

  async getAdminById(id: number): Promise<AdminRow | null> {
    const r = this.db.prepare('SELECT * FROM admins WHERE id = ?').get(id) as Row | undefined;
    return r ? adminFrom(r) : null;
  }

  async addOrgAdmin(orgId: number, adminId: number): Promise<void> {
    this.db.prepare('INSERT OR IGNORE INTO org_admins (org_id, admin_id) VALUES (?, ?)').run(orgId, adminId);
  }

  async orgsOfAdmin(adminId: number): Promise<OrgRow[]> {
    const rows = this.db
      .prepare('SELECT orgs.* FROM orgs JOIN org_admins ON org_admins.org_id = orgs.id WHERE org_admins.admin_id = ? ORDER BY orgs.id')
      .all(adminId) as Row[];
    return rows.map(orgFrom);
  }

  async isOrgAdmin(orgId: number, adminId: number): Promise<boolean> {
    return this.db.prepare('SELECT 1 FROM org_admins WHERE org_id = ? AND admin_id = ?').get(orgId, adminId) !== undefined;
  }

  async createApp(a: Omit<AppRow, 'id' | 'credGen' | 'orgName'>): Promise<AppRow> {
    try {
      const info = this.db
        .prepare(
          `INSERT INTO apps (uuid, org_id, name, client_id, client_secret, open_registration, created)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(a.uuid, a.orgId, a.name, a.clientId, a.clientSecret, a.openRegistration ? 1 : 0, a.created);
      return (await this.getAppById(Number(info.lastInsertRowid)))!;
    } catch (e) {
      throw uniqueToDuplicate(e, a.name);
    }
  }

  async getApp(orgName: string, nameOrUuid: string): Promise<AppRow | null> {
    const r = this.db
      .prepare(`${APP_SELECT} WHERE orgs.name = ? AND (apps.name = ? OR apps.uuid = lower(?))`)
      .get(orgName, nameOrUuid, nameOrUuid) as Row | undefined;
    return r ? appFrom(r) : null;
  }

  async getAppById(id: number): Promise<AppRow | null> {
    const r = this.stmts.getAppById.get(id) as Row | undefined;
    return r ? appFrom(r) : null;
  }

  async listApps(orgId: number): Promise<AppRow[]> {
    return (this.db.prepare(`${APP_SELECT} WHERE apps.org_id = ? ORDER BY apps.id`).all(orgId) as Row[]).map(appFrom);
  }

  async setAppCredentials(appId: number, clientId: string, clientSecret: string): Promise<AppRow> {
    this.db
      .prepare('UPDATE apps SET client_id = ?, client_secret = ?, cred_gen = cred_gen + 1 WHERE id = ?')
      .run(clientId, clientSecret, appId);
    return (await this.getAppById(appId))!;
  }

  async setOpenRegistration(appId: number, open: boolean): Promise<AppRow> {
    this.db.prepare('UPDATE apps SET open_registration = ? WHERE id = ?').run(open ? 1 : 0, appId);
    return (await this.getAppById(appId))!;
  }

  async createUsers(appId: number, users: NewUser[]): Promise<UserRow[]> {
    const ids: number[] = [];
    const insertAll = this.db.transaction(() => {
      for (const u of users) {
        try {
          const info = this.stmts.insertUser.run(appId, u.uuid, u.username, u.passwordHash, JSON.stringify(u.properties), u.created, u.created);
          ids.push(Number(info.lastInsertRowid));
        } catch (e) {
          throw uniqueToDuplicate(e, u.username);
        }
      }
    });
    insertAll();
    return ids.map((id) => userFrom(this.stmts.getUserById.get(id) as Row));
  }

  async getUser(appId: number, nameOrUuid: string): Promise<UserRow | null> {
    const r = (this.stmts.getUserByName.get(appId, nameOrUuid) ?? this.stmts.getUserByUuid.get(appId, nameOrUuid.toLowerCase())) as
      | Row
      | undefined;
    return r ? userFrom(r) : null;
  }

  async getUserById(id: number): Promise<UserRow | null> {
    const r = this.stmts.getUserById.get(id) as Row | undefined;
    return r ? userFrom(r) : null;
  }

  async listUsers(appId: number, after: UserPosition | null, limit: number): Promise<UserRow[]> {
    const rows = after
      ? this.db
          .prepare('SELECT * FROM users WHERE app_id = ? AND (created, id) > (?, ?) ORDER BY created, id LIMIT ?')
          .all(appId, after.created, after.id, limit)
      : this.db.prepare('SELECT * FROM users WHERE app_id = ? ORDER BY created, id LIMIT ?').all(appId, limit);
    return (rows as Row[]).map(userFrom);
  }

  async updateUser(userId: number, patch: UserPatch): Promise<UserRow> {
    const sets: string[] = ['modified = @modified'];
    const params: Record<string, unknown> = { id: userId, modified: patch.modified };
    if (patch.passwordHash !== undefined) {
      sets.push('password_hash = @hash', 'pw_gen = pw_gen + 1');
      params.hash = patch.passwordHash;
    }
    if (patch.activated !== undefined) {
      sets.push('activated = @activated');
      params.activated = patch.activated ? 1 : 0;
    }
    if (patch.properties !== undefined) {
      sets.push('properties = @properties');
      params.properties = JSON.stringify(patch.properties);
    }
    this.db.prepare(`UPDATE users SET ${sets.join(', ')} WHERE id = @id`).run(params);
    return (await this.getUserById(userId))!;
  }

  async deleteUsers(userIds: number[]): Promise<UserRow[]> {
    const del = this.db.prepare('DELETE FROM users WHERE id = ? RETURNING *');
    const out: UserRow[] = [];
    this.db.transaction(() => {
      for (const id of userIds) {
        const r = del.get(id) as Row | undefined;
        if (r) out.push(userFrom(r));
      }
    })();
    return out;
  }

  insertMessages(messages: NewMessage[]): Promise<bigint[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ messages, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // Everything that arrives in this turn of the event loop shares one fsync'd commit.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.pending.length > 0) {
      const batch: PendingWrite[] = [];
      let n = 0;
      while (this.pending.length > 0 && (n === 0 || n + this.pending[0]!.messages.length <= this.groupCommitMax)) {
        const w = this.pending.shift()!;
        batch.push(w);
        n += w.messages.length;
      }
      const results: bigint[][] = [];
      try {
        this.db.transaction(() => {
          for (const w of batch) {
            const seqs: bigint[] = [];
            for (const m of w.messages) seqs.push(this.insertOne(m));
            results.push(seqs);
          }
        })();
      } catch (e) {
        // A failed batch fails every write in it; nothing of it was committed.
        for (const w of batch) w.reject(e);
        continue;
      }
      batch.forEach((w, i) => w.resolve(results[i]!));
    }
  }

  private insertOne(m: NewMessage): bigint {
    const { text, ...row } = m;
    const seq = BigInt(this.stmts.insertMessage.run(row).lastInsertRowid);
    if (text) {
      const t = textTokens(text);
      this.stmts.insertText.run(seq, t.bi.join(' '), t.uni.join(' '));
    }
    if (m.lat !== null && m.lng !== null) this.stmts.insertGeo.run(seq, m.lat, m.lat, m.lng, m.lng);
    return seq;
  }

  private statements = new Map<string, Database.Statement>();

  private cached(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql).raw(true);
      if (this.statements.size >= MAX_CACHED_STATEMENTS) this.statements.delete(this.statements.keys().next().value!);
      this.statements.set(sql, st);
    }
    return st;
  }

  async findMessages(q: MessageQuery): Promise<MessageHit[]> {
    const keys = q.orderBy.map((k) => sortExpression(k, q.near));
    const params: SqlParam[] = [q.appId, q.maxSeq, q.minSeq];
    const where: string[] = ['m.app_id = ?', 'm.seq <= ?', 'm.seq > ?'];
    const add = (f: Fragment) => {
      where.push(f.sql);
      params.push(...f.params);
    };
    if (q.where) add(compileWhere(q.where));
    // A message without a sort key's field has no place in that order (Usergrid dropped it too).
    for (const k of keys) if (!k.sql.startsWith('m.')) add({ sql: `${k.sql} IS NOT NULL`, params: k.params });
    const seqDir = q.orderBy.length > 0 ? q.orderBy[q.orderBy.length - 1]!.dir : 'asc';
    if (q.after) add(keysetAfter(keys, q.orderBy.map((k) => k.dir), seqDir, q.after.keys as SqlParam[], q.after.seq));
    const order = [...keys.map((k, i) => `${k.sql} ${q.orderBy[i]!.dir.toUpperCase()}`), `m.seq ${seqDir.toUpperCase()}`];
    const orderParams = keys.flatMap((k) => k.params);
    const select = ['m.seq', ...keys.map((k) => k.sql), 'm.entity'];
    const selectParams = keys.flatMap((k) => k.params);
    const sql = `SELECT ${select.join(', ')} FROM messages m WHERE ${where.join(' AND ')} ORDER BY ${order.join(', ')} LIMIT ?`;
    const rows = this.cached(sql).all(...selectParams, ...params, ...orderParams, q.limit) as unknown[][];
    return rows.map((r) => ({ seq: BigInt(r[0] as number), keys: r.slice(1, 1 + keys.length), entity: r[1 + keys.length] as Buffer }));
  }

  async highWaterMark(): Promise<bigint> {
    // One writer commits at a time and seqs are assigned in commit order, so the largest seq
    // ever handed out is already committed: nothing below it can still appear.
    const v = this.stmts.maxSeq.get() as bigint | undefined;
    return v ?? 0n;
  }

  async messageSeq(appId: number, msgId: string): Promise<bigint | null> {
    const v = this.stmts.messageSeq.get(appId, msgId) as bigint | undefined;
    return v ?? null;
  }

  async messageStats(appId: number, from: number, to: number): Promise<{ count: number; fingerprint: string }> {
    const r = this.stmts.messageStats.get(appId, from, to) as [bigint, bigint | null, bigint | null];
    return { count: Number(r[0]), fingerprint: `${r[0]}:${r[1] ?? 0}:${r[2] ?? 0}` };
  }

  async deleteMessages(appId: number, seqs: bigint[]): Promise<number> {
    let n = 0;
    this.db.transaction(() => {
      for (const seq of seqs) {
        if (this.stmts.deleteMessage.run(appId, seq).changes === 0) continue;
        n++;
        this.stmts.deleteText.run(seq);
        this.stmts.deleteGeo.run(seq);
      }
    })();
    return n;
  }

  async messagesAfter(appId: number, afterSeq: bigint, limit: number): Promise<MessageRow[]> {
    return (this.stmts.messagesAfter.all(appId, afterSeq, limit) as Row[]).map(messageFrom);
  }

  async countMessages(appId: number): Promise<number> {
    const r = this.db.prepare('SELECT count(*) AS n FROM messages WHERE app_id = ?').get(appId) as Row;
    return num(r.n);
  }

  // Contacts, block lists, offline messages: sqlite-contacts.ts, its statements prepared on first use.
  private contactsOf?: SqliteContacts;
  private get contacts(): SqliteContacts {
    if (this.contactsOf?.db !== this.db) this.contactsOf = new SqliteContacts(this.db);
    return this.contactsOf;
  }
  async addContact(ownerId: number, friendId: number, created: number): Promise<void> { this.contacts.addContact(ownerId, friendId, created); }
  async removeContact(ownerId: number, friendId: number): Promise<void> { this.contacts.removeContact(ownerId, friendId); }
  async listContacts(ownerId: number): Promise<string[]> { return this.contacts.listContacts(ownerId); }
  async addBlocks(ownerId: number, blockedIds: number[], created: number): Promise<void> { this.contacts.addBlocks(ownerId, blockedIds, created); }
  async removeBlock(ownerId: number, blockedId: number): Promise<void> { this.contacts.removeBlock(ownerId, blockedId); }
  async listBlocks(ownerId: number): Promise<string[]> { return this.contacts.listBlocks(ownerId); }
  async countMessagesTo(appId: number, username: string): Promise<number> { return this.contacts.countMessagesTo(appId, username); }
  async messageAddress(appId: number, msgId: string): Promise<MessageAddress | null> { return this.contacts.messageAddress(appId, msgId); }

  // Groups and chat rooms: sqlite-groups.ts, its statements prepared on first use.
  private groupsOf?: SqliteGroups;
  private get groups(): SqliteGroups {
    if (this.groupsOf?.db !== this.db) this.groupsOf = new SqliteGroups(this.db);
    return this.groupsOf;
  }
  async createGroup(appId: number, g: NewGroup, maxJoined: number): Promise<GroupRow | JoinRefusal> { return this.groups.createGroup(appId, g, maxJoined); }
  async getGroups(appId: number, kind: GroupKind, groupIds: string[]): Promise<GroupRow[]> { return this.groups.getGroups(appId, kind, groupIds); }
  async listGroups(appId: number, kind: GroupKind, beforeId: number | null, limit: number | null): Promise<GroupRow[]> { return this.groups.listGroups(appId, kind, beforeId, limit); }
  async updateGroup(id: number, patch: GroupPatch): Promise<GroupRow> { return this.groups.updateGroup(id, patch); }
  async setGroupOwner(id: number, userId: number, modified: number): Promise<GroupRow> { return this.groups.setGroupOwner(id, userId, modified); }
  async deleteGroups(ids: number[]): Promise<void> { this.groups.deleteGroups(ids); }
  async deleteGroupsOwnedBy(userIds: number[]): Promise<number> { return this.groups.deleteGroupsOwnedBy(userIds); }
  async groupMembers(id: number): Promise<GroupMember[]> { return this.groups.groupMembers(id); }
  async addGroupMembers(id: number, userIds: number[], joined: number, maxJoined: number): Promise<JoinRefusal | null> { return this.groups.addGroupMembers(id, userIds, joined, maxJoined); }
  async removeGroupMembers(id: number, userIds: number[]): Promise<void> { this.groups.removeGroupMembers(id, userIds); }
  async groupsOfUser(appId: number, kind: GroupKind, userId: number): Promise<GroupRow[]> { return this.groups.groupsOfUser(appId, kind, userId); }
  async groupBlocks(id: number): Promise<GroupMember[]> { return this.groups.groupBlocks(id); }
  async blockGroupUsers(id: number, userIds: number[], created: number): Promise<void> { this.groups.blockGroupUsers(id, userIds, created); }
  async unblockGroupUsers(id: number, userIds: number[]): Promise<void> { this.groups.unblockGroupUsers(id, userIds); }

  // Chat files: sqlite-files.ts, its statements prepared on first use.
  private filesOf?: SqliteFiles;
  private get files(): SqliteFiles {
    if (this.filesOf?.db !== this.db) this.filesOf = new SqliteFiles(this.db);
    return this.filesOf;
  }
  async createChatFile(f: NewChatFile): Promise<ChatFileRow> { return this.files.createChatFile(f); }
  async getChatFile(appId: number, uuid: string): Promise<ChatFileRow | null> { return this.files.getChatFile(appId, uuid); }
}

/**
 * The keyset condition "after this row" for sort keys in mixed directions: a row value
 * comparison when all directions agree (SQLite then walks the index), else the OR expansion.
 */
function keysetAfter(keys: Fragment[], dirs: ('asc' | 'desc')[], seqDir: 'asc' | 'desc', values: SqlParam[], seq: bigint): Fragment {
  const cols = [...keys.map((k) => k.sql), 'm.seq'];
  const colParams = keys.map((k) => k.params);
  const vals: SqlParam[] = [...values, seq];
  const allDirs = [...dirs, seqDir];
  if (allDirs.every((d) => d === allDirs[0]) && keys.every((k) => k.params.length === 0)) {
    return { sql: `(${cols.join(', ')}) ${allDirs[0] === 'asc' ? '>' : '<'} (${cols.map(() => '?').join(', ')})`, params: vals };
  }
  const ors: string[] = [];
  const params: SqlParam[] = [];
  for (let i = 0; i < cols.length; i++) {
    const parts: string[] = [];
    for (let j = 0; j < i; j++) {
      parts.push(`${cols[j]} = ?`);
      params.push(...(colParams[j] ?? []), vals[j]!);
    }
    parts.push(`${cols[i]} ${allDirs[i] === 'asc' ? '>' : '<'} ?`);
    params.push(...(colParams[i] ?? []), vals[i]!);
    ors.push(`(${parts.join(' AND ')})`);
  }
  return { sql: `(${ors.join(' OR ')})`, params };
}

function uniqueToDuplicate(e: unknown, value: string): unknown {
  if (e instanceof Error && 'code' in e && String((e as { code: unknown }).code).startsWith('SQLITE_CONSTRAINT_UNIQUE')) {
    return new DuplicateError(value);
  }
  return e;
}
