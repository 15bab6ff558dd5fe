import { Worker } from 'node:worker_threads';
import type { AckedMessage, NewMessage } from '../store.js';

/** The writer thread's answer to one job: the inserted seqs, the acked messages with their senders, or the error. */
export interface WriterReply {
  id: number;
  seqs?: bigint[];
  /** Each inserted message's `inboxPrevious`, in order (null for a message without recipients). */
  previous?: (bigint[] | null)[];
  acked?: AckedMessage[];
  error?: { message: string; code: string | undefined };
}

/** A write for the writer thread: messages to insert, or a user's acks to record. */
export type WriterJob = { id: number; rows: NewMessage[] } | { id: number; ack: { appId: number; username: string; msgIds: string[] } };

/** What goes to the writer thread in one message: every write of one turn of the event loop. */
export interface WriterJobs {
  jobs: WriterJob[];
}

/** A write that failed in the writer thread, with SQLite's error code (e.g. SQLITE_CONSTRAINT_UNIQUE). */
export class WriterError extends Error {
  constructor(message: string, readonly code: string | undefined) {
    super(message);
  }
}

/** The main thread's side of the message writer thread (sqlite-writer-worker.ts). */
export class SqliteWriter {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(r: WriterReply): void; reject(e: unknown): void }>();
  private outgoing: WriterJobs['jobs'] = [];

  constructor(private readonly file: string, private readonly groupCommitMax: number) {}

  private start(): Worker {
    const w = new Worker(new URL('./sqlite-writer-worker.js', import.meta.url), { workerData: { file: this.file, groupCommitMax: this.groupCommitMax } });
    w.on('message', (replies: WriterReply[]) => {
      for (const r of replies) {
        const p = this.waiting.get(r.id);
        if (!p) continue;
        this.waiting.delete(r.id);
        if (r.error) p.reject(new WriterError(r.error.message, r.error.code));
        else p.resolve(r);
      }
      if (this.waiting.size === 0) w.unref();
    });
    const fail = (e: unknown) => {
      // The thread is gone: every write it had not acknowledged fails, the next starts a new one.
      for (const p of this.waiting.values()) p.reject(e instanceof Error ? e : new Error(`message writer stopped: ${String(e)}`));
      this.waiting.clear();
      if (this.worker === w) this.worker = null;
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`message writer exited with code ${code}`)));
    // The thread keeps the process alive only while a write waits for it.
    w.unref();
    return w;
  }

  /**
   * Sends messages to the writer; resolves with their seqs once committed to disk. The inserts
   * of one turn of the event loop cross to the thread as one message (each crossing wakes it).
   */
  async insert(rows: NewMessage[]): Promise<bigint[]> {
    const r = await this.submit({ id: this.nextId++, rows });
    r.previous?.forEach((p, i) => {
      if (p) rows[i]!.inboxPrevious = p;
    });
    return r.seqs ?? [];
  }

  /**
   * Records a user's acks in the writer thread: a write on the main thread's connection would
   * hold the event loop while it waits for the writer's lock and for its own fsync.
   */
  async markDelivered(appId: number, username: string, msgIds: string[]): Promise<AckedMessage[]> {
    return (await this.submit({ id: this.nextId++, ack: { appId, username, msgIds } })).acked ?? [];
  }

  private submit(job: WriterJob): Promise<WriterReply> {
    const w = (this.worker ??= this.start());
    return new Promise((resolve, reject) => {
      this.waiting.set(job.id, { resolve, reject });
      w.ref();
      if (this.outgoing.push(job) === 1) setImmediate(() => this.post());
    });
  }

  private post(): void {
    const jobs = this.outgoing;
    this.outgoing = [];
    const w = this.worker;
    if (jobs.length === 0) return;
    if (!w) {
      for (const j of jobs) this.waiting.get(j.id)?.reject(new Error('message writer stopped'));
      return;
    }
    const msg: WriterJobs = { jobs };
    w.postMessage(msg);
  }

  /** Lets the writer commit what it has, then stops it. */
  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    w.ref();
    this.post();
    w.postMessage({ close: true });
    await exited;
    this.worker = null;
  }
}
