import type Database from 'better-sqlite3';
import { messageFrom, type Row } from '../rows.js';
import type { AckedMessage, MessageRow, SentMessage } from '../store.js';

/**
 * The real-time delivery reads of the SQLite store: each recipient's inbox rows (written with
 * their messages by sqlite-messages.ts), acks, and the messages of a client send id. User names
 * are stored lower-cased, as the callers pass them.
 */
export class SqliteDeliveries {
  private readonly s;

  constructor(readonly db: Database.Database) {
    this.s = {
      pending: db.prepare(
        `SELECT m.* FROM deliveries d INDEXED BY deliveries_pending JOIN messages m ON m.seq = d.seq
         WHERE d.app_id = ? AND d.username = ? AND d.delivered = 0 AND d.seq > ? ORDER BY d.seq LIMIT ?`,
      ).safeIntegers(true),
      countPending: db.prepare('SELECT count(*) FROM deliveries INDEXED BY deliveries_pending WHERE app_id = ? AND username = ? AND delivered = 0').pluck(),
      status: db.prepare(
        'SELECT d.delivered FROM messages m JOIN deliveries d ON d.app_id = m.app_id AND d.username = ? AND d.seq = m.seq WHERE m.app_id = ? AND m.msg_id = ?',
      ).pluck(),
      acked: db.prepare('SELECT seq, from_user, to_id, chat_type FROM messages WHERE app_id = ? AND msg_id = ?').raw(true),
      mark: db.prepare('UPDATE deliveries SET delivered = 1 WHERE app_id = ? AND username = ? AND seq = ? AND delivered = 0'),
      inbox: db.prepare(
        `SELECT m.* FROM deliveries d JOIN messages m ON m.seq = d.seq
         WHERE d.app_id = ? AND d.username = ? AND d.seq > ? AND d.seq <= ? ORDER BY d.seq LIMIT ?`,
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
    return (this.s.pending.all(appId, username, afterSeq, limit) as Row[]).map(messageFrom);
  }

  countPending(appId: number, username: string): number {
    return Number(this.s.countPending.get(appId, username));
  }

  status(appId: number, username: string, msgId: string): 'delivered' | 'undelivered' | null {
    const v = this.s.status.get(username, appId, msgId) as number | undefined;
    return v === undefined ? null : v ? 'delivered' : 'undelivered';
  }

  markDelivered(appId: number, username: string, msgIds: readonly string[]): AckedMessage[] {
    return this.db.transaction(() => this.markDeliveredInTransaction(appId, username, msgIds))();
  }

  /** markDelivered inside a transaction the caller holds (a nested one would be a savepoint, journalling every page it touches). */
  markDeliveredInTransaction(appId: number, username: string, msgIds: readonly string[]): AckedMessage[] {
    const done: AckedMessage[] = [];
    for (const msgId of new Set(msgIds)) {
      const m = this.s.acked.get(appId, msgId) as [number, string, string, AckedMessage['chatType']] | undefined;
      if (m && this.s.mark.run(appId, username, m[0]).changes > 0) done.push({ msgId, from: m[1], to: m[2], chatType: m[3] });
    }
    return done;
  }

  inbox(appId: number, username: string, afterSeq: bigint, maxSeq: bigint, limit: number): MessageRow[] {
    return (this.s.inbox.all(appId, username, afterSeq, maxSeq, limit) as Row[]).map(messageFrom);
  }

  clientSend(appId: number, sender: string, clientId: string): Map<string, SentMessage> {
    const rows = this.s.clientSend.all(appId, sender.toLowerCase(), clientId, appId, sender.toLowerCase(), clientId) as { target: string; msg_id: string; timestamp: number }[];
    return new Map(rows.map((r) => [r.target, { msgId: r.msg_id, timestamp: r.timestamp }]));
  }
}

