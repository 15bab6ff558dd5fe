/**
 * Compression in a worker thread, so that compressing one row group overlaps reading the next:
 * pages go to the worker as they are cut, and the row group's chunks come back in order.
 */
import { Worker } from 'node:worker_threads';
import type { PageSink } from './columns.js';
import type { WorkerSetup } from './compress-worker.js';
import type { CodecId, EncodedGroup } from './pages.js';

/** Page bytes the worker may have queued before the writer waits for it. */
const MAX_QUEUED = 64 << 20;

type FromWorker = { ack: { column: number; buffer: ArrayBuffer } } | { group: EncodedGroup };

export class WorkerCompressor implements PageSink {
  private readonly worker: Worker;
  private readonly groups: { resolve: (g: EncodedGroup) => void; reject: (e: Error) => void }[] = [];
  /** Bytes of the buffers at the worker. */
  private queued = 0;
  /** Buffers the worker gave back, by column. */
  private readonly free: ArrayBuffer[][];
  private drained: (() => void) | null = null;
  private failed: Error | null = null;
  private referenced = false;

  constructor(codec: CodecId, columns: number) {
    this.free = Array.from({ length: columns }, () => []);
    this.worker = new Worker(new URL('./compress-worker.js', import.meta.url), { workerData: { codec, columns } satisfies WorkerSetup });
    // Idle, the worker keeps no one waiting; busy, it keeps the process alive until it answers.
    this.worker.unref();
    this.worker.on('message', (m: FromWorker) => {
      if ('ack' in m) {
        this.queued -= m.ack.buffer.byteLength;
        this.free[m.ack.column]!.push(m.ack.buffer);
        if (this.queued <= MAX_QUEUED / 2 && this.drained) {
          this.drained();
          this.drained = null;
        }
      } else {
        this.groups.shift()?.resolve(m.group);
      }
      this.busy();
    });
    const fail = (e: Error) => {
      this.failed ??= e;
      for (const g of this.groups.splice(0)) g.reject(e);
      this.drained?.();
      this.drained = null;
      this.busy();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the Parquet compression worker exited (${code})`)));
  }

  private busy(): void {
    const busy = this.groups.length > 0 || this.queued > 0;
    if (busy && !this.referenced) this.worker.ref();
    if (!busy && this.referenced) this.worker.unref();
    this.referenced = busy;
  }

  page(column: number, buf: Buffer, from: number, to: number, values: number, size: number): Buffer {
    if (!this.failed) {
      const buffer = buf.buffer as ArrayBuffer;
      this.queued += buffer.byteLength;
      this.worker.postMessage({ page: { column, buffer, from: buf.byteOffset + from, to: buf.byteOffset + to, values } }, [buffer]);
      this.busy();
    }
    // Go on in a buffer the worker gave back, or a new one.
    const free = this.free[column]!;
    let back = free.pop();
    while (back && back.byteLength < size) back = free.pop();
    return back ? Buffer.from(back) : Buffer.allocUnsafeSlow(size);
  }

  /** Resolves once the worker has caught up enough (bounded memory), at once when it has. */
  async caughtUp(): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.queued <= MAX_QUEUED) return;
    await new Promise<void>((resolve) => (this.drained = resolve));
    if (this.failed) throw this.failed;
  }

  /** The compressed chunks of the row group whose pages were sent so far. */
  group(): Promise<EncodedGroup> {
    if (this.failed) return Promise.reject(this.failed);
    const p = new Promise<EncodedGroup>((resolve, reject) => this.groups.push({ resolve, reject }));
    this.worker.postMessage({ group: true });
    this.busy();
    return p;
  }

  async close(): Promise<void> {
    this.failed ??= new Error('the Parquet writer is closed');
    await this.worker.terminate();
  }
}
