import Database from 'better-sqlite3';
import { takeBatch } from '../group-commit.js';
import { messageFrom, num, type Row } from '../rows.js';
import { textContains, textTokens, type ContainsQuery } from '../../domain/text-match.js';
import { compileWhere, distanceMeters, normalizeJsonPath, sortExpression, type Fragment, type SqlParam } from './sqlite-ql.js';
import type { MessageHit, MessageQuery, MessageRow, NewMessage, SplicedPage } from '../store.js';

const MAX_CACHED_STATEMENTS = 256;
// Client ids wait in client_id_log, and inbox rows in delivery_log, about this long (or until
// this many rows wait) before they are moved into client_ids and deliveries: sorted, a sender's
// ids (a recipient's rows) of that time share a page there, where keyed at once each message
// took a page of its own in every commit of both tables. Senders and recipients fall into
// LOG_PARTS groups by a hash of their name, and the groups are moved one after another,
// LOG_MOVE_MS / LOG_PARTS apart: each move writes a part of the pages, so no commit carries the
// whole second's move (at 5,000 sends/s the client ids alone took 15–25 ms in one commit; with
// the inbox rows, moves of a quarter took 10–17 ms, of a sixteenth 5–8 ms: `npm run bench --
// sqlite-writer --no-sync`). Each move reads the whole of both logs (some 100 pages).
const LOG_MOVE_MS = 1000;
const LOG_PARTS = 16;
const LOG_PART_MS = LOG_MOVE_MS / LOG_PARTS;
const LOG_MOVE_COUNT = 50_000;
const ALL_PARTS: readonly number[] = Array.from({ length: LOG_PARTS }, (_, i) => i);

interface PendingWrite {
  messages: NewMessage[];
  resolve(seqs: bigint[]): void;
  reject(err: unknown): void;
}

/** Other writes that share a group commit (acks of deliveries): run inside its transaction. */
interface PendingChore {
  run(): unknown;
  resolve(result: unknown): void;
  reject(err: unknown): void;
}

/**
 * Chat messages of the SQLite store: group-committed inserts with their full-text and location
 * index rows, keyset pages of compiled ql queries, the high-water mark, purges.
 */
export class SqliteMessages {
  private pending: PendingWrite[] = [];
  private chores: PendingChore[] = [];
  private flushScheduled = false;
  private readonly stmts: ReturnType<SqliteMessages['prepare']>;
  // The client ids this connection wrote into client_id_log (clientIdKey → seq), one map per
  // group of senders, so that a send is checked against them without an index on the log; a
  // group's map is emptied when that group is moved.
  private readonly loggedClientIds: Map<string, bigint>[] = ALL_PARTS.map(() => new Map());
  // Likewise the inbox rows this connection wrote into delivery_log: each recipient's latest
  // (inboxKey → seq), one map per group of recipients, and how many rows each group has there.
  private readonly loggedInboxes: Map<string, bigint>[] = ALL_PARTS.map(() => new Map());
  private readonly loggedInboxRows: number[] = ALL_PARTS.map(() => 0);
  // The group moved next, and when the last group was moved.
  private nextPart = 0;
  private lastPartMove = Date.now();

  constructor(private readonly db: Database.Database, private readonly groupCommitMax: number) {
    this.registerFunctions();
    this.stmts = this.prepare();
    // Left by a process that stopped without moving them: moved now, so that what this
    // connection does not know of is all in client_ids and deliveries.
    if (this.stmts.anyLoggedClientId.get() !== undefined || this.stmts.anyLoggedDelivery.get() !== undefined) this.moveLogs();
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
      logDelivery: db.prepare('INSERT INTO delivery_log (seq, app_id, username, timestamp, part) VALUES (?, ?, ?, ?, ?)'),
      anyLoggedDelivery: db.prepare('SELECT 1 FROM delivery_log LIMIT 1').pluck(),
      // In key order, as the client ids below. OR IGNORE: a row can be in one table only (it is
      // moved in one transaction), so nothing is ever ignored.
      moveDeliveries: db.prepare(
        `INSERT OR IGNORE INTO deliveries (app_id, username, seq, timestamp, delivered)
         SELECT app_id, username, seq, timestamp, delivered FROM delivery_log ORDER BY app_id, username, seq`,
      ),
      clearDeliveryLog: db.prepare('DELETE FROM delivery_log'),
      moveDeliveryPart: db.prepare(
        `INSERT OR IGNORE INTO deliveries (app_id, username, seq, timestamp, delivered)
         SELECT app_id, username, seq, timestamp, delivered FROM delivery_log WHERE part = ? ORDER BY app_id, username, seq`,
      ),
      clearDeliveryPart: db.prepare('DELETE FROM delivery_log WHERE part = ?'),
      deleteLoggedDeliveries: db.prepare('DELETE FROM delivery_log WHERE seq = ?'),
      lastDelivery: db.prepare('SELECT max(seq) FROM deliveries WHERE app_id = ? AND username = ?').pluck().safeIntegers(true),
      clientIdTaken: db.prepare('SELECT 1 FROM client_ids WHERE app_id = ? AND sender = ? AND client_id = ? AND target = ?').pluck(),
      logClientId: db.prepare('INSERT INTO client_id_log (seq, app_id, sender, client_id, target, timestamp, part) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      loggedClientId: db.prepare('SELECT 1 FROM client_id_log WHERE seq = ?').pluck(),
      anyLoggedClientId: db.prepare('SELECT 1 FROM client_id_log LIMIT 1').pluck(),
      // In key order: consecutive inserts land on the same pages of client_ids. OR IGNORE: a key
      // stored there already keeps its first message (never the case for ids checked here).
      moveClientIds: db.prepare(
        `INSERT OR IGNORE INTO client_ids (app_id, sender, client_id, target, seq, timestamp)
         SELECT app_id, sender, client_id, target, seq, timestamp FROM client_id_log ORDER BY app_id, sender, client_id, target`,
      ),
      clearClientIdLog: db.prepare('DELETE FROM client_id_log'),
      // One group of senders: the log holds about a second of ids, read whole (no index on part).
      movePart: db.prepare(
        `INSERT OR IGNORE INTO client_ids (app_id, sender, client_id, target, seq, timestamp)
         SELECT app_id, sender, client_id, target, seq, timestamp FROM client_id_log WHERE part = ? ORDER BY app_id, sender, client_id, target`,
      ),
      clearPart: db.prepare('DELETE FROM client_id_log WHERE part = ?'),
      deleteLoggedClientId: db.prepare('DELETE FROM client_id_log WHERE seq = ?'),
      deleteMessage: db.prepare('DELETE FROM messages WHERE app_id = ? AND seq = ?'),
      deleteDeliveries: db.prepare('DELETE FROM deliveries WHERE app_id = ? AND seq = ?'),
      deleteClientIds: db.prepare('DELETE FROM client_ids WHERE app_id = ? AND seq = ?'),
      deleteText: db.prepare('DELETE FROM messages_fts WHERE rowid = ?'),
      deleteGeo: db.prepare('DELETE FROM messages_geo WHERE id = ?'),
      maxSeq: db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").pluck().safeIntegers(true),
      messageSeq: db.prepare('SELECT seq FROM messages WHERE app_id = ? AND msg_id = ?').pluck().safeIntegers(true),
      // Covered by the (app_id, timestamp, seq) index: no table rows are read.
      messageStats: db.prepare('SELECT count(*), max(seq), total(seq) FROM messages WHERE app_id = ? AND timestamp >= ? AND timestamp < ?').raw(true).safeIntegers(true),
      // +app_id: the seq range (the rowid) is the way in; without statistics SQLite would take an
      // app_id index, read every message of the app and sort them.
      messagesAfter: db.prepare('SELECT * FROM messages WHERE +app_id = ? AND seq > ? ORDER BY seq LIMIT ?').safeIntegers(true),
    };
  }

  /** Queues messages for the next group commit; resolves with their seqs once on disk. */
  insert(messages: NewMessage[]): Promise<bigint[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ messages, resolve, reject });
      this.scheduleFlush();
    });
  }

  /**
   * Runs `work` (writes of its own, no transaction) inside the next group commit's transaction;
   * resolves with its result once that commit is on disk. Writes of a turn then cost one commit
   * and one fsync together, and the pages they share are written once.
   */
  withNextCommit<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.chores.push({ run: work, resolve: resolve as (r: unknown) => void, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Everything that arrives in this turn of the event loop shares one fsync'd commit.
    setImmediate(() => this.flush());
  }

  /** Commits everything queued, in group-commit batches (the other writes with the first). */
  flush(): void {
    this.flushScheduled = false;
    while (this.pending.length > 0 || this.chores.length > 0) {
      const batch = takeBatch(this.pending, this.groupCommitMax);
      const chores = this.chores.splice(0);
      // A repeated client id (a client resending what it sent before the connection broke) is
      // refused before the batch, so it does not cost the others their shared commit. The
      // checks share one read transaction (each on its own would take the log's read lock).
      const fresh: PendingWrite[] = [];
      const keys = new Set<string>();
      const refused = this.db.transaction(() => {
        const out: [PendingWrite, NewMessage][] = [];
        for (const w of batch) {
          const mine = new Set<string>();
          const repeated = w.messages.find((m) => this.clientIdTaken(m, keys, mine));
          if (repeated) out.push([w, repeated]);
          else {
            fresh.push(w);
            for (const k of mine) keys.add(k);
          }
        }
        return out;
      })();
      for (const [w, m] of refused) w.reject(Object.assign(new Error(`client id ${m.clientId} was used already`), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }));
      const parts = this.partsDue(keys.size + inboxRows(fresh));
      let results: bigint[][];
      let done: unknown[];
      try {
        [results, done] = this.db.transaction(() => {
          const r = [fresh.map((w) => w.messages.map((m) => this.insertOne(m))), chores.map((c) => c.run())] as const;
          this.moveLogged(parts);
          return r;
        })();
      } catch {
        // Nothing of the batch was committed. One bad write (a duplicate msg_id of an import)
        // must not fail the others that happened to share its commit: retry each on its own.
        // (Not savepoints: those would journal every page a write touches, doubling its cost.)
        for (const w of fresh) {
          alone(this.db, () => w.messages.map((m) => this.insertOne(m)), {
            resolve: (seqs) => {
              this.rememberClientIds(w.messages, seqs);
              w.resolve(seqs);
            },
            reject: (e) => w.reject(e),
          });
        }
        for (const c of chores) alone(this.db, c.run, c);
        continue;
      }
      this.movedLogs(parts);
      // The ids of this commit that were not moved with their group wait in the log.
      fresh.forEach((w, i) => this.rememberClientIds(w.messages, results[i]!, parts));
      fresh.forEach((w, i) => w.resolve(results[i]!));
      chores.forEach((c, i) => c.resolve(done[i]));
    }
  }

  /** Commits what is queued and moves the client ids and inbox rows this connection logged: before closing. */
  finish(): void {
    this.flush();
    if (this.loggedCount() > 0) this.moveLogs();
  }

  /** Moves all of client_id_log into client_ids and of delivery_log into deliveries, in a transaction of its own. */
  moveLogs(): void {
    this.db.transaction(() => this.moveLogged(ALL_PARTS))();
    this.movedLogs(ALL_PARTS);
  }

  /** Rows this connection has waiting in the two logs. */
  private loggedCount(): number {
    let n = 0;
    for (const m of this.loggedClientIds) n += m.size;
    for (const r of this.loggedInboxRows) n += r;
    return n;
  }

  /**
   * The groups of senders and recipients whose logged rows the next commit moves: the next
   * group each LOG_PART_MS, several when commits came further apart, every group when the last
   * move was a whole LOG_MOVE_MS ago or the logs would hold too many (`incoming`: the rows the
   * commit adds); none while this connection has logged none.
   */
  private partsDue(incoming: number): readonly number[] {
    const logged = this.loggedCount();
    if (logged + incoming >= LOG_MOVE_COUNT) return ALL_PARTS;
    if (logged === 0) return [];
    const due = Math.floor((Date.now() - this.lastPartMove) / LOG_PART_MS);
    if (due >= LOG_PARTS) return ALL_PARTS;
    return Array.from({ length: due }, (_, i) => (this.nextPart + i) % LOG_PARTS);
  }

  private moveLogged(parts: readonly number[]): void {
    if (parts.length === LOG_PARTS) {
      // Also the rows of another part count (a client-id log written before the groups, part 0).
      this.stmts.moveClientIds.run();
      this.stmts.clearClientIdLog.run();
      this.stmts.moveDeliveries.run();
      this.stmts.clearDeliveryLog.run();
      return;
    }
    for (const p of parts) {
      this.stmts.movePart.run(p);
      this.stmts.clearPart.run(p);
      this.stmts.moveDeliveryPart.run(p);
      this.stmts.clearDeliveryPart.run(p);
    }
  }

  /** After the commit that moved `parts`: their rows are in client_ids and deliveries now. */
  private movedLogs(parts: readonly number[]): void {
    if (parts.length === 0) return;
    for (const p of parts) {
      this.loggedClientIds[p]!.clear();
      this.loggedInboxes[p]!.clear();
      this.loggedInboxRows[p] = 0;
    }
    if (parts.length === LOG_PARTS) {
      this.lastPartMove = Date.now();
    } else {
      this.nextPart = (this.nextPart + parts.length) % LOG_PARTS;
      this.lastPartMove += parts.length * LOG_PART_MS;
    }
  }

  /**
   * Whether the message's client id is stored already, or comes twice in this batch (`batch`:
   * the keys of the batch's writes taken so far; `write`: this write's, collected here). One this
   * connection logged is confirmed by its log row: a purge, or another process's move, may have
   * taken that row since (moved rows are in client_ids).
   */
  private clientIdTaken(m: NewMessage, batch: ReadonlySet<string>, write: Set<string>): boolean {
    if (m.clientId === undefined) return false;
    const sender = m.from.toLowerCase();
    const target = m.to.toLowerCase();
    const key = clientIdKey(m.appId, sender, m.clientId, target);
    if (batch.has(key) || write.has(key)) return true;
    const logged = this.loggedClientIds[namePart(sender)]!.get(key);
    if (logged !== undefined && this.stmts.loggedClientId.get(logged) !== undefined) return true;
    if (this.stmts.clientIdTaken.get(m.appId, sender, m.clientId, target) !== undefined) return true;
    write.add(key);
    return false;
  }

  /** Notes the logged ids of a commit, but those of the groups it moved (`moved`). */
  private rememberClientIds(messages: readonly NewMessage[], seqs: readonly bigint[], moved: readonly number[] = []): void {
    messages.forEach((m, i) => {
      if (m.clientId === undefined) return;
      const sender = m.from.toLowerCase();
      const part = namePart(sender);
      if (moved.includes(part)) return;
      this.loggedClientIds[part]!.set(clientIdKey(m.appId, sender, m.clientId, m.to.toLowerCase()), seqs[i]!);
    });
  }

  private insertOne(m: NewMessage): bigint {
    const { text, recipients, clientId, inboxPrevious: _, ...row } = m;
    const seq = BigInt(this.stmts.insertMessage.run(row).lastInsertRowid);
    if (recipients) {
      // One writer commits at a time, so each recipient's latest inbox row is exact here: the
      // newest this connection logged, else the newest moved (a recipient's logged rows are all
      // newer than its moved ones: a group's rows are moved together).
      const previous: bigint[] = [];
      for (const u of recipients) {
        const part = namePart(u);
        const key = inboxKey(m.appId, u);
        const logged = this.loggedInboxes[part]!;
        previous.push(logged.get(key) ?? (this.stmts.lastDelivery.get(m.appId, u) as bigint | null) ?? 0n);
        this.stmts.logDelivery.run(seq, m.appId, u, m.timestamp, part);
        logged.set(key, seq);
        this.loggedInboxRows[part]!++;
      }
      m.inboxPrevious = previous;
    }
    if (clientId !== undefined) {
      const sender = m.from.toLowerCase();
      this.stmts.logClientId.run(seq, m.appId, sender, clientId, m.to.toLowerCase(), m.timestamp, namePart(sender));
    }
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

  /** The SELECT of one keyset page: the statement text, its parameters, the sort-key count. */
  private pageQuery(q: MessageQuery, limit: number): { sql: string; params: SqlParam[]; keys: Fragment[]; order: string[] } {
    const keys = q.orderBy.map((k) => sortExpression(k, q.near));
    // In storage order the keyset is a seq bound: merged with `since` into one lower bound, the
    // rowid range is the way in (SQLite seeks with one lower bound only). The unary + keeps the
    // planner from taking an app_id index, which every row of the app shares, and sorting.
    const storageOrder = q.orderBy.length === 0;
    const lower = storageOrder && q.after && q.after.seq > q.minSeq ? q.after.seq : q.minSeq;
    const params: SqlParam[] = [q.appId, q.maxSeq, lower];
    const where: string[] = [storageOrder ? '+m.app_id = ?' : 'm.app_id = ?', 'm.seq <= ?', 'm.seq > ?'];
    const add = (f: Fragment) => {
      where.push(f.sql);
      params.push(...f.params);
    };
    if (q.where) add(compileWhere(q.where));
    // A message without a sort key's field has no place in that order (Usergrid dropped it too).
    for (const k of keys) if (!k.sql.startsWith('m.')) add({ sql: `${k.sql} IS NOT NULL`, params: k.params });
    const seqDir = q.orderBy.length > 0 ? q.orderBy[q.orderBy.length - 1]!.dir : 'asc';
    if (q.after && !storageOrder) add(keysetAfter(keys, q.orderBy.map((k) => k.dir), seqDir, q.after.keys as SqlParam[], q.after.seq));
    const order = [...q.orderBy.map((k) => k.dir.toUpperCase()), seqDir.toUpperCase()];
    const orderSql = [...keys.map((k, i) => `${k.sql} ${order[i]}`), `m.seq ${order[order.length - 1]}`];
    const select = ['m.seq', ...keys.map((k, i) => `${k.sql} AS k${i}`), 'm.entity AS e'];
    const sql = `SELECT ${select.join(', ')} FROM messages m WHERE ${where.join(' AND ')} ORDER BY ${orderSql.join(', ')} LIMIT ?`;
    return { sql, params: [...keys.flatMap((k) => k.params), ...params, ...keys.flatMap((k) => k.params), limit], keys, order };
  }

  /** One keyset page of a message query. */
  find(q: MessageQuery): MessageHit[] {
    const { sql, params, keys } = this.pageQuery(q, q.limit);
    const rows = this.cached(sql).all(...params) as unknown[][];
    return rows.map((r) => ({ seq: BigInt(r[0] as number), keys: r.slice(1, 1 + keys.length), entity: r[1 + keys.length] as Buffer }));
  }

  /**
   * One keyset page whose records SQLite splices into one buffer (separated by `separator`):
   * one allocation per page instead of one per message, which makes bulk reads several times
   * faster. Also tells whether more follow and where the page ended (for the next keyset).
   */
  spliced(q: MessageQuery, separator: string): SplicedPage {
    const { sql, params, keys, order } = this.pageQuery(q, q.limit + 1);
    const cols = [...keys.map((_k, i) => `k${i}`), 'seq'];
    const by = cols.map((c, i) => `${c} ${order[i]}`).join(', ');
    const reversed = cols.map((c, i) => `${c} ${order[i] === 'ASC' ? 'DESC' : 'ASC'}`).join(', ');
    const first = `(SELECT * FROM page ORDER BY ${by} LIMIT ?)`;
    const text =
      `WITH page AS MATERIALIZED (${sql}) SELECT (SELECT count(*) FROM page), ` +
      `(SELECT CAST(group_concat(e, ? ORDER BY ${by}) AS BLOB) FROM ${first}), ` +
      `(SELECT seq FROM ${first} ORDER BY ${reversed} LIMIT 1)`;
    const [n, body, lastSeq] = this.cached(text).get(...params, separator, q.limit, q.limit) as [number, Buffer | null, number | null];
    if (lastSeq === null) return { count: 0, more: false, body: Buffer.alloc(0), last: null };
    // The last row's sort keys, computed by the same expressions (and so exactly) from its row.
    const lastKeys = keys.length === 0
      ? []
      : (this.cached(`SELECT ${keys.map((k) => k.sql).join(', ')} FROM messages m WHERE m.seq = ?`).get(...keys.flatMap((k) => k.params), lastSeq) as unknown[]);
    return { count: Math.min(n, q.limit), more: n > q.limit, body: body ?? Buffer.alloc(0), last: { seq: BigInt(lastSeq), keys: lastKeys } };
  }

  highWaterMark(): bigint {
    // One writer commits at a time and seqs are assigned in commit order, so the largest seq
    // ever handed out is already committed: nothing below it can still appear.
    const v = this.stmts.maxSeq.get() as bigint | undefined;
    return v ?? 0n;
  }

  messageSeq(appId: number, msgId: string): bigint | null {
    const v = this.stmts.messageSeq.get(appId, msgId) as bigint | undefined;
    return v ?? null;
  }

  messageStats(appId: number, from: number, to: number): { count: number; fingerprint: string } {
    const r = this.stmts.messageStats.get(appId, from, to) as [bigint, bigint | null, bigint | null];
    return { count: Number(r[0]), fingerprint: `${r[0]}:${r[1] ?? 0}:${r[2] ?? 0}` };
  }

  delete(appId: number, seqs: bigint[]): bigint[] {
    const deleted: bigint[] = [];
    this.db.transaction(() => {
      for (const seq of seqs) {
        if (this.stmts.deleteMessage.run(appId, seq).changes === 0) continue;
        deleted.push(seq);
        this.stmts.deleteDeliveries.run(appId, seq);
        this.stmts.deleteLoggedDeliveries.run(seq);
        this.stmts.deleteClientIds.run(appId, seq);
        this.stmts.deleteLoggedClientId.run(seq);
        this.stmts.deleteText.run(seq);
        this.stmts.deleteGeo.run(seq);
      }
    })();
    return deleted;
  }

  after(appId: number, afterSeq: bigint, limit: number): MessageRow[] {
    return (this.stmts.messagesAfter.all(appId, afterSeq, limit) as Row[]).map(messageFrom);
  }

  count(appId: number): number {
    const r = this.db.prepare('SELECT count(*) AS n FROM messages WHERE app_id = ?').get(appId) as Row;
    return num(r.n);
  }
}

/**
 * The group a (lower-cased) name's logged rows are moved with, its client ids as a sender and
 * its inbox rows as a recipient: FNV-1a of the name.
 */
function namePart(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return (h >>> 0) % LOG_PARTS;
}

/** The inbox rows the writes will log: one per recipient of each message. */
function inboxRows(writes: readonly PendingWrite[]): number {
  let n = 0;
  for (const w of writes) for (const m of w.messages) n += m.recipients?.length ?? 0;
  return n;
}

function inboxKey(appId: number, username: string): string {
  return `${appId}\0${username}`;
}

function clientIdKey(appId: number, sender: string, clientId: string, target: string): string {
  return `${appId}\0${sender}\0${clientId}\0${target}`;
}

/** Runs one write in a transaction of its own, settling its promise. */
function alone<T>(db: Database.Database, work: () => T, p: { resolve(r: T): void; reject(e: unknown): void }): void {
  try {
    p.resolve(db.transaction(work)());
  } catch (e) {
    p.reject(e);
  }
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
