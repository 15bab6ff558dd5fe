import type Database from 'better-sqlite3';
import { messageFrom, type Row } from '../rows.js';
import type { AckedMessage, MessageRow, SentMessage } from '../store.js';

/**
 * The real-time delivery reads of the SQLite store: each recipient's inbox rows (written with
 * their messages by sqlite-messages.ts), acks, and the messages of a client send id. User names
 * are stored lower-cased, as the callers pass them.
 *
 * The inbox rows of the last moments wait in delivery_log (seq order, no index by recipient;
 * about a second of rows) before they are moved into deliveries: every read here is one
 * statement over both tables, so a move between them can neither hide a row nor show it twice,
 * and the log's part of a read is a walk of its seq range.
 */
export class SqliteDeliveries {
  private readonly s;

  constructor(readonly db: Database.Database) {
    this.s = {
      // Each side gives at most `limit` seqs in order, merged, so a user with many rows reads no
      // more, and only the messages of the page are read.
      pending: db.prepare(
        `SELECT m.* FROM (
           SELECT seq FROM (SELECT seq FROM deliveries INDEXED BY deliveries_pending
             WHERE app_id = @app AND username = @user AND delivered = 0 AND seq > @after ORDER BY seq LIMIT @limit)
           UNION ALL
           SELECT seq FROM (SELECT seq FROM delivery_log
             WHERE seq > @after AND app_id = @app AND username = @user AND delivered = 0 ORDER BY seq LIMIT @limit)
           ORDER BY seq LIMIT @limit
         ) d JOIN messages m ON m.seq = d.seq ORDER BY d.seq`,
      ).safeIntegers(true),
      countPending: db.prepare(
        `SELECT (SELECT count(*) FROM deliveries INDEXED BY deliveries_pending WHERE app_id = @app AND username = @user AND delivered = 0)
              + (SELECT count(*) FROM delivery_log WHERE app_id = @app AND username = @user AND delivered = 0)`,
      ).pluck(),
      status: db.prepare(
        `SELECT coalesce(
           (SELECT d.delivered FROM deliveries d WHERE d.app_id = m.app_id AND d.username = @user AND d.seq = m.seq),
           (SELECT l.delivered FROM delivery_log l WHERE l.seq = m.seq AND l.app_id = m.app_id AND l.username = @user))
         FROM messages m WHERE m.app_id = @app AND m.msg_id = @msgId`,
      ).pluck(),
      acked: db.prepare('SELECT seq, from_user, to_id, chat_type FROM messages WHERE app_id = ? AND msg_id = ?').raw(true),
      markLogged: db.prepare('UPDATE delivery_log SET delivered = 1 WHERE seq = ? AND app_id = ? AND username = ? AND delivered = 0'),
      mark: db.prepare('UPDATE deliveries SET delivered = 1 WHERE app_id = ? AND username = ? AND seq = ? AND delivered = 0'),
      inbox: db.prepare(
        `SELECT m.* FROM (
           SELECT seq FROM (SELECT seq FROM deliveries
             WHERE app_id = @app AND username = @user AND seq > @after AND seq <= @max ORDER BY seq LIMIT @limit)
           UNION ALL
           SELECT seq FROM (SELECT seq FROM delivery_log
             WHERE seq > @after AND seq <= @max AND app_id = @app AND username = @user ORDER BY seq LIMIT @limit)
           ORDER BY seq LIMIT @limit
         ) d JOIN messages m ON m.seq = d.seq ORDER BY d.seq`,
      ).safeIntegers(true),
      // The ids of the last moment wait in client_id_log (sqlite-messages.ts): one statement
      // reads both, so a move between them can neither hide a row nor show it twice.
      clientSend: db.prepare(
        `SELECT c.target, m.msg_id, m.timestamp FROM client_ids c JOIN messages m ON m.seq = c.seq WHERE c.app_id = ? AND c.sender = ? AND c.client_id = ?
         UNION ALL
         SELECT c.target, m.msg_id, m.timestamp FROM client_id_log c JOIN messages m ON m.seq = c.seq WHERE c.app_id = ? AND c.sender = ? AND c.client_id = ?`,
      ),
    };
  }

  pending(appId: number, username: string, afterSeq: bigint, limit: number): MessageRow[] {
    return (this.s.pending.all({ app: appId, user: username, after: afterSeq, limit }) as Row[]).map(messageFrom);
  }

  countPending(appId: number, username: string): number {
    return Number(this.s.countPending.get({ app: appId, user: username }));
  }

  status(appId: number, username: string, msgId: string): 'delivered' | 'undelivered' | null {
    // No message (undefined), or no inbox row of this user's for it (null).
    const v = this.s.status.get({ user: username, app: appId, msgId }) as number | null | undefined;
    return v === undefined || v === null ? null : v ? 'delivered' : 'undelivered';
  }

  markDelivered(appId: number, username: string, msgIds: readonly string[]): AckedMessage[] {
    return this.db.transaction(() => this.markDeliveredInTransaction(appId, username, msgIds))();
  }

  /** markDelivered inside a transaction the caller holds (a nested one would be a savepoint, journalling every page it touches). */
  markDeliveredInTransaction(appId: number, username: string, msgIds: readonly string[]): AckedMessage[] {
    const done: AckedMessage[] = [];
    for (const msgId of new Set(msgIds)) {
      const m = this.s.acked.get(appId, msgId) as [number, string, string, AckedMessage['chatType']] | undefined;
      if (!m) continue;
      // Mostly still in the log: an online client acks within moments.
      const marked = this.s.markLogged.run(m[0], appId, username).changes > 0 || this.s.mark.run(appId, username, m[0]).changes > 0;
      if (marked) done.push({ msgId, from: m[1], to: m[2], chatType: m[3] });
    }
    return done;
  }

  inbox(appId: number, username: string, afterSeq: bigint, maxSeq: bigint, limit: number): MessageRow[] {
    return (this.s.inbox.all({ app: appId, user: username, after: afterSeq, max: maxSeq, limit }) as Row[]).map(messageFrom);
  }

  clientSend(appId: number, sender: string, clientId: string): Map<string, SentMessage> {
    const rows = this.s.clientSend.all(appId, sender.toLowerCase(), clientId, appId, sender.toLowerCase(), clientId) as { target: string; msg_id: string; timestamp: number }[];
    return new Map(rows.map((r) => [r.target, { msgId: r.msg_id, timestamp: r.timestamp }]));
  }
}

