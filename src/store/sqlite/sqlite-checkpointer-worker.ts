import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { applyPragmas } from './sqlite-schema.js';

/**
 * The checkpointer thread (started by the writer thread): copies committed pages from the
 * write-ahead log into the database file every `everyMs` (a second), so the writer never does it
 * inside a commit. A checkpoint of a busy log copies tens of megabytes and syncs the database
 * file; done by the writer it held every write queued behind that commit (the p99 of a send).
 * Passive checkpoints never block the writer or readers. Once a checkpoint has copied the whole
 * log, the writer's next commit starts the log over from its beginning, which keeps it small;
 * the last few frames are left to the writer (it is told `tail`), whose copy nothing races.
 */

const { file, everyMs } = workerData as { file: string; everyMs: number };
const db = new Database(file);
applyPragmas(db);
const port = parentPort!;
// A passive checkpoint copies what was committed when it started; under a steady stream of
// commits each pass has less to copy than the one before. Passes go on until the frames added
// during the last one are few, or PASSES ran; the writer then copies what is left itself.
const PASSES = 8;
const TAIL_FRAMES = 256;
let timer: NodeJS.Timeout | null = null;

function tick(): void {
  let handOver = false;
  try {
    let copied = 0;
    for (let i = 0; i < PASSES; i++) {
      const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      if (!r || r.busy || r.log <= 0) break;
      handOver = true;
      const added = r.log - copied;
      copied = r.checkpointed;
      if (added <= TAIL_FRAMES) break;
    }
  } catch {
    // The database busy with another checkpoint (a CLI process, the writer's fallback): next time.
  }
  if (handOver) port.postMessage('tail');
  timer = setTimeout(tick, everyMs);
}

timer = setTimeout(tick, everyMs);
port.on('message', (m: unknown) => {
  if (m !== 'close') return;
  if (timer) clearTimeout(timer);
  db.close();
  port.close();
});
