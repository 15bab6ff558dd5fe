import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { adminFrom, APP_SELECT, appFrom, orgFrom, str, userFrom, type Row } from '../rows.js';
import { SqliteContacts } from './sqlite-contacts.js';
import { SqliteFiles } from './sqlite-files.js';
import { SqliteGroups } from './sqlite-groups.js';
import { SqliteMessages } from './sqlite-messages.js';
import { UUID_RE } from '../../util/ids.js';
import { applyPragmas, migrate } from './sqlite-schema.js';
import { SqliteWriter } from './sqlite-writer.js';
import { SqliteDeliveries } from './sqlite-deliveries.js';
import { DEFAULT_GROUP_COMMIT_MAX } from '../group-commit.js';
import {
  DuplicateError,
  type AckedMessage, type AdminRow, type AppRow, type ChatFileRow, type GroupKind, type GroupMember, type GroupPatch, type GroupRow, type JoinRefusal,
  type MessageHit, type MessageQuery, type SplicedPage, type MessageRow, type SentMessage, type NewChatFile, type NewGroup, type NewMessage,
  type NewUser, type OrgRow, type Store, type UserPatch, type UserPosition, type UserRow,
} from '../store.js';


// Node numbers of message ids (util/ids.ts: 10 bits).
const NODE_IDS = 1024;


/** The embedded default store: one SQLite file in the data folder, WAL, fsync on every commit. */
export class SqliteStore implements Store {
  private db!: Database.Database;
  private messages!: SqliteMessages;
  private writer: SqliteWriter | null = null;
  private stmts!: ReturnType<SqliteStore['prepare']>;
  fresh = false;
  readonly kind = 'sqlite';
  readonly insertsInCallOrder = true;

  constructor(private readonly file: string, private readonly groupCommitMax = DEFAULT_GROUP_COMMIT_MAX) {}

  async open(): Promise<void> {
    if (this.file !== ':memory:') fs.mkdirSync(path.dirname(this.file), { recursive: true });
    this.fresh = this.file === ':memory:' || !fs.existsSync(this.file);
    this.db = new Database(this.file);
    applyPragmas(this.db);
    migrate(this.db);
    this.messages = new SqliteMessages(this.db, this.groupCommitMax);
    // Message inserts are committed by a writer thread with its own connection, so that the
    // event loop keeps serving while a commit waits for the disk. (An in-memory database cannot
    // be shared with a thread: there the inserts stay on this connection.)
    this.writer = this.file === ':memory:' ? null : new SqliteWriter(this.file, this.groupCommitMax);
    this.stmts = this.prepare();
  }


  private prepare() {
    const db = this.db;
    return {
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

  private readonly statements = new Map<string, Database.Statement>();

  /** A prepared statement, cached by its SQL text (preparing costs more than running). */
  private sql(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (!st) {
      st = this.db.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  async close(): Promise<void> {
    if (!this.db?.open) return;
    await this.writer?.close();
    this.messages.finish();
    this.db.close();
  }

  async getMeta(key: string): Promise<string | null> {
    const r = this.sql('SELECT value FROM meta WHERE key = ?').get(key) as Row | undefined;
    return r ? str(r.value) : null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.sql('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  async claimMeta(key: string, value: string): Promise<string> {
    this.sql('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING').run(key, value);
    return (await this.getMeta(key))!;
  }

  async claimNodeId(): Promise<number> {
    // Processes sharing one data folder (a server and a CLI import) each take the next number.
    const next = this.db.transaction(() => {
      const n = Number((this.sql("SELECT value FROM meta WHERE key = 'node_seq'").get() as Row | undefined)?.value ?? 0);
      this.sql("INSERT INTO meta (key, value) VALUES ('node_seq', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(n + 1));
      return n;
    }).immediate();
    return next % NODE_IDS;
  }

  sharedBlobStore(): null {
    return null;
  }

  async createOrg(o: Omit<OrgRow, 'id' | 'credGen'>): Promise<OrgRow> {
    try {
      const info = this.sql('INSERT INTO orgs (uuid, name, client_id, client_secret, created) VALUES (?, ?, ?, ?, ?)')
        .run(o.uuid, o.name, o.clientId, o.clientSecret, o.created);
      return (await this.getOrgById(Number(info.lastInsertRowid)))!;
    } catch (e) {
      throw uniqueToDuplicate(e, o.name);
    }
  }

  async getOrgByName(name: string): Promise<OrgRow | null> {
    const r = this.sql('SELECT * FROM orgs WHERE name = ?').get(name) as Row | undefined;
    return r ? orgFrom(r) : null;
  }

  async getOrgById(id: number): Promise<OrgRow | null> {
    const r = this.sql('SELECT * FROM orgs WHERE id = ?').get(id) as Row | undefined;
    return r ? orgFrom(r) : null;
  }

  async getOrgByClientId(clientId: string): Promise<OrgRow | null> {
    const r = this.sql('SELECT * FROM orgs WHERE client_id = ?').get(clientId) as Row | undefined;
    return r ? orgFrom(r) : null;
  }

  async upsertAdmin(a: Omit<AdminRow, 'id' | 'pwGen' | 'modified'>): Promise<AdminRow> {
    const existing = this.sql('SELECT * FROM admins WHERE username = ?').get(a.username) as Row | undefined;
    if (!existing) return this.createAdmin(a);
    const cur = adminFrom(existing);
    const pwChanged = cur.passwordHash !== a.passwordHash;
    this.sql('UPDATE admins SET password_hash = ?, pw_gen = pw_gen + ?, sysadmin = ?, email = ?, modified = ? WHERE id = ?')
      .run(a.passwordHash, pwChanged ? 1 : 0, a.sysadmin ? 1 : 0, a.email, Date.now(), cur.id);
    return (await this.getAdminById(cur.id))!;
  }

  async createAdmin(a: Omit<AdminRow, 'id' | 'pwGen' | 'modified'>): Promise<AdminRow> {
    try {
      const info = this.sql('INSERT INTO admins (uuid, username, email, password_hash, sysadmin, created, modified) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(a.uuid, a.username, a.email, a.passwordHash, a.sysadmin ? 1 : 0, a.created, a.created);
      return (await this.getAdminById(Number(info.lastInsertRowid)))!;
    } catch (e) {
      throw uniqueToDuplicate(e, a.username);
    }
  }

  async findAdmin(nameOrEmail: string): Promise<AdminRow | null> {
    const r = this.sql('SELECT * FROM admins WHERE username = ? OR email = ? ORDER BY username = ? DESC LIMIT 1')
      .get(nameOrEmail, nameOrEmail, nameOrEmail) as Row | undefined;
    return r ? adminFrom(r) : null;
  }

  async getAdminById(id: number): Promise<AdminRow | null> {
    const r = this.sql('SELECT * FROM admins WHERE id = ?').get(id) as Row | undefined;
    return r ? adminFrom(r) : null;
  }

  async addOrgAdmin(orgId: number, adminId: number): Promise<void> {
    this.sql('INSERT OR IGNORE INTO org_admins (org_id, admin_id) VALUES (?, ?)').run(orgId, adminId);
  }

  async orgsOfAdmin(adminId: number): Promise<OrgRow[]> {
    const rows = this.sql('SELECT orgs.* FROM orgs JOIN org_admins ON org_admins.org_id = orgs.id WHERE org_admins.admin_id = ? ORDER BY orgs.id')
      .all(adminId) as Row[];
    return rows.map(orgFrom);
  }

  async isOrgAdmin(orgId: number, adminId: number): Promise<boolean> {
    return this.sql('SELECT 1 FROM org_admins WHERE org_id = ? AND admin_id = ?').get(orgId, adminId) !== undefined;
  }

  async createApp(a: Omit<AppRow, 'id' | 'credGen' | 'orgName'>): Promise<AppRow> {
    try {
      const info = this.sql(
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
    const r = this.sql(`${APP_SELECT} WHERE orgs.name = ? AND (apps.name = ? OR apps.uuid = lower(?))`)
      .get(orgName, nameOrUuid, nameOrUuid) as Row | undefined;
    return r ? appFrom(r) : null;
  }

  async getAppById(id: number): Promise<AppRow | null> {
    const r = this.stmts.getAppById.get(id) as Row | undefined;
    return r ? appFrom(r) : null;
  }

  async listApps(orgId: number): Promise<AppRow[]> {
    return (this.sql(`${APP_SELECT} WHERE apps.org_id = ? ORDER BY apps.id`).all(orgId) as Row[]).map(appFrom);
  }

  async setAppCredentials(appId: number, clientId: string, clientSecret: string): Promise<AppRow> {
    this.sql('UPDATE apps SET client_id = ?, client_secret = ?, cred_gen = cred_gen + 1 WHERE id = ?')
      .run(clientId, clientSecret, appId);
    return (await this.getAppById(appId))!;
  }

  async setOpenRegistration(appId: number, open: boolean): Promise<AppRow> {
    this.sql('UPDATE apps SET open_registration = ? WHERE id = ?').run(open ? 1 : 0, appId);
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
    // Usernames are never shaped like a uuid, so only such a string needs the uuid lookup.
    const r = (UUID_RE.test(nameOrUuid) ? this.stmts.getUserByUuid.get(appId, nameOrUuid.toLowerCase()) : this.stmts.getUserByName.get(appId, nameOrUuid)) as
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
      ? this.sql('SELECT * FROM users WHERE app_id = ? AND (created, id) > (?, ?) ORDER BY created, id LIMIT ?')
          .all(appId, after.created, after.id, limit)
      : this.sql('SELECT * FROM users WHERE app_id = ? ORDER BY created, id LIMIT ?').all(appId, limit);
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
    this.sql(`UPDATE users SET ${sets.join(', ')} WHERE id = @id`).run(params);
    return (await this.getUserById(userId))!;
  }

  async deleteUsers(userIds: number[]): Promise<UserRow[]> {
    const del = this.sql('DELETE FROM users WHERE id = ? RETURNING *');
    // A user's inbox goes with it: a new user of the same name must not inherit it.
    const inbox = this.sql('DELETE FROM deliveries WHERE app_id = ? AND username = ?');
    const loggedInbox = this.sql('DELETE FROM delivery_log WHERE app_id = ? AND username = ?');
    const out: UserRow[] = [];
    this.db.transaction(() => {
      for (const id of userIds) {
        const r = del.get(id) as Row | undefined;
        if (!r) continue;
        const u = userFrom(r);
        inbox.run(u.appId, u.username.toLowerCase());
        loggedInbox.run(u.appId, u.username.toLowerCase());
        out.push(u);
      }
    })();
    return out;
  }

  // ---- Chat messages (sqlite-messages.ts) ----
  insertMessages(messages: NewMessage[]): Promise<bigint[]> { return this.writer ? this.writer.insert(messages) : this.messages.insert(messages); }
  async findMessages(q: MessageQuery): Promise<MessageHit[]> { return this.messages.find(q); }
  async findMessagesSpliced(q: MessageQuery, separator: string): Promise<SplicedPage> { return this.messages.spliced(q, separator); }
  async highWaterMark(): Promise<bigint> { return this.messages.highWaterMark(); }
  async messageSeq(appId: number, msgId: string): Promise<bigint | null> { return this.messages.messageSeq(appId, msgId); }
  async messageStats(appId: number, from: number, to: number): Promise<{ count: number; fingerprint: string }> { return this.messages.messageStats(appId, from, to); }
  async deleteMessages(appId: number, seqs: bigint[]): Promise<bigint[]> { return this.messages.delete(appId, seqs); }
  async messagesAfter(appId: number, afterSeq: bigint, limit: number): Promise<MessageRow[]> { return this.messages.after(appId, afterSeq, limit); }
  async countMessages(appId: number): Promise<number> { return this.messages.count(appId); }

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

  // Real-time delivery: sqlite-deliveries.ts (the rows are written with the messages, sqlite-messages.ts).
  private deliveriesOf?: SqliteDeliveries;
  private get deliveries(): SqliteDeliveries {
    if (this.deliveriesOf?.db !== this.db) this.deliveriesOf = new SqliteDeliveries(this.db);
    return this.deliveriesOf;
  }
  async pendingDeliveries(appId: number, username: string, afterSeq: bigint, limit: number): Promise<MessageRow[]> { return this.deliveries.pending(appId, username, afterSeq, limit); }
  async countPendingDeliveries(appId: number, username: string): Promise<number> { return this.deliveries.countPending(appId, username); }
  async deliveryStatus(appId: number, username: string, msgId: string): Promise<'delivered' | 'undelivered' | null> { return this.deliveries.status(appId, username, msgId); }
  async markDelivered(appId: number, username: string, msgIds: readonly string[]): Promise<AckedMessage[]> {
    return this.writer ? this.writer.markDelivered(appId, username, [...msgIds]) : this.deliveries.markDelivered(appId, username, msgIds);
  }
  async inbox(appId: number, username: string, afterSeq: bigint, maxSeq: bigint, limit: number): Promise<MessageRow[]> { return this.deliveries.inbox(appId, username, afterSeq, maxSeq, limit); }
  async clientSend(appId: number, sender: string, clientId: string): Promise<Map<string, SentMessage>> { return this.deliveries.clientSend(appId, sender, clientId); }

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


function uniqueToDuplicate(e: unknown, value: string): unknown {
  if (e instanceof Error && 'code' in e && String((e as { code: unknown }).code).startsWith('SQLITE_CONSTRAINT_UNIQUE')) {
    return new DuplicateError(value);
  }
  return e;
}
