import { PostgresDeliveries } from './postgres-deliveries.js';
import pg from 'pg';
import { UUID_RE } from '../../util/ids.js';
import { PostgresContacts } from './postgres-contacts.js';
import { PostgresFiles } from './postgres-files.js';
import { PostgresGroups } from './postgres-groups.js';
import { adminFrom, APP_SELECT, appFrom, num, orgFrom, str, userFrom, type Row } from '../rows.js';
import { DEFAULT_GROUP_COMMIT_MAX } from '../group-commit.js';
import { PostgresBlobStore } from '../../files/postgres-blob-store.js';
import { PostgresMessages } from './postgres-messages.js';
import { migrate } from './postgres-schema.js';
import { isUniqueViolation, withTransaction } from './postgres-transaction.js';
import { parseDatabaseUrl } from './postgres-url.js';
import {
  DuplicateError,
  type AckedMessage, type AdminRow, type AppRow, type ChatFileRow, type GroupKind, type GroupMember, type GroupPatch, type GroupRow, type JoinRefusal,
  type MessageHit, type MessageQuery, type SplicedPage, type MessageRow, type SentMessage, type NewChatFile, type NewGroup, type NewMessage,
  type NewUser, type OrgRow, type Store, type UserPatch, type UserPosition, type UserRow,
} from '../store.js';

// int8 columns (ids, times) arrive as strings: pg leaves them so because they may pass 2^53.
// Ids and epoch milliseconds never do; rows.ts converts them rather than a global parser.

const one = <T>(r: pg.QueryResult<Row>, from: (row: Row) => T): T | null => (r.rows.length > 0 ? from(r.rows[0]!) : null);


/** The shared store: PostgreSQL, which several chatvault nodes can use at once. */
export class PostgresStore implements Store {
  private pool: pg.Pool | null = null;
  private messages!: PostgresMessages;
  private groups!: PostgresGroups;
  private contacts!: PostgresContacts;
  private deliveries!: PostgresDeliveries;
  private files!: PostgresFiles;
  fresh = false;
  readonly kind = 'postgres';
  readonly insertsInCallOrder = false;

  constructor(private readonly url: string, private readonly opts: { groupCommitMax?: number; poolMax?: number } = {}) {}

  /** The connection pool, for tools that move whole tables (chatvault migrate --from --to). */
  get sqlPool(): pg.Pool {
    return this.db;
  }

  /**
   * Stores messages copied from another store with their seqs kept (chatvault migrate); a message
   * whose seq is here already is left as it is. Resolves with how many were stored.
   */
  copyMessages(rows: MessageRow[]): Promise<number> {
    return this.messages.copyIn(rows);
  }

  private get db(): pg.Pool {
    if (!this.pool) throw new Error('the PostgreSQL store is not open');
    return this.pool;
  }

  async open(): Promise<void> {
    const { connectionString, schema, options } = parseDatabaseUrl(this.url);
    // The search_path is a connection parameter, so every pooled connection starts in the schema
    // (a SET on connect could race the first query on that connection).
    const searchPath = schema === null ? null : `-c search_path="${schema}"`;
    const pool = new pg.Pool({
      connectionString,
      max: this.opts.poolMax ?? 10,
      ...(options !== null || searchPath !== null ? { options: [options, searchPath].filter((o) => o !== null).join(' ') } : {}),
    });
    // An idle connection the server drops (restart, failover) is reported here; without a listener
    // the process would die. The pool discards that connection and the next query opens another.
    pool.on('error', () => {});
    try {
      const { fresh } = await migrate(pool, schema);
      this.fresh = fresh;
    } catch (e) {
      await pool.end();
      throw e;
    }
    this.pool = pool;
    this.messages = new PostgresMessages(pool, this.opts.groupCommitMax ?? DEFAULT_GROUP_COMMIT_MAX);
    this.groups = new PostgresGroups(pool);
    this.contacts = new PostgresContacts(pool);
    this.deliveries = new PostgresDeliveries(pool);
    this.files = new PostgresFiles(pool);
  }

  async close(): Promise<void> {
    const pool = this.pool;
    if (!pool) return;
    try {
      await this.messages.flush();
    } finally {
      this.pool = null;
      await pool.end();
    }
  }

  async getMeta(key: string): Promise<string | null> {
    const r = await this.db.query('SELECT value FROM meta WHERE key = $1', [key]);
    return r.rows.length > 0 ? str(r.rows[0]!.value) : null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.db.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  async claimMeta(key: string, value: string): Promise<string> {
    await this.db.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, value]);
    return (await this.getMeta(key))!;
  }

  async claimNodeId(): Promise<number> {
    const r = await this.db.query<{ n: string }>("SELECT nextval('node_ids') % 1024 AS n");
    return Number(r.rows[0]!.n);
  }

  sharedBlobStore(): PostgresBlobStore {
    return new PostgresBlobStore(this.db as pg.Pool);
  }

  async createOrg(o: Omit<OrgRow, 'id' | 'credGen'>): Promise<OrgRow> {
    try {
      const r = await this.db.query(
        'INSERT INTO orgs (uuid, name, client_id, client_secret, created) VALUES ($1, $2, $3, $4, $5) RETURNING *',
        [o.uuid, o.name, o.clientId, o.clientSecret, o.created],
      );
      return orgFrom(r.rows[0]!);
    } catch (e) {
      throw isUniqueViolation(e) ? new DuplicateError(o.name) : e;
    }
  }

  async getOrgByName(name: string): Promise<OrgRow | null> {
    return one(await this.db.query('SELECT * FROM orgs WHERE lower(name) = lower($1)', [name]), orgFrom);
  }

  async getOrgById(id: number): Promise<OrgRow | null> {
    return one(await this.db.query('SELECT * FROM orgs WHERE id = $1', [id]), orgFrom);
  }

  async getOrgByClientId(clientId: string): Promise<OrgRow | null> {
    return one(await this.db.query('SELECT * FROM orgs WHERE client_id = $1', [clientId]), orgFrom);
  }

  async upsertAdmin(a: Omit<AdminRow, 'id' | 'pwGen' | 'modified'>): Promise<AdminRow> {
    // An existing admin keeps its uuid, username and created; a new password bumps pw_gen.
    const set = `password_hash = $2, pw_gen = admins.pw_gen + CASE WHEN admins.password_hash = $2 THEN 0 ELSE 1 END,
      sysadmin = $3, email = $4, modified = $5`;
    const updated = await this.db.query(`UPDATE admins SET ${set} WHERE lower(username) = lower($1) RETURNING *`, [
      a.username, a.passwordHash, a.sysadmin, a.email, Date.now(),
    ]);
    if (updated.rows.length > 0) return adminFrom(updated.rows[0]!);
    // A node starting at the same moment may insert the admin in between: then update theirs.
    const r = await this.db.query(
      `INSERT INTO admins (uuid, username, email, password_hash, sysadmin, created, modified) VALUES ($6, $1, $4, $2, $3, $7, $7)
       ON CONFLICT ((lower(username))) DO UPDATE SET ${set} RETURNING *`,
      [a.username, a.passwordHash, a.sysadmin, a.email, Date.now(), a.uuid, a.created],
    );
    return adminFrom(r.rows[0]!);
  }

  async createAdmin(a: Omit<AdminRow, 'id' | 'pwGen' | 'modified'>): Promise<AdminRow> {
    try {
      const r = await this.db.query(
        `INSERT INTO admins (uuid, username, email, password_hash, sysadmin, created, modified)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING *`,
        [a.uuid, a.username, a.email, a.passwordHash, a.sysadmin, a.created],
      );
      return adminFrom(r.rows[0]!);
    } catch (e) {
      throw isUniqueViolation(e) ? new DuplicateError(a.username) : e;
    }
  }

  async findAdmin(nameOrEmail: string): Promise<AdminRow | null> {
    // A username match wins over another admin's e-mail.
    const r = await this.db.query(
      `SELECT * FROM admins WHERE lower(username) = lower($1) OR lower(email) = lower($1)
       ORDER BY lower(username) = lower($1) DESC, id LIMIT 1`,
      [nameOrEmail],
    );
    return one(r, adminFrom);
  }

  async getAdminById(id: number): Promise<AdminRow | null> {
    return one(await this.db.query('SELECT * FROM admins WHERE id = $1', [id]), adminFrom);
  }

  async addOrgAdmin(orgId: number, adminId: number): Promise<void> {
    await this.db.query('INSERT INTO org_admins (org_id, admin_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [orgId, adminId]);
  }

  async orgsOfAdmin(adminId: number): Promise<OrgRow[]> {
    const r = await this.db.query(
      'SELECT orgs.* FROM orgs JOIN org_admins ON org_admins.org_id = orgs.id WHERE org_admins.admin_id = $1 ORDER BY orgs.id',
      [adminId],
    );
    return r.rows.map(orgFrom);
  }

  async isOrgAdmin(orgId: number, adminId: number): Promise<boolean> {
    const r = await this.db.query('SELECT 1 FROM org_admins WHERE org_id = $1 AND admin_id = $2', [orgId, adminId]);
    return r.rows.length > 0;
  }

  async createApp(a: Omit<AppRow, 'id' | 'credGen' | 'orgName'>): Promise<AppRow> {
    try {
      const r = await this.db.query(
        `WITH a AS (
           INSERT INTO apps (uuid, org_id, name, client_id, client_secret, open_registration, created)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *)
         SELECT a.*, orgs.name AS org_name FROM a JOIN orgs ON orgs.id = a.org_id`,
        [a.uuid, a.orgId, a.name, a.clientId, a.clientSecret, a.openRegistration, a.created],
      );
      return appFrom(r.rows[0]!);
    } catch (e) {
      throw isUniqueViolation(e) ? new DuplicateError(a.name) : e;
    }
  }

  async getApp(orgName: string, nameOrUuid: string): Promise<AppRow | null> {
    const r = await this.db.query(
      `${APP_SELECT} WHERE lower(orgs.name) = lower($1) AND (lower(apps.name) = lower($2) OR apps.uuid = lower($2)) ORDER BY apps.id LIMIT 1`,
      [orgName, nameOrUuid],
    );
    return one(r, appFrom);
  }

  async getAppById(id: number): Promise<AppRow | null> {
    return one(await this.db.query(`${APP_SELECT} WHERE apps.id = $1`, [id]), appFrom);
  }

  async listApps(orgId: number): Promise<AppRow[]> {
    return (await this.db.query(`${APP_SELECT} WHERE apps.org_id = $1 ORDER BY apps.id`, [orgId])).rows.map(appFrom);
  }

  async setAppCredentials(appId: number, clientId: string, clientSecret: string): Promise<AppRow> {
    await this.db.query('UPDATE apps SET client_id = $1, client_secret = $2, cred_gen = cred_gen + 1 WHERE id = $3', [clientId, clientSecret, appId]);
    return (await this.getAppById(appId))!;
  }

  async setOpenRegistration(appId: number, open: boolean): Promise<AppRow> {
    await this.db.query('UPDATE apps SET open_registration = $1 WHERE id = $2', [open, appId]);
    return (await this.getAppById(appId))!;
  }

  async createUsers(appId: number, users: NewUser[]): Promise<UserRow[]> {
    if (users.length === 0) return [];
    // One statement: all users or none. Ordered by position, so ids follow the order given.
    let rows: Row[];
    try {
      const r = await this.db.query(
        `INSERT INTO users (app_id, uuid, username, password_hash, properties, created, modified)
         SELECT $1, u.uuid, u.username, u.hash, u.props::json, u.created, u.created
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) WITH ORDINALITY AS u(uuid, username, hash, props, created, ord)
         ORDER BY u.ord
         RETURNING *`,
        [
          appId, users.map((u) => u.uuid), users.map((u) => u.username), users.map((u) => u.passwordHash),
          users.map((u) => JSON.stringify(u.properties)), users.map((u) => u.created),
        ],
      );
      rows = r.rows;
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      throw new DuplicateError(await this.firstTaken(appId, users));
    }
    const byUuid = new Map(rows.map((r) => [str(r.uuid), userFrom(r)]));
    return users.map((u) => byUuid.get(u.uuid)!);
  }

  /** The username of the first user of a refused batch whose name (or uuid) was taken. */
  private async firstTaken(appId: number, users: NewUser[]): Promise<string> {
    const r = await this.db.query<{ name: string; uuid: string; app_id: string }>(
      `SELECT lower(username) AS name, uuid, app_id FROM users
       WHERE (app_id = $1 AND lower(username) = ANY($2::text[])) OR uuid = ANY($3::text[])`,
      [appId, users.map((u) => u.username.toLowerCase()), users.map((u) => u.uuid)],
    );
    const names = new Set(r.rows.filter((row) => num(row.app_id) === appId).map((row) => row.name));
    const uuids = new Set(r.rows.map((row) => row.uuid));
    const seen = new Set<string>();
    for (const u of users) {
      const name = u.username.toLowerCase();
      if (names.has(name) || uuids.has(u.uuid) || seen.has(name)) return u.username;
      seen.add(name);
    }
    // Taken by a batch that committed and was deleted again since: the first is as good as any.
    return users[0]!.username;
  }

  async getUser(appId: number, nameOrUuid: string): Promise<UserRow | null> {
    // Usernames are never shaped like a uuid, so only such a string needs the uuid lookup.
    const r = UUID_RE.test(nameOrUuid)
      ? await this.db.query('SELECT * FROM users WHERE app_id = $1 AND uuid = $2', [appId, nameOrUuid.toLowerCase()])
      : await this.db.query('SELECT * FROM users WHERE app_id = $1 AND lower(username) = lower($2)', [appId, nameOrUuid]);
    return one(r, userFrom);
  }

  async getUserById(id: number): Promise<UserRow | null> {
    return one(await this.db.query('SELECT * FROM users WHERE id = $1', [id]), userFrom);
  }

  async listUsers(appId: number, after: UserPosition | null, limit: number): Promise<UserRow[]> {
    const r = after
      ? await this.db.query('SELECT * FROM users WHERE app_id = $1 AND (created, id) > ($2, $3) ORDER BY created, id LIMIT $4', [
          appId, after.created, after.id, limit,
        ])
      : await this.db.query('SELECT * FROM users WHERE app_id = $1 ORDER BY created, id LIMIT $2', [appId, limit]);
    return r.rows.map(userFrom);
  }

  async updateUser(userId: number, patch: UserPatch): Promise<UserRow> {
    const params: unknown[] = [userId, patch.modified];
    const sets: string[] = ['modified = $2'];
    if (patch.passwordHash !== undefined) {
      params.push(patch.passwordHash);
      sets.push(`password_hash = $${params.length}`, 'pw_gen = pw_gen + 1');
    }
    if (patch.activated !== undefined) {
      params.push(patch.activated);
      sets.push(`activated = $${params.length}`);
    }
    if (patch.properties !== undefined) {
      params.push(JSON.stringify(patch.properties));
      sets.push(`properties = $${params.length}::json`);
    }
    const r = await this.db.query(`UPDATE users SET ${sets.join(', ')} WHERE id = $1 RETURNING *`, params);
    return one(r, userFrom)!;
  }

  async deleteUsers(userIds: number[]): Promise<UserRow[]> {
    if (userIds.length === 0) return [];
    const byId = await withTransaction(this.db, async (client) => {
      const r = await client.query('DELETE FROM users WHERE id = ANY($1::bigint[]) RETURNING *', [userIds]);
      const gone = r.rows.map(userFrom);
      // A user's inbox goes with it: a new user of the same name must not inherit it.
      if (gone.length > 0) {
        await client.query('DELETE FROM deliveries d USING unnest($1::int[], $2::text[]) AS g(a, u) WHERE d.app_id = g.a AND d.username = g.u',
          [gone.map((u) => u.appId), gone.map((u) => u.username.toLowerCase())]);
      }
      return new Map(gone.map((u) => [u.id, u]));
    });
    return [...new Set(userIds)].flatMap((id) => {
      const u = byId.get(id);
      return u ? [u] : [];
    });
  }

  // ---- Chat messages (postgres-messages.ts) ----
  async insertMessages(messages: NewMessage[]): Promise<bigint[]> { return this.messages.insert(messages); }
  async findMessages(q: MessageQuery): Promise<MessageHit[]> { return this.messages.find(q); }
  async findMessagesSpliced(q: MessageQuery, separator: string): Promise<SplicedPage> { return this.messages.spliced(q, separator); }
  async highWaterMark(): Promise<bigint> { return this.messages.highWaterMark(); }
  async messageSeq(appId: number, msgId: string): Promise<bigint | null> { return this.messages.messageSeq(appId, msgId); }
  async messageStats(appId: number, from: number, to: number): Promise<{ count: number; fingerprint: string }> { return this.messages.messageStats(appId, from, to); }
  async deleteMessages(appId: number, seqs: bigint[]): Promise<bigint[]> { return this.messages.delete(appId, seqs); }
  async messagesAfter(appId: number, afterSeq: bigint, limit: number): Promise<MessageRow[]> { return this.messages.after(appId, afterSeq, limit); }
  async countMessages(appId: number): Promise<number> { return this.messages.count(appId); }

  // ---- Real-time delivery (postgres-deliveries.ts; the rows are written with the messages) ----
  async pendingDeliveries(appId: number, username: string, afterSeq: bigint, limit: number): Promise<MessageRow[]> { return this.deliveries.pending(appId, username, afterSeq, limit); }
  async countPendingDeliveries(appId: number, username: string): Promise<number> { return this.deliveries.countPending(appId, username); }
  async deliveryStatus(appId: number, username: string, msgId: string): Promise<'delivered' | 'undelivered' | null> { return this.deliveries.status(appId, username, msgId); }
  async markDelivered(appId: number, username: string, msgIds: readonly string[]): Promise<AckedMessage[]> { return this.deliveries.markDelivered(appId, username, msgIds); }
  async inbox(appId: number, username: string, afterSeq: bigint, maxSeq: bigint, limit: number): Promise<MessageRow[]> { return this.deliveries.inbox(appId, username, afterSeq, maxSeq, limit); }
  async clientSend(appId: number, sender: string, clientId: string): Promise<Map<string, SentMessage>> { return this.deliveries.clientSend(appId, sender, clientId); }

  // ---- Contacts and block lists (postgres-contacts.ts) ----
  async addContact(ownerId: number, friendId: number, created: number): Promise<void> { return this.contacts.addContact(ownerId, friendId, created); }
  async removeContact(ownerId: number, friendId: number): Promise<void> { return this.contacts.removeContact(ownerId, friendId); }
  async listContacts(ownerId: number): Promise<string[]> { return this.contacts.listContacts(ownerId); }
  async addBlocks(ownerId: number, blockedIds: number[], created: number): Promise<void> { return this.contacts.addBlocks(ownerId, blockedIds, created); }
  async removeBlock(ownerId: number, blockedId: number): Promise<void> { return this.contacts.removeBlock(ownerId, blockedId); }
  async listBlocks(ownerId: number): Promise<string[]> { return this.contacts.listBlocks(ownerId); }

  // ---- Groups and chat rooms (postgres-groups.ts) ----
  async createGroup(appId: number, g: NewGroup, maxJoined: number): Promise<GroupRow | JoinRefusal> { return this.groups.createGroup(appId, g, maxJoined); }
  async getGroups(appId: number, kind: GroupKind, groupIds: string[]): Promise<GroupRow[]> { return this.groups.getGroups(appId, kind, groupIds); }
  async listGroups(appId: number, kind: GroupKind, beforeId: number | null, limit: number | null): Promise<GroupRow[]> { return this.groups.listGroups(appId, kind, beforeId, limit); }
  async updateGroup(id: number, patch: GroupPatch): Promise<GroupRow> { return this.groups.updateGroup(id, patch); }
  async setGroupOwner(id: number, userId: number, modified: number): Promise<GroupRow> { return this.groups.setGroupOwner(id, userId, modified); }
  async deleteGroups(ids: number[]): Promise<void> { return this.groups.deleteGroups(ids); }
  async deleteGroupsOwnedBy(userIds: number[]): Promise<number> { return this.groups.deleteGroupsOwnedBy(userIds); }
  async groupMembers(id: number): Promise<GroupMember[]> { return this.groups.groupMembers(id); }
  async addGroupMembers(id: number, userIds: number[], joined: number, maxJoined: number): Promise<JoinRefusal | null> { return this.groups.addGroupMembers(id, userIds, joined, maxJoined); }
  async removeGroupMembers(id: number, userIds: number[]): Promise<void> { return this.groups.removeGroupMembers(id, userIds); }
  async groupsOfUser(appId: number, kind: GroupKind, userId: number): Promise<GroupRow[]> { return this.groups.groupsOfUser(appId, kind, userId); }
  async groupBlocks(id: number): Promise<GroupMember[]> { return this.groups.groupBlocks(id); }
  async blockGroupUsers(id: number, userIds: number[], created: number): Promise<void> { return this.groups.blockGroupUsers(id, userIds, created); }
  async unblockGroupUsers(id: number, userIds: number[]): Promise<void> { return this.groups.unblockGroupUsers(id, userIds); }

  // ---- Chat files (postgres-files.ts) ----
  async createChatFile(f: NewChatFile): Promise<ChatFileRow> { return this.files.createChatFile(f); }
  async getChatFile(appId: number, uuid: string): Promise<ChatFileRow | null> { return this.files.getChatFile(appId, uuid); }
}
