import type pg from 'pg';
import { messageFrom, num, type Row } from '../rows.js';
import type { MessageHit, MessageQuery, MessageRow, NewMessage, SplicedPage } from '../store.js';
import { readHighWaterMark } from './postgres-message-hwm.js';
import { MessagePages } from './postgres-message-pages.js';
import { copyMessagesIn, MessageWriter } from './postgres-message-writer.js';

export { MESSAGES_MIGRATION } from './postgres-message-schema.js';

/**
 * Chat messages of the PostgreSQL store: group-committed multi-row inserts into monthly
 * partitions (postgres-message-writer.ts), keyset pages of compiled ql queries with records
 * spliced by the database (postgres-message-pages.ts), the high-water mark that accounts for
 * transactions in flight (postgres-message-hwm.ts), lookups and purges.
 */
export class PostgresMessages {
  /** Test hook: runs inside each insert transaction, after the rows are written, before COMMIT. */
  beforeCommit?: () => Promise<void>;
  /** How long highWaterMark() waits for older writers still in flight (read-your-writes). */
  hwmWaitMs = 250;
  private readonly writer: MessageWriter;
  private readonly pages: MessagePages;

  constructor(private readonly pool: pg.Pool, groupCommitMax: number) {
    this.writer = new MessageWriter(pool, groupCommitMax, () => this.beforeCommit);
    this.pages = new MessagePages(pool);
  }

  /** Makes this month's partition and the next few (the first insert does it too). */
  async open(): Promise<void> {
    await this.writer.partitions.ensure([]);
  }

  /** Queues messages for the next group commit; resolves with their seqs once committed. */
  insert(messages: NewMessage[]): Promise<bigint[]> {
    return this.writer.insert(messages);
  }

  /** Resolves once every queued write has been committed (or has failed). */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /**
   * Stores messages copied from another store with their seqs kept (chatvault migrate); those
   * whose seq or msg_id is here already are left as they are. Resolves with how many were stored.
   */
  copyIn(rows: MessageRow[]): Promise<number> {
    return copyMessagesIn(this.pool, this.writer.partitions, rows);
  }

  /** One keyset page of a message query. */
  find(q: MessageQuery): Promise<MessageHit[]> {
    return this.pages.find(q);
  }

  /** One keyset page with its records joined by `separator` into one buffer. */
  spliced(q: MessageQuery, separator: string): Promise<SplicedPage> {
    return this.pages.spliced(q, separator);
  }

  /** The largest seq below which no message can still commit (postgres-message-hwm.ts). */
  highWaterMark(): Promise<bigint> {
    return readHighWaterMark(this.pool, this.hwmWaitMs);
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

  async delete(appId: number, seqs: bigint[]): Promise<bigint[]> {
    if (seqs.length === 0) return [];
    this.pages.dropReadAhead();
    // The key rows stay behind without their msg_id (the high-water mark stays where it was,
    // the msg_id is free again); their time leads to the message's partition.
    const r = await this.pool.query({
      name: 'cv_message_delete',
      text: `WITH k AS (
               UPDATE message_keys SET msg_id = NULL
                WHERE app_id = $1 AND seq = ANY($2::bigint[]) AND msg_id IS NOT NULL
                RETURNING seq, timestamp)
             , d AS (DELETE FROM deliveries WHERE app_id = $1 AND seq = ANY($2::bigint[]))
             , c AS (DELETE FROM client_ids WHERE app_id = $1 AND seq = ANY($2::bigint[]))
             DELETE FROM messages m USING k WHERE m.app_id = $1 AND m.timestamp = k.timestamp AND m.seq = k.seq
             RETURNING m.seq`,
      values: [appId, seqs.map(String)],
    });
    return r.rows.map((row) => BigInt(row.seq as string));
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

}
