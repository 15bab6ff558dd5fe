import type pg from 'pg';
import { messageFrom, num, type Row } from '../rows.js';
import type { AckedMessage, MessageRow, SentMessage } from '../store.js';

/**
 * Migration 4: real-time delivery. `deliveries` holds each recipient's place for every one-to-one
 * and group message (the inbox a resuming client walks, and whether the recipient acked it);
 * `client_ids` the client send ids that make a repeated send store nothing. Both are written by
 * cv_insert_routed in the message's own transaction, so the messages' high-water mark covers
 * them. They keep the message's timestamp so that joins reach one monthly partition.
 */
export const DELIVERIES_MIGRATION = String.raw`
CREATE TABLE deliveries (
  app_id integer NOT NULL,
  username text COLLATE "C" NOT NULL,
  seq bigint NOT NULL,
  timestamp bigint NOT NULL,
  delivered boolean NOT NULL DEFAULT false,
  PRIMARY KEY (app_id, username, seq)
);
CREATE INDEX deliveries_pending ON deliveries (app_id, username, seq) WHERE NOT delivered;
CREATE INDEX deliveries_by_seq ON deliveries (app_id, seq);

CREATE TABLE client_ids (
  app_id integer NOT NULL,
  sender text COLLATE "C" NOT NULL,
  client_id text COLLATE "C" NOT NULL,
  target text COLLATE "C" NOT NULL,
  seq bigint NOT NULL,
  timestamp bigint NOT NULL,
  PRIMARY KEY (app_id, sender, client_id, target)
);
CREATE INDEX client_ids_by_seq ON client_ids (app_id, seq);

-- cv_insert_messages, then the inbox rows (r_idx: the message's place in the batch, from 1) and
-- the client send ids of the same batch, in the same transaction.
CREATE FUNCTION cv_insert_routed(
  app_ids int[], msg_ids text[], uuids text[], tss bigint[], createds bigint[], froms text[], tos text[],
  chat_types text[], body_types text[], lats float8[], lngs float8[], ftss text[], overflows text[],
  entities bytea, lens int[],
  r_idx int[], r_users text[], c_idx int[], c_senders text[], c_ids text[], c_targets text[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  first bigint;
BEGIN
  first := cv_insert_messages(app_ids, msg_ids, uuids, tss, createds, froms, tos, chat_types, body_types, lats, lngs, ftss, overflows, entities, lens);
  IF cardinality(r_idx) > 0 THEN
    INSERT INTO deliveries (app_id, username, seq, timestamp)
    SELECT app_ids[u.i], u.name, first + u.i - 1, tss[u.i] FROM unnest(r_idx, r_users) AS u(i, name);
  END IF;
  IF cardinality(c_idx) > 0 THEN
    INSERT INTO client_ids (app_id, sender, client_id, target, seq, timestamp)
    SELECT app_ids[u.i], u.sender, u.cid, u.target, first + u.i - 1, tss[u.i] FROM unnest(c_idx, c_senders, c_ids, c_targets) AS u(i, sender, cid, target);
  END IF;
  RETURN first;
END $$;
`;

const MESSAGE_COLUMNS = 'm.seq, m.app_id, m.uuid, m.msg_id, m.timestamp, m.created, m.from_user, m.to_id, m.chat_type, m.body_type, m.lat, m.lng, m.entity';
const JOIN = 'JOIN messages m ON m.app_id = d.app_id AND m.timestamp = d.timestamp AND m.seq = d.seq';

/** The real-time delivery reads and acks of the PostgreSQL store (user names lower-cased by the callers). */
export class PostgresDeliveries {
  constructor(private readonly pool: pg.Pool) {}

  async pending(appId: number, username: string, afterSeq: bigint, limit: number): Promise<MessageRow[]> {
    const r = await this.pool.query<Row>({
      name: 'cv_deliveries_pending',
      text: `SELECT ${MESSAGE_COLUMNS} FROM deliveries d ${JOIN}
              WHERE d.app_id = $1 AND d.username = $2 AND NOT d.delivered AND d.seq > $3 ORDER BY d.seq LIMIT $4`,
      values: [appId, username, String(afterSeq), limit],
    });
    return r.rows.map(messageFrom);
  }

  async countPending(appId: number, username: string): Promise<number> {
    const r = await this.pool.query<{ n: string }>({
      name: 'cv_deliveries_count',
      text: 'SELECT count(*) AS n FROM deliveries WHERE app_id = $1 AND username = $2 AND NOT delivered',
      values: [appId, username],
    });
    return num(r.rows[0]!.n);
  }

  async status(appId: number, username: string, msgId: string): Promise<'delivered' | 'undelivered' | null> {
    const r = await this.pool.query<{ delivered: boolean }>({
      name: 'cv_deliveries_status',
      text: `SELECT d.delivered FROM message_keys k JOIN deliveries d ON d.app_id = k.app_id AND d.username = $2 AND d.seq = k.seq
              WHERE k.app_id = $1 AND lower(k.msg_id) = lower($3::text COLLATE "C")`,
      values: [appId, username, msgId],
    });
    const row = r.rows[0];
    return row ? (row.delivered ? 'delivered' : 'undelivered') : null;
  }

  async markDelivered(appId: number, username: string, msgIds: readonly string[]): Promise<AckedMessage[]> {
    if (msgIds.length === 0) return [];
    // The message row (found in its partition by the inbox row's timestamp) says who sent it.
    const r = await this.pool.query<{ msg_id: string; from_user: string; to_id: string; chat_type: AckedMessage['chatType'] }>({
      name: 'cv_deliveries_mark',
      text: `WITH done AS (
               UPDATE deliveries d SET delivered = true FROM message_keys k
                WHERE k.app_id = $1 AND lower(k.msg_id) = ANY(SELECT lower(x) FROM unnest($3::text[]) x)
                  AND d.app_id = k.app_id AND d.username = $2 AND d.seq = k.seq AND NOT d.delivered
               RETURNING k.msg_id, d.app_id, d.timestamp, d.seq)
             SELECT done.msg_id, m.from_user, m.to_id, m.chat_type FROM done
               JOIN messages m ON m.app_id = done.app_id AND m.timestamp = done.timestamp AND m.seq = done.seq`,
      values: [appId, username, [...new Set(msgIds)]],
    });
    // The ids as the caller spelled them (msg_ids compare case-insensitively).
    const done = new Map(r.rows.map((x) => [x.msg_id.toLowerCase(), x]));
    const out: AckedMessage[] = [];
    for (const msgId of new Set(msgIds)) {
      const m = done.get(msgId.toLowerCase());
      if (!m) continue;
      // Once: 'd500' and 'D500' in one ack name one message (SQLite answers the first too).
      done.delete(msgId.toLowerCase());
      out.push({ msgId, from: m.from_user, to: m.to_id, chatType: m.chat_type });
    }
    return out;
  }

  async inbox(appId: number, username: string, afterSeq: bigint, maxSeq: bigint, limit: number): Promise<MessageRow[]> {
    const r = await this.pool.query<Row>({
      name: 'cv_deliveries_inbox',
      text: `SELECT ${MESSAGE_COLUMNS} FROM deliveries d ${JOIN}
              WHERE d.app_id = $1 AND d.username = $2 AND d.seq > $3 AND d.seq <= $4 ORDER BY d.seq LIMIT $5`,
      values: [appId, username, String(afterSeq), String(maxSeq), limit],
    });
    return r.rows.map(messageFrom);
  }

  async clientSend(appId: number, sender: string, clientId: string): Promise<Map<string, SentMessage>> {
    const r = await this.pool.query<{ target: string; msg_id: string; timestamp: string }>({
      name: 'cv_client_send',
      text: `SELECT c.target, m.msg_id, m.timestamp FROM client_ids c JOIN messages m ON m.app_id = c.app_id AND m.timestamp = c.timestamp AND m.seq = c.seq
              WHERE c.app_id = $1 AND c.sender = $2 AND c.client_id = $3`,
      values: [appId, sender.toLowerCase(), clientId],
    });
    return new Map(r.rows.map((x) => [x.target, { msgId: x.msg_id, timestamp: Number(x.timestamp) }]));
  }
}
