import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
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

/** Starts `chatvault serve` on a free port over a data folder and waits until /status answers. */
export async function startServerOn(dataDir: string, env: Record<string, string> = {}, removeAtStop = false): Promise<BenchServer> {
  const port = await freePort();
  let out = '';
  // BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the server of a run.
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
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

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Closed-loop load: `connections` keep-alive connections each send the next request as soon as
 * the previous one is answered, for `seconds` (after a warm-up that is not counted).
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
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections });
  let i = 0;
  const one = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const body = Buffer.from(opts.body(i++));
      const t0 = process.hrtime.bigint();
      const r = http.request(
        { host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method, agent, headers: { ...opts.headers, 'content-length': body.length } },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`status ${res.statusCode}`))));
        },
      );
      r.on('error', reject);
      r.end(body);
    });
  const run = async (seconds: number, record: boolean) => {
    const lat: number[] = [];
    let errors = 0;
    const end = Date.now() + seconds * 1000;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: opts.connections }, async () => {
        while (Date.now() < end) {
          try {
            const ms = await one();
            if (record) lat.push(ms);
          } catch {
            errors++;
          }
        }
      }),
    );
    return { lat, errors, secs: (Date.now() - t0) / 1000 };
  };
  await run(opts.warmupSeconds ?? 1, false);
  const { lat, errors, secs } = await run(opts.seconds, true);
  agent.destroy();
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
