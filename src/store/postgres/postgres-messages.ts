import type pg from 'pg';
import type { MessageAddress, MessageHit, MessageQuery, MessageRow, NewMessage, SplicedPage } from '../store.js';
import { MessagePartitions } from './postgres-partitions.js';
import { compileWhere, Params, sortPlan, type PgParam, type SortPlan } from './postgres-ql.js';
import { storedText } from './postgres-message-text.js';

export { MESSAGES_MIGRATION } from './postgres-message-schema.js';

/*
 * The high-water mark on PostgreSQL, and why it is exactly-once.
 *
 * A walk reads only seq <= its high-water mark H, so H must never pass a seq that can still
 * commit: once H is handed out, every message with seq <= H must already be committed (or never
 * will be). SQLite commits one writer at a time in seq order; PostgreSQL hands out sequence values
 * before commit, to many connections of many processes at once, so seq 11 may commit while seq 10
 * is still in flight.
 *
 * Writers (cv_insert_messages, message-schema): the insert is the first write of its transaction.
 * It takes ROW EXCLUSIVE on message_keys, then, under a session-level advisory lock held for
 * microseconds, forces its transaction id (pg_current_xact_id) and takes its seqs. Transaction
 * ids are handed out in increasing order, and every reserving transaction gets its id inside the
 * lock (it had none before: the function checks), so seq order = lock order = transaction-id
 * order: (I) if writer A reserved before writer B, then xid(A) < xid(B) and seqs(A) < seqs(B).
 * Each key row stores its writer's xid. Writers stay concurrent: only the reservation is serial.
 *
 * Readers (HWM_SQL), one statement: its snapshot S is taken first; then pg_locks is read once,
 * giving W = the smallest xid among transactions holding a lock on message_keys (in-flight
 * writers); H = the largest seq among rows visible in S whose xid < W (no W: all visible rows).
 * Claim: when H is returned, every writer X with a seq <= H has finished. Let R be the writer of
 * the row with seq H: R committed before S, and xid(R) < W. X's seqs are <= H, so X reserved no
 * later than R, so by (I) xid(X) <= xid(R) < W, and X reserved before S. X took its table lock
 * before reserving and holds it to its end; if X were still running when pg_locks was read, it
 * would have held that lock and its xid then (both predate S), so W <= xid(X): a contradiction.
 * So X had finished. Writers that had not yet reserved when pg_locks was read reserve later
 * than every row visible in S, so by (I) their seqs are above H. (pg_locks reads the fast-path
 * relation locks before the main table; a writer that ends or begins between the two reads is
 * covered by the same two cases.)
 *
 * This is the snapshot-xmin rule (largest seq with xid < xmin) made sharper: xmin is held back by
 * any transaction of the cluster, a long one in another database included, while W only counts
 * writers of this store. A deleted message leaves its key row, so H never goes back.
 *
 * Read-your-writes: a message acknowledged (committed) before highWaterMark() is called is below
 * H unless an older writer is still in flight; highWaterMark() then waits a little (hwmWaitMs)
 * for such writers, which normally finish within a commit, before settling for the smaller H.
 */
const HWM_SQL = `
WITH s AS MATERIALIZED (SELECT pg_current_snapshot() AS snap),
l AS MATERIALIZED (
  SELECT locktype, database, relation, virtualtransaction, transactionid FROM pg_locks
   WHERE locktype IN ('relation', 'transactionid')),
w AS MATERIALIZED (
  SELECT min(((x.ref + (((x.x32 - (x.ref & 4294967295) + 2147483648) % 4294967296 + 4294967296) % 4294967296) - 2147483648))::text)::xid8 AS xid
    FROM (SELECT t.transactionid::text::bigint AS x32, (SELECT pg_snapshot_xmax(snap)::text::bigint FROM s) AS ref
            FROM l r JOIN l t ON t.virtualtransaction = r.virtualtransaction
           WHERE r.locktype = 'relation' AND r.relation = 'message_keys'::regclass
             AND r.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND t.locktype = 'transactionid') x)
SELECT (SELECT k.seq FROM message_keys k
         WHERE k.xid < coalesce((SELECT xid FROM w), (SELECT pg_snapshot_xmax(snap) FROM s))
         ORDER BY k.seq DESC LIMIT 1) AS hwm,
       (SELECT k.seq FROM message_keys k ORDER BY k.seq DESC LIMIT 1) AS top`;

const INSERT_SQL = `SELECT cv_insert_messages($1::int[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[],
  $7::text[], $8::text[], $9::text[], $10::float8[], $11::float8[], $12::text[], $13::text[], $14::bytea, $15::int[]) AS first`;

/** SQLSTATE of an insert into `messages` that found no partition for its timestamp. */
const NO_PARTITION = '23514';

interface PendingWrite {
  messages: NewMessage[];
  resolve(seqs: bigint[]): void;
  reject(err: unknown): void;
}

type Row = Record<string, unknown>;

const num = (v: unknown): number => Number(v);
const str = (v: unknown): string => String(v);

function messageFrom(r: Row): MessageRow {
  return {
    seq: BigInt(str(r.seq)), appId: num(r.app_id), uuid: str(r.uuid), msgId: str(r.msg_id),
    timestamp: num(r.timestamp), created: num(r.created), from: str(r.from_user), to: str(r.to_id),
    chatType: str(r.chat_type) as MessageRow['chatType'],
    bodyType: r.body_type === null ? null : str(r.body_type),
    text: null,
    lat: r.lat === null ? null : num(r.lat),
    lng: r.lng === null ? null : num(r.lng),
    entity: r.entity as Buffer,
  };
}

const sqlState = (e: unknown): string | undefined => (e as { code?: unknown })?.code as string | undefined;

/**
 * Chat messages of the PostgreSQL store: group-committed multi-row inserts into monthly
 * partitions, keyset pages of compiled ql queries (records spliced by the database), the
 * high-water mark that accounts for transactions in flight, purges.
 */
export class PostgresMessages {
  /** Test hook: runs inside each insert transaction, after the rows are written, before COMMIT. */
  beforeCommit?: () => Promise<void>;
  /** How long highWaterMark() waits for older writers still in flight (read-your-writes). */
  hwmWaitMs = 250;
  /** Group commits in flight at once (each on its own connection). */
  maxInFlight: number;

  private pending: PendingWrite[] = [];
  private scheduled = false;
  private inFlight = 0;
  private idle: (() => void)[] = [];
  private readonly partitions: MessagePartitions;

  constructor(private readonly pool: pg.Pool, private readonly groupCommitMax: number) {
    this.partitions = new MessagePartitions(pool);
    this.maxInFlight = Math.max(1, Math.min(4, (pool.options.max ?? 10) - 1));
  }

  /** Makes this month's partition and the next few (also done by the first insert). */
  async open(): Promise<void> {
    await this.partitions.ensure([]);
  }

  /** Queues messages for the next group commit; resolves with their seqs once committed. */
  insert(messages: NewMessage[]): Promise<bigint[]> {
    if (messages.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.pending.push({ messages, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // Everything that arrives in this turn of the event loop shares one commit.
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  /** Resolves once every queued write has been committed (or has failed). */
  flush(): Promise<void> {
    if (this.pending.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.idle.push(resolve);
      if (!this.scheduled && this.inFlight === 0) this.pump();
    });
  }

  private pump(): void {
    while (this.pending.length > 0 && this.inFlight < this.maxInFlight) {
      const batch: PendingWrite[] = [];
      let n = 0;
      while (this.pending.length > 0 && (n === 0 || n + this.pending[0]!.messages.length <= this.groupCommitMax)) {
        const w = this.pending.shift()!;
        batch.push(w);
        n += w.messages.length;
      }
      this.inFlight++;
      void this.commitBatch(batch).finally(() => {
        this.inFlight--;
        // Writes that queued up meanwhile go out together now.
        if (this.pending.length > 0) this.pump();
        else if (this.inFlight === 0) for (const f of this.idle.splice(0)) f();
      });
    }
  }

  private async commitBatch(batch: PendingWrite[]): Promise<void> {
    try {
      const seqs = await this.write(batch.flatMap((w) => w.messages));
      let i = 0;
      for (const w of batch) {
        w.resolve(seqs.slice(i, i + w.messages.length));
        i += w.messages.length;
      }
    } catch (e) {
      if (batch.length === 1) return batch[0]!.reject(e);
      // Nothing of the batch was committed. One bad write (a duplicate msg_id of an import)
      // must not fail the others that happened to share its commit: retry each on its own.
      for (const w of batch) {
        try {
          w.resolve(await this.write(w.messages));
        } catch (e2) {
          w.reject(e2);
        }
      }
    }
  }

  /** One transaction storing `ms`; resolves with their seqs once committed. */
  private async write(ms: NewMessage[]): Promise<bigint[]> {
    await this.partitions.ensure(ms.map((m) => m.timestamp));
    const values = insertValues(ms);
    let first: bigint;
    try {
      first = await this.runInsert(values);
    } catch (e) {
      if (sqlState(e) !== NO_PARTITION) throw e;
      // Someone dropped a partition, or our view of them is stale: look again, once.
      this.partitions.reset();
      await this.partitions.ensure(ms.map((m) => m.timestamp));
      first = await this.runInsert(values);
    }
    return ms.map((_m, i) => first + BigInt(i));
  }

  private async runInsert(values: PgParam[]): Promise<bigint> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      const hook = this.beforeCommit;
      if (!hook) {
        const r = await client.query<{ first: string }>({ name: 'cv_insert_messages', text: INSERT_SQL, values });
        return BigInt(r.rows[0]!.first);
      }
      await client.query('BEGIN');
      try {
        const r = await client.query<{ first: string }>({ name: 'cv_insert_messages', text: INSERT_SQL, values });
        await hook();
        await client.query('COMMIT');
        return BigInt(r.rows[0]!.first);
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    } catch (e) {
      // A constraint violation leaves the connection clean; anything else might have left the
      // seq lock (a session lock) held: drop the connection rather than hand it on.
      if (!sqlState(e)?.startsWith('23')) broken = e instanceof Error ? e : new Error(String(e));
      throw e;
    } finally {
      client.release(broken);
    }
  }

  /**
   * The parts of the SELECT of one keyset page (see sqlite-messages.ts pageQuery): the sort-key
   * expressions to select, and `rest`, everything from FROM to LIMIT.
   */
  private pageQuery(q: MessageQuery, limit: number, p: Params): { keys: string[]; rest: string; plans: SortPlan[]; order: string } {
    const app = p.add(q.appId, '::int');
    const plans = q.orderBy.map((k, i) => sortPlan(k, i, q.near, p));
    const storageOrder = q.orderBy.length === 0;
    // In storage order the keyset is a seq bound, merged with `since` into one lower bound.
    const lower = storageOrder && q.after && q.after.seq > q.minSeq ? q.after.seq : q.minSeq;
    const where = [`m.app_id = ${app}`, `m.seq <= ${p.add(q.maxSeq, '::bigint')}`, `m.seq > ${p.add(lower, '::bigint')}`];
    if (q.where) where.push(compileWhere(q.where, p, app));
    // A message without a sort key's field has no place in that order (Usergrid dropped it too).
    for (const pl of plans) if (pl.filter) where.push(pl.filter);
    const seqDir = q.orderBy.length > 0 ? q.orderBy[q.orderBy.length - 1]!.dir : 'asc';
    const cols: string[] = [];
    const dirs: ('asc' | 'desc')[] = [];
    plans.forEach((pl, i) => {
      for (const c of pl.cols) {
        cols.push(c);
        dirs.push(q.orderBy[i]!.dir);
      }
    });
    cols.push('m.seq');
    dirs.push(seqDir);
    if (q.after && !storageOrder) {
      const casts = [...plans.flatMap((pl) => pl.casts), '::bigint'];
      const vals = [...plans.flatMap((pl, i) => pl.values(q.after!.keys[i])), q.after.seq];
      const ph = vals.map((v, i) => p.add(v, casts[i]));
      where.push(keysetAfter(cols, dirs, ph));
      // The same bound on the partition key, which lets PostgreSQL skip whole partitions.
      if (cols[0] === 'm.timestamp') where.push(`m.timestamp ${dirs[0] === 'asc' ? '>=' : '<='} ${ph[0]}`);
    }
    const order = cols.map((c, i) => `${c} ${dirs[i] === 'asc' ? 'ASC' : 'DESC'}`).join(', ');
    const from = ['messages m', ...plans.flatMap((pl) => (pl.lateral ? [pl.lateral] : []))].join(' ');
    const rest = `FROM ${from} WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ${p.add(limit, '::int')}`;
    return { keys: plans.flatMap((pl) => pl.select), rest, plans, order };
  }

  /** One keyset page of a message query. */
  async find(q: MessageQuery): Promise<MessageHit[]> {
    const p = new Params();
    const { keys, rest, plans } = this.pageQuery(q, q.limit, p);
    const sql = `SELECT m.seq, ${keys.map((k) => `${k}, `).join('')}m.entity ${rest}`;
    const r = await this.pool.query<unknown[]>({ text: sql, values: p.values, rowMode: 'array' });
    return r.rows.map((row) => ({ seq: BigInt(str(row[0])), keys: keysOf(plans, row, 1), entity: row[row.length - 1] as Buffer }));
  }

  /**
   * One keyset page whose records PostgreSQL joins into one buffer (separated by `separator`),
   * in one round trip: the page is read with one row more than asked (to tell whether more
   * follow), numbered, aggregated, and its last row's sort keys returned beside the body.
   */
  async spliced(q: MessageQuery, separator: string): Promise<SplicedPage> {
    const p = new Params();
    const { keys, rest, plans, order } = this.pageQuery(q, q.limit + 1, p);
    const names = keys.map((_k, i) => `k${i}`);
    const page = `SELECT m.seq AS seq, ${keys.map((k, i) => `${k} AS ${names[i]}, `).join('')}m.entity AS e, row_number() OVER (ORDER BY ${order}) AS rn ${rest}`;
    const lim = p.add(q.limit, '::int');
    const sep = p.add(Buffer.from(separator), '::bytea');
    const text =
      `WITH page AS MATERIALIZED (${page}) ` +
      `SELECT c.n, c.body, l.* FROM (SELECT count(*) AS n, string_agg(e, ${sep} ORDER BY rn) FILTER (WHERE rn <= ${lim}) AS body FROM page) c ` +
      `LEFT JOIN LATERAL (SELECT seq${names.map((k) => `, ${k}`).join('')} FROM page WHERE rn = least(c.n, ${lim})) l ON true`;
    const r = await this.pool.query<unknown[]>({ text, values: p.values, rowMode: 'array' });
    const row = r.rows[0]!;
    const n = num(row[0]);
    if (n === 0 || row[2] === null) return { count: 0, more: false, body: Buffer.alloc(0), last: null };
    return {
      count: Math.min(n, q.limit),
      more: n > q.limit,
      body: (row[1] as Buffer | null) ?? Buffer.alloc(0),
      last: { seq: BigInt(str(row[2])), keys: keysOf(plans, row, 3) },
    };
  }

  /** The high-water mark (see the argument above). */
  async highWaterMark(): Promise<bigint> {
    const read = async () => {
      const r = await this.pool.query<{ hwm: string | null; top: string | null }>({ name: 'cv_message_hwm', text: HWM_SQL });
      const row = r.rows[0]!;
      return { hwm: row.hwm === null ? 0n : BigInt(row.hwm), top: row.top === null ? 0n : BigInt(row.top) };
    };
    const first = await read();
    let hwm = first.hwm;
    const deadline = Date.now() + this.hwmWaitMs;
    // Wait for the older writers only: what was committed when we were asked.
    while (hwm < first.top && Date.now() < deadline) {
      await new Promise((ok) => setTimeout(ok, 2));
      const again = await read();
      if (again.hwm > hwm) hwm = again.hwm;
    }
    return hwm;
  }

  async messageSeq(appId: number, msgId: string): Promise<bigint | null> {
    const r = await this.pool.query<{ seq: string }>({
      name: 'cv_message_seq',
      text: 'SELECT seq FROM message_keys WHERE app_id = $1 AND lower(msg_id) = lower($2::text COLLATE "C")',
      values: [appId, msgId],
    });
    return r.rows.length > 0 ? BigInt(r.rows[0]!.seq) : null;
  }

  async messageStats(appId: number, from: number, to: number): Promise<{ count: number; fingerprint: string }> {
    const r = await this.pool.query<{ n: string; mx: string | null; total: string | null }>({
      name: 'cv_message_stats',
      text: 'SELECT count(*) AS n, max(seq) AS mx, sum(seq) AS total FROM messages WHERE app_id = $1 AND timestamp >= $2 AND timestamp < $3',
      values: [appId, from, to],
    });
    const row = r.rows[0]!;
    // The same text as SQLite's (whose total() is a float).
    return { count: num(row.n), fingerprint: `${row.n}:${row.mx ?? 0}:${row.total === null ? 0 : Number(row.total)}` };
  }

  async delete(appId: number, seqs: bigint[]): Promise<number> {
    if (seqs.length === 0) return 0;
    // The key rows stay behind without their msg_id (the high-water mark stays where it was,
    // the msg_id is free again); their time leads to the message's partition.
    const r = await this.pool.query({
      name: 'cv_message_delete',
      text: `WITH k AS (
               UPDATE message_keys SET msg_id = NULL
                WHERE app_id = $1 AND seq = ANY($2::bigint[]) AND msg_id IS NOT NULL
                RETURNING seq, timestamp)
             DELETE FROM messages m USING k WHERE m.app_id = $1 AND m.timestamp = k.timestamp AND m.seq = k.seq`,
      values: [appId, seqs.map(String)],
    });
    return r.rowCount ?? 0;
  }

  async after(appId: number, afterSeq: bigint, limit: number): Promise<MessageRow[]> {
    const r = await this.pool.query<Row>({
      name: 'cv_messages_after',
      text: `SELECT seq, app_id, uuid, msg_id, timestamp, created, from_user, to_id, chat_type, body_type, lat, lng, entity
               FROM messages WHERE app_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      values: [appId, String(afterSeq), limit],
    });
    return r.rows.map(messageFrom);
  }

  async count(appId: number): Promise<number> {
    const r = await this.pool.query<{ n: string }>({ name: 'cv_message_count', text: 'SELECT count(*) AS n FROM messages WHERE app_id = $1', values: [appId] });
    return num(r.rows[0]!.n);
  }

  /** How many one-to-one messages are addressed to the username (ASCII case folded, as NOCASE). */
  async countTo(appId: number, username: string): Promise<number> {
    const r = await this.pool.query<{ n: string }>({
      name: 'cv_message_count_to',
      text: `SELECT count(*) AS n FROM messages WHERE app_id = $1 AND lower(to_id) = lower($2::text COLLATE "C") AND lower(chat_type) = 'chat'`,
      values: [appId, username],
    });
    return num(r.rows[0]!.n);
  }

  async address(appId: number, msgId: string): Promise<MessageAddress | null> {
    const r = await this.pool.query<{ to_id: string; chat_type: string }>({
      name: 'cv_message_address',
      text: `SELECT m.to_id, m.chat_type FROM message_keys k
               JOIN messages m ON m.app_id = k.app_id AND m.timestamp = k.timestamp AND m.seq = k.seq
              WHERE k.app_id = $1 AND lower(k.msg_id) = lower($2::text COLLATE "C")`,
      values: [appId, msgId],
    });
    const row = r.rows[0];
    return row ? { to: row.to_id, chatType: row.chat_type as MessageAddress['chatType'] } : null;
  }
}

/** The parameters of cv_insert_messages for a batch (entities as one binary buffer and lengths). */
function insertValues(ms: NewMessage[]): PgParam[] {
  const texts = ms.map((m) => storedText(m.text));
  const col = <T>(f: (m: NewMessage) => T) => ms.map(f) as unknown as string[];
  return [
    col((m) => m.appId), col((m) => m.msgId), col((m) => m.uuid), col((m) => m.timestamp), col((m) => m.created),
    col((m) => m.from), col((m) => m.to), col((m) => m.chatType), col((m) => m.bodyType), col((m) => m.lat), col((m) => m.lng),
    texts.map((t) => t.fts) as string[], texts.map((t) => t.overflow) as string[],
    Buffer.concat(ms.map((m) => m.entity)), col((m) => m.entity.length),
  ];
}

/** The sort keys of a row, from the selected key columns starting at `at`. */
function keysOf(plans: SortPlan[], row: unknown[], at: number): unknown[] {
  const keys: unknown[] = [];
  let i = at;
  for (const pl of plans) {
    keys.push(pl.key(row.slice(i, i + pl.select.length)));
    i += pl.select.length;
  }
  return keys;
}

/**
 * The keyset condition "after this row" over never-NULL sort expressions: a row comparison
 * when all directions agree (an index can walk it), else the OR expansion.
 */
function keysetAfter(cols: string[], dirs: ('asc' | 'desc')[], vals: string[]): string {
  if (dirs.every((d) => d === dirs[0])) return `(${cols.join(', ')}) ${dirs[0] === 'asc' ? '>' : '<'} (${vals.join(', ')})`;
  const ors: string[] = [];
  for (let i = 0; i < cols.length; i++) {
    const parts: string[] = [];
    for (let j = 0; j < i; j++) parts.push(`${cols[j]} = ${vals[j]}`);
    parts.push(`${cols[i]} ${dirs[i] === 'asc' ? '>' : '<'} ${vals[i]}`);
    ors.push(`(${parts.join(' AND ')})`);
  }
  return `(${ors.join(' OR ')})`;
}
