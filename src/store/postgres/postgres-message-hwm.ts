import type pg from 'pg';

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
/**
 * The smallest full transaction id (xid8) of the rows (x32, ref) that `source` yields: x32 a
 * 32-bit xid from pg_locks, ref a full xid of the same era (the snapshot's xmax), NULL without
 * rows. Each x32 becomes the full xid nearest ref with those low 32 bits. The minimum is taken
 * over the numbers: taken over their text it would put 100000 before 99999 and let the mark pass
 * a writer still in flight whenever the in-flight xids straddled a power of ten.
 */
export function writerHorizonSql(source: string): string {
  return `SELECT min(x.ref + ((x.x32 - (x.ref & 4294967295) + 2147483648) % 4294967296 + 4294967296) % 4294967296 - 2147483648)::text::xid8 AS xid
    FROM (${source}) x`;
}

const HWM_SQL = `
WITH s AS MATERIALIZED (SELECT pg_current_snapshot() AS snap),
l AS MATERIALIZED (
  SELECT locktype, database, relation, virtualtransaction, transactionid FROM pg_locks
   WHERE locktype IN ('relation', 'transactionid')),
w AS MATERIALIZED (${writerHorizonSql(`SELECT t.transactionid::text::bigint AS x32, (SELECT pg_snapshot_xmax(snap)::text::bigint FROM s) AS ref
            FROM l r JOIN l t ON t.virtualtransaction = r.virtualtransaction
           WHERE r.locktype = 'relation' AND r.relation = 'message_keys'::regclass
             AND r.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND t.locktype = 'transactionid'`)})
SELECT (SELECT k.seq FROM message_keys k
         WHERE k.xid < coalesce((SELECT xid FROM w), (SELECT pg_snapshot_xmax(snap) FROM s))
         ORDER BY k.seq DESC LIMIT 1) AS hwm,
       (SELECT k.seq FROM message_keys k ORDER BY k.seq DESC LIMIT 1) AS top`;

/**
 * The high-water mark (see above); waits up to `waitMs` for older writers of this store still in
 * flight, so that what was committed when it was asked for is below the mark.
 */
export async function readHighWaterMark(pool: pg.Pool, waitMs: number): Promise<bigint> {
  const read = async () => {
    const r = await pool.query<{ hwm: string | null; top: string | null }>({ name: 'cv_message_hwm', text: HWM_SQL });
    const row = r.rows[0]!;
    return { hwm: row.hwm === null ? 0n : BigInt(row.hwm), top: row.top === null ? 0n : BigInt(row.top) };
  };
  const first = await read();
  let hwm = first.hwm;
  const deadline = Date.now() + waitMs;
  // Wait for the older writers only: what was committed when we were asked.
  while (hwm < first.top && Date.now() < deadline) {
    await new Promise((ok) => setTimeout(ok, 2));
    const again = await read();
    if (again.hwm > hwm) hwm = again.hwm;
  }
  return hwm;
}
