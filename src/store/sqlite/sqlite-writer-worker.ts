import { parentPort, Worker, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { NewMessage } from '../store.js';
import type { WriterJobs, WriterReply } from './sqlite-writer.js';
import { SqliteDeliveries } from './sqlite-deliveries.js';
import { SqliteMessages } from './sqlite-messages.js';
import { applyPragmas } from './sqlite-schema.js';

/**
 * The message writer thread: its own connection to the database, group-committing inserts.
 * While one batch waits for its fsync here, the main thread keeps reading requests, so the
 * next batch is ready as soon as the disk is.
 */

const { file, groupCommitMax } = workerData as { file: string; groupCommitMax: number };
const db = new Database(file);
applyPragmas(db);

// Checkpoints run in a thread of their own (sqlite-checkpointer-worker.ts). This connection
// checkpoints only if that thread falls far behind (160 MiB of log) or is gone.
const CHECKPOINT_EVERY_MS = 1000;
const FALLBACK_CHECKPOINT_PAGES = 40_000;
const INLINE_CHECKPOINT_PAGES = db.pragma('wal_autocheckpoint', { simple: true }) as number;
db.pragma(`wal_autocheckpoint = ${FALLBACK_CHECKPOINT_PAGES}`);
const checkpointer = new Worker(new URL('./sqlite-checkpointer-worker.js', import.meta.url), { workerData: { file, everyMs: CHECKPOINT_EVERY_MS } });
const checkpointerGone = new Promise<void>((resolve) => checkpointer.once('exit', () => {
  if (db.open) db.pragma(`wal_autocheckpoint = ${INLINE_CHECKPOINT_PAGES}`);
  resolve();
}));
// Its failure costs only speed: this connection checkpoints as before.
checkpointer.on('error', () => {});
// That thread copies the bulk of the log without blocking anyone, but under a steady stream of
// commits its copy never reaches the end, and only a checkpoint that does lets the log start
// over (else it grows until this connection checkpoints 160 MiB at once, tens of milliseconds
// that every send waits behind). So it hands over: the few frames committed during its last
// pass are copied here, between two commits, and the next commit starts the log over.
checkpointer.on('message', (m: unknown) => {
  if (m !== 'tail' || !db.open) return;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy with another checkpoint: the next hand-over.
  }
});
const messages = new SqliteMessages(db, groupCommitMax);
const deliveries = new SqliteDeliveries(db);
const port = parentPort!;

// Replies of one turn go back as one message, like the jobs came.
let replies: WriterReply[] = [];
const reply = (r: WriterReply): void => {
  if (replies.push(r) === 1) {
    setImmediate(() => {
      const out = replies;
      replies = [];
      port.postMessage(out);
    });
  }
};

function replyError(id: number, e: unknown): void {
  const err = e as { message?: string; code?: string };
  reply({ id, error: { message: err.message ?? String(e), code: err.code } });
}

port.on('message', (msg: WriterJobs | { close: true }) => {
  if ('close' in msg) {
    messages.finish();
    // The acknowledgements of that last commit are sent from promise callbacks: let them run first.
    setImmediate(() => setImmediate(() => {
      // (A no-op if that thread is gone already.)
      checkpointer.postMessage('close');
      void checkpointerGone.then(() => {
        db.close();
        port.close();
      });
    }));
    return;
  }
  for (const job of msg.jobs) {
    if ('ack' in job) {
      // In the transaction of the turn's messages: one commit, one fsync for both.
      const { appId, username, msgIds } = job.ack;
      messages.withNextCommit(() => deliveries.markDeliveredInTransaction(appId, username, msgIds)).then(
        (acked) => reply({ id: job.id, acked }),
        (e: unknown) => replyError(job.id, e),
      );
      continue;
    }
    // Buffers arrive as plain Uint8Arrays; better-sqlite3 binds Buffers.
    const rows: NewMessage[] = job.rows.map((r) => ({ ...r, entity: Buffer.from(r.entity.buffer, r.entity.byteOffset, r.entity.byteLength) }));
    messages.insert(rows).then(
      (seqs) => reply({ id: job.id, seqs, previous: rows.map((r) => r.inboxPrevious ?? null) }),
      (e: unknown) => replyError(job.id, e),
    );
  }
});
