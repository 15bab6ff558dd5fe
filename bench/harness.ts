import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CLI = path.resolve(here, '../src/cli/main.js');
export const RESULTS = path.resolve(here, '../../bench/results');

export const ADMIN = { username: 'bench', password: 'bench-pass' };

/** A chatvault server in its own process, as in production, on a fresh data folder. */
export interface BenchServer {
  url: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
    srv.on('error', reject);
  });
}

/** Starts `chatvault serve` on a fresh data folder (removed at stop). */
export async function startServer(env: Record<string, string> = {}): Promise<BenchServer> {
  return startServerOn(fs.mkdtempSync(path.join(os.tmpdir(), 'cv-bench-')), env, true);
}

/** The Node flags on the CLI's `#!/usr/bin/env -S node …` line. */
function shebangFlags(): string[] {
  const first = fs.readFileSync(CLI, 'utf8').split('\n', 1)[0]!;
  const m = /^#!.*\bnode((?:\s+--\S+)*)\s*$/.exec(first);
  return m ? m[1]!.trim().split(/\s+/).filter(Boolean) : [];
}

/** Starts `chatvault serve` on a free port over a data folder and waits until /status answers. */
export async function startServerOn(dataDir: string, env: Record<string, string> = {}, removeAtStop = false): Promise<BenchServer> {
  const port = await freePort();
  let out = '';
  // The flags the CLI's own first line starts Node with (as `npm start` and the installed
  // `chatvault` command run), then BENCH_SERVER_NODE_ARGS ("--cpu-prof --cpu-prof-dir=/tmp/prof"
  // profiles the server of a run).
  const nodeArgs = [...shebangFlags(), ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  const proc = spawn(process.execPath, [...nodeArgs, CLI, 'serve'], {
    env: { ...process.env, PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn', CHATVAULT_ADMIN: `${ADMIN.username}:${ADMIN.password}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`server exited: ${out}`);
    try {
      if ((await fetch(`${url}/status`)).ok) break;
    } catch {
      // not up yet
    }
    if (i > 400) throw new Error(`server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url, port, dataDir, proc,
    stop: () =>
      new Promise<void>((resolve) => {
        proc.once('exit', () => {
          if (removeAtStop) fs.rmSync(dataDir, { recursive: true, force: true });
          resolve();
        });
        proc.kill('SIGTERM');
      }),
  };
}

/** JSON request helper for set-up steps (not measured). */
export async function call(url: string, method: string, body?: unknown, token?: string): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const j = (await r.json()) as Record<string, unknown>;
  if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

/** Creates org/app `bench/app` and returns an app token for it. */
export async function benchApp(s: BenchServer): Promise<{ token: string; base: string }> {
  const admin = await call(`${s.url}/management/token`, 'POST', { grant_type: 'password', ...ADMIN });
  const at = admin.access_token as string;
  await call(`${s.url}/management/organizations`, 'POST', { organization: 'bench', username: 'bench-owner', email: 'b@example.com', password: 'x-pass' }, at);
  await call(`${s.url}/management/organizations/bench/applications`, 'POST', { name: 'app' }, at);
  const creds = (await call(`${s.url}/management/organizations/bench/applications/app/credentials`, 'GET', undefined, at)).credentials as Record<string, string>;
  const tok = await call(`${s.url}/bench/app/token`, 'POST', { grant_type: 'client_credentials', client_id: creds.client_id, client_secret: creds.client_secret });
  return { token: tok.access_token as string, base: `${s.url}/bench/app` };
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

/** The p-th percentile (0–100) of values sorted ascending; 0 for none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Closed-loop load: `connections` keep-alive connections each send the next request as soon as
 * the previous one is answered, for `seconds` (after a warm-up that is not counted).
 *
 * The client is a lean HTTP/1.1 one over plain sockets (one request in flight per connection,
 * responses read by their Content-Length): the load and the servers share this machine's two
 * cores, and node:http's client spent about 130 µs of CPU per request — a third of a core at
 * 3,000 requests/s taken from the servers being measured.
 */
export async function closedLoop(opts: {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: (i: number) => string;
  connections: number;
  seconds: number;
  warmupSeconds?: number;
}): Promise<LoadResult> {
  const u = new URL(opts.url);
  const head = `${opts.method} ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: keep-alive\r\n` +
    Object.entries(opts.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  let i = 0;
  const request = (): Buffer => {
    const body = Buffer.from(opts.body(i++));
    return Buffer.concat([Buffer.from(`${head}content-length: ${body.length}\r\n\r\n`), body]);
  };
  const sockets = await Promise.all(Array.from({ length: opts.connections }, () => new Promise<net.Socket>((resolve, reject) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port) }, () => resolve(sock));
    sock.setNoDelay(true);
    sock.once('error', reject);
  })));
  // One connection's loop: send, read one whole response, repeat until `end`.
  const loop = (sock: net.Socket, end: number, record: boolean, lat: number[], counts: { errors: number }): Promise<void> =>
    new Promise((resolve) => {
      let buf: Buffer = Buffer.alloc(0);
      let t0 = 0n;
      const next = (): void => {
        if (Date.now() >= end) {
          sock.off('data', onData);
          sock.off('error', onError);
          return resolve();
        }
        t0 = process.hrtime.bigint();
        sock.write(request());
      };
      const onData = (d: Buffer): void => {
        buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
        const headEnd = buf.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const headText = buf.subarray(0, headEnd).toString('latin1');
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
        const total = headEnd + 4 + (m ? Number(m[1]) : 0);
        if (buf.length < total) return;
        const ok = headText.startsWith('HTTP/1.1 200');
        buf = buf.subarray(total);
        if (!ok) counts.errors++;
        else if (record) lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        next();
      };
      const onError = (): void => {
        counts.errors++;
        resolve();
      };
      sock.on('data', onData);
      sock.once('error', onError);
      next();
    });
  const run = async (seconds: number, record: boolean) => {
    const lat: number[] = [];
    const counts = { errors: 0 };
    const t0 = Date.now();
    const end = t0 + seconds * 1000;
    await Promise.all(sockets.map((sock) => loop(sock, end, record, lat, counts)));
    return { lat, errors: counts.errors, secs: (Date.now() - t0) / 1000 };
  };
  await run(opts.warmupSeconds ?? 1, false);
  const { lat, errors, secs } = await run(opts.seconds, true);
  for (const sock of sockets) sock.destroy();
  lat.sort((a, b) => a - b);
  const r2 = (n: number) => Math.round(n * 100) / 100;
  return {
    requests: lat.length,
    errors,
    seconds: r2(secs),
    perSecond: Math.round(lat.length / secs),
    latencyMs: { p50: r2(percentile(lat, 50)), p90: r2(percentile(lat, 90)), p99: r2(percentile(lat, 99)), max: r2(lat[lat.length - 1] ?? 0) },
  };
}

/** A scenario's outcome: its numbers, the target it is held to, and whether it met it. */
export interface ScenarioResult {
  scenario: string;
  description: string;
  target: string;
  met: boolean;
  /** One line of the numbers that matter, for the results table. */
  summary: string;
  result: Record<string, unknown>;
}

/** Where and on what the numbers were taken. */
export function machine(): Record<string, unknown> {
  return { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}` };
}
