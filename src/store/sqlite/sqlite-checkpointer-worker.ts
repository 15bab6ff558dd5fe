import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { applyPragmas } from './sqlite-schema.js';

/**
 * The checkpointer thread (started by the writer thread): copies committed pages from the
 * write-ahead log into the database file every `everyMs` (a second), so the writer never does it
 * inside a commit. A checkpoint of a busy log copies tens of megabytes and syncs the database
 * file; done by the writer it held every write queued behind that commit (the p99 of a send).
 * Passive checkpoints never block the writer or readers. Once a checkpoint has copied the whole
 * log, the writer's next commit starts the log over from its beginning, which keeps it small.
 */

const { file, everyMs } = workerData as { file: string; everyMs: number };
const db = new Database(file);
applyPragmas(db);
const port = parentPort!;
// A passive checkpoint copies what was committed when it started; under a steady stream of
// commits a second or third pass catches up with the end of the log.
const PASSES = 4;
let timer: NodeJS.Timeout | null = null;

function tick(): void {
  try {
    for (let i = 0; i < PASSES; i++) {
      const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      if (!r || r.log <= 0 || r.checkpointed >= r.log) break;
    }
  } catch {
    // The database busy with another checkpoint (a CLI process, the writer's fallback): next time.
  }
  timer = setTimeout(tick, everyMs);
}

timer = setTimeout(tick, everyMs);
port.on('message', (m: unknown) => {
  if (m !== 'close') return;
  if (timer) clearTimeout(timer);
  db.close();
  port.close();
});
