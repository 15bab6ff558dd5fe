import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { NewMessage } from '../store.js';
import { SqliteMessages } from './sqlite-messages.js';
import { applyPragmas } from './sqlite-schema.js';

/**
 * The message writer thread: its own connection to the database, group-committing inserts.
 * While one batch waits for its fsync here, the main thread keeps reading requests, so the
 * next batch is ready as soon as the disk is.
 */
interface Job {
  id: number;
  rows: NewMessage[];
}

const { file, groupCommitMax } = workerData as { file: string; groupCommitMax: number };
const db = new Database(file);
applyPragmas(db);
const messages = new SqliteMessages(db, groupCommitMax);
const port = parentPort!;

port.on('message', (msg: Job | { close: true }) => {
  if ('close' in msg) {
    messages.flush();
    // The acknowledgements of that last commit are sent from promise callbacks: let them run first.
    setImmediate(() => {
      db.close();
      port.close();
    });
    return;
  }
  // Buffers arrive as plain Uint8Arrays; better-sqlite3 binds Buffers.
  const rows = msg.rows.map((r) => ({ ...r, entity: Buffer.from(r.entity.buffer, r.entity.byteOffset, r.entity.byteLength) }));
  messages.insert(rows).then(
    (seqs) => port.postMessage({ id: msg.id, seqs }),
    (e: unknown) => {
      const err = e as { message?: string; code?: string };
      port.postMessage({ id: msg.id, error: { message: err.message ?? String(e), code: err.code } });
    },
  );
});
