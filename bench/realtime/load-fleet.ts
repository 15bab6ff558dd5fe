import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadCommand, LoadReply, LoadRequest } from './load-commands.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'load-worker.js');

/** One load-generator process, asked things over IPC. */
export class LoadProcess {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited = false;

  private constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: LoadReply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(m.error));
    });
    proc.on('exit', (code) => {
      this.exited = true;
      for (const w of this.waiting.values()) w.reject(new Error(`load process exited (${code})`));
      this.waiting.clear();
    });
  }

  /**
   * Starts a load process. It is started through `sh` so that it can lift its own soft
   * open-files limit to the hard one (Node has no setrlimit): 10,000 sockets need it where
   * the default soft limit is 1,024.
   */
  static start(): LoadProcess {
    const proc = spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, WORKER], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new LoadProcess(proc);
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  /** Runs one command; rejects when it fails, the process dies, or `timeoutMs` passes. */
  ask<T>(command: LoadCommand, timeoutMs: number): Promise<T> {
    if (this.exited) return Promise.reject(new Error('load process is gone'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`load process did not answer ${command.cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.send({ id, command } satisfies LoadRequest);
    });
  }

  /** Asks it to exit, and kills it if it does not within a second. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.ask({ cmd: 'exit' }, 1000).catch(() => {});
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 1000);
    await gone;
    clearTimeout(t);
  }
}
