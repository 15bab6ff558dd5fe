import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChatvault, type Chatvault } from '../src/chatvault.js';
import { loadConfig } from '../src/config.js';
import { storeEnv } from './store-under-test.js';

export const ADMIN = { username: 'root', password: 'root-pass-1' };

// The folders tempDir made in this test process (the runner starts one per test file).
const madeDirs: string[] = [];

/**
 * A fresh temporary folder, removed when the test process exits (CHATVAULT_KEEP_TEST_DIRS=1
 * keeps them, to look at what a failing test left).
 */
export function tempDir(prefix = 'cv-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (madeDirs.push(dir) === 1 && process.env.CHATVAULT_KEEP_TEST_DIRS !== '1') {
    process.on('exit', () => {
      for (const d of madeDirs) {
        try {
          fs.rmSync(d, { recursive: true, force: true });
        } catch {
          // A child process still writing there: the folder stays, the test's result does not change.
        }
      }
    });
  }
  return dir;
}

export interface TestServer {
  cv: Chatvault;
  url: string;
  dataDir: string;
  /** Credentials of the demo app created on first start. */
  demo: { org: string; app: string; clientId: string; clientSecret: string };
  close(): Promise<void>;
}

/** Starts a real server on a free port over the store under test (a SQLite file in a new temp folder, or its own PostgreSQL schema). */
export async function startTestServer(env: Record<string, string> = {}, dataDir = tempDir()): Promise<TestServer> {
  let announced: string[] = [];
  const config = loadConfig({
    PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'silent',
    CHATVAULT_ADMIN: `${ADMIN.username}:${ADMIN.password}`, ...storeEnv(dataDir), ...env,
  });
  const cv = await startChatvault(config, (lines) => (announced = lines));
  const id = announced.find((l) => l.includes('client_id'))?.trim().split(/\s+/)[1] ?? '';
  const secret = announced.find((l) => l.includes('client_secret'))?.trim().split(/\s+/)[1] ?? '';
  return {
    cv, url: cv.url, dataDir,
    demo: { org: 'demo', app: 'chat', clientId: id, clientSecret: secret },
    close: () => cv.close(),
  };
}

export interface Res {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read whatever JSON came back
  text: string;
}

/** One HTTP request with fetch; the body is sent as JSON unless it is a string. */
export async function req(url: string, method: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
  }
  const r = await fetch(url, init);
  const text = await r.text();
  let parsed: unknown = undefined;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: r.status, headers: r.headers, body: parsed, text };
}

/** An API client bound to a server and (optionally) a token. */
export class Api {
  constructor(readonly base: string, public token?: string) {}

  with(token: string | undefined): Api {
    return new Api(this.base, token);
  }

  call(method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
    const h = { ...headers };
    if (this.token) h.authorization = `Bearer ${this.token}`;
    return req(this.base + p, method, body, h);
  }
  get(p: string, h?: Record<string, string>) { return this.call('GET', p, undefined, h); }
  post(p: string, b?: unknown, h?: Record<string, string>) { return this.call('POST', p, b, h); }
  put(p: string, b?: unknown, h?: Record<string, string>) { return this.call('PUT', p, b, h); }
  delete(p: string, h?: Record<string, string>) { return this.call('DELETE', p, undefined, h); }
}

/** An app token for the server's demo app. */
export async function demoToken(s: TestServer): Promise<string> {
  const r = await req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'client_credentials', client_id: s.demo.clientId, client_secret: s.demo.clientSecret });
  if (r.status !== 200) throw new Error(`token failed: ${r.text}`);
  return r.body.access_token as string;
}

/** A system-admin token. */
export async function sysadminToken(s: TestServer): Promise<string> {
  const r = await req(`${s.url}/management/token`, 'POST', { grant_type: 'password', ...ADMIN });
  if (r.status !== 200) throw new Error(`management token failed: ${r.text}`);
  return r.body.access_token as string;
}

/** Creates org/app through the management API and returns the app's credentials and an app token. */
export async function createApp(s: TestServer, org: string, app: string): Promise<{ clientId: string; clientSecret: string; token: string; uuid: string }> {
  const sys = new Api(s.url, await sysadminToken(s));
  let r = await sys.post('/management/organizations', { organization: org, username: `${org}-owner`, email: `${org}@example.com`, password: 'owner-pass' });
  if (r.status !== 200 && r.body?.error !== 'duplicate_unique_property_exists') throw new Error(`org failed: ${r.text}`);
  r = await sys.post(`/management/organizations/${org}/applications`, { name: app });
  if (r.status !== 200) throw new Error(`app failed: ${r.text}`);
  r = await sys.get(`/management/organizations/${org}/applications/${app}/credentials`);
  const { client_id: clientId, client_secret: clientSecret } = r.body.credentials;
  const t = await req(`${s.url}/${org}/${app}/token`, 'POST', { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
  return { clientId, clientSecret, token: t.body.access_token, uuid: t.body.application };
}

/** Sends raw bytes on a TCP connection and collects everything the server writes until it closes. */
export function rawHttp(port: number, data: string | Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(Buffer.concat(chunks).toString('utf8'));
    }, timeoutMs);
    sock.on('connect', () => sock.write(data));
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => {
      clearTimeout(timer);
      if (chunks.length > 0) resolve(Buffer.concat(chunks).toString('utf8'));
      else reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** The built CLI entry (dist/src/cli/main.js). */
export const CLI = path.resolve(here, '../src/cli/main.js');

export interface ChildServer {
  proc: ChildProcess;
  url: string;
  port: number;
  output: () => string;
}

/**
 * Starts `chatvault serve` as a separate process (for restart and kill -9 tests); resolves once
 * /status answers. `port` keeps a restarted server where its clients reconnect.
 */
export async function spawnServer(dataDir: string, env: Record<string, string> = {}, port?: number): Promise<ChildServer> {
  port ??= await freePort();
  let out = '';
  const proc = spawn(process.execPath, [CLI, 'serve'], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'warn', CHATVAULT_ADMIN: `${ADMIN.username}:${ADMIN.password}`, ...storeEnv(dataDir), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited early: ${out}`);
    try {
      const r = await fetch(`${url}/status`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`server did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, url, port, output: () => out };
}

/** Stops a child server with a signal and waits for it to exit. */
export function stopChild(c: ChildServer, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve();
    c.proc.once('exit', () => resolve());
    c.proc.kill(signal);
  });
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}
