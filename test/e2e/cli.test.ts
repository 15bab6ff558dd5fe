import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { settingDocs } from '../../src/config.js';
import type { AppCredentials } from '../../src/domain/tenants.js';
import { CLI, req, spawnServer, stopChild, tempDir, type ChildServer } from '../helpers.js';
import { storeEnv, TEST_STORE, testStoreExists } from '../store-under-test.js';

// The `chatvault` command line, run as a real process over real data folders.

const dirs: string[] = [];
const children: ChildServer[] = [];
after(async () => {
  for (const c of children) await stopChild(c, 'SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = tempDir('cv-cli-');
  dirs.push(d);
  return d;
}

// Settings of the surrounding environment must not leak into the commands under test (every
// setting, DATABASE_URL and REDIS_URL included); the store under test is passed explicitly.
const SETTINGS = settingDocs().map((s) => s.env);
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of SETTINGS) delete env[k];
  return { ...env, ...extra };
}

/** The data folder a command runs on: its --data-dir, else DATA_DIR. */
function dataDirOf(args: string[], env: Record<string, string>): string | undefined {
  const i = args.indexOf('--data-dir');
  return i >= 0 ? args[i + 1] : env.DATA_DIR;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI to completion (killed after 30 s, so a hanging command fails instead of blocking),
 * on the store under test of the data folder it is given (the one a server on that folder uses).
 */
async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const data = dataDirOf(args, env);
  const p = spawn(process.execPath, [CLI, ...args], { env: cleanEnv({ ...(data ? storeEnv(data) : {}), ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => p.kill('SIGKILL'), 30000);
  try {
    const [code] = (await once(p, 'close')) as [number | null];
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

type Credentials = AppCredentials;

function credentialsOf(r: Run): Credentials {
  assert.equal(r.code, 0, r.stderr);
  const c = JSON.parse(r.stdout) as Credentials;
  assert.deepEqual(Object.keys(c).sort(), ['app', 'appkey', 'application', 'client_id', 'client_secret', 'org']);
  return c;
}

function assertOneLineFailure(r: Run, code: number | 'nonzero', pattern: RegExp): void {
  if (code === 'nonzero') assert.ok(r.code !== 0 && r.code !== null, `exit ${r.code}: ${r.stderr}`);
  else assert.equal(r.code, code, r.stderr);
  assert.equal(r.stdout, '');
  const msg = r.stderr.trim();
  assert.ok(msg !== '' && !msg.includes('\n'), `one line expected, got: ${JSON.stringify(r.stderr)}`);
  assert.match(msg, pattern);
}

async function token(base: string, p: string, body: Record<string, unknown>) {
  return req(`${base}${p}`, 'POST', body);
}

describe('chatvault app', () => {
  const data = dir();
  let created: Credentials;

  test('app create org1/app1 prints the new app as JSON', async () => {
    created = credentialsOf(await cli(['app', 'create', 'org1/app1', '--data-dir', data]));
    assert.equal(created.org, 'org1');
    assert.equal(created.app, 'app1');
    assert.equal(created.appkey, 'org1#app1');
    assert.match(created.application, /^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.match(created.client_id, /^YXA6[A-Za-z0-9_-]{20,}$/);
    assert.match(created.client_secret, /^YXA6[A-Za-z0-9_-]{20,}$/);
    assert.notEqual(created.client_id, created.client_secret);
  });

  test('app credentials prints the same ids, for org/app and org#app', async () => {
    assert.deepEqual(credentialsOf(await cli(['app', 'credentials', 'org1/app1', '--data-dir', data])), created);
    assert.deepEqual(credentialsOf(await cli(['app', 'credentials', 'org1#app1'], { DATA_DIR: data })), created);
  });

  test('a second app in the same org gets its own credentials', async () => {
    const other = credentialsOf(await cli(['app', 'create', 'org1/app2', '--data-dir', data]));
    assert.equal(other.appkey, 'org1#app2');
    assert.notEqual(other.client_id, created.client_id);
    assert.notEqual(other.application, created.application);
  });

  test('--regenerate issues new credentials; the server honours only the new ones', async () => {
    const fresh = credentialsOf(await cli(['app', 'credentials', 'org1/app1', '--regenerate', '--data-dir', data]));
    assert.equal(fresh.application, created.application);
    assert.equal(fresh.appkey, created.appkey);
    assert.notEqual(fresh.client_id, created.client_id);
    assert.notEqual(fresh.client_secret, created.client_secret);
    assert.deepEqual(credentialsOf(await cli(['app', 'credentials', 'org1/app1', '--data-dir', data])), fresh);

    const server = await spawnServer(data);
    children.push(server);
    try {
      const good = await token(server.url, '/org1/app1/token', { grant_type: 'client_credentials', client_id: fresh.client_id, client_secret: fresh.client_secret });
      assert.equal(good.status, 200, good.text);
      assert.equal(good.body.application, created.application);
      const old = await token(server.url, '/org1/app1/token', { grant_type: 'client_credentials', client_id: created.client_id, client_secret: created.client_secret });
      assert.equal(old.status, 400, old.text);
      assert.equal(old.body.error, 'invalid_grant');
    } finally {
      await stopChild(server);
    }
  });

  test('bad arguments exit non-zero with a one-line message', async () => {
    for (const arg of ['noslash', 'a/b/c', '/app', 'org/']) {
      assertOneLineFailure(await cli(['app', 'create', arg, '--data-dir', data]), 'nonzero', new RegExp(`org/app.*${arg.replace(/[/]/g, '\\/')}`));
    }
    assertOneLineFailure(await cli(['app', 'create', 'org1/app1', '--data-dir', data]), 'nonzero', /app1/);
    assertOneLineFailure(await cli(['app', 'credentials', 'nosuch/app', '--data-dir', data]), 'nonzero', /nosuch/);
    assertOneLineFailure(await cli(['app', 'create', 'org1/bad name!', '--data-dir', data]), 'nonzero', /bad name!/);
    assertOneLineFailure(await cli(['app', 'create', '--data-dir', data]), 'nonzero', /missing required argument/);
    // A refused command changes nothing.
    assert.deepEqual((await cli(['app', 'credentials', 'org1/app1', '--data-dir', data])).code, 0);
  });

  // The SQLite file lives in the data folder; on PostgreSQL `app` never touches the folder.
  test('a data folder that cannot be created exits non-zero naming it', { skip: TEST_STORE !== 'sqlite' && 'the PostgreSQL store keeps nothing in the data folder' }, async () => {
    const file = `${dir()}/not-a-folder`;
    fs.writeFileSync(file, 'x');
    assertOneLineFailure(await cli(['app', 'create', 'o/a', '--data-dir', `${file}/sub`]), 'nonzero', /not-a-folder/);
  });
});

describe('invalid settings', () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['serve'], { PORT: 'abc' }, /PORT.*abc/],
    [['serve'], { PORT: '70000' }, /PORT/],
    [['serve'], { LOG_LEVEL: 'loud' }, /LOG_LEVEL.*loud/],
    [['serve', '--port', 'abc'], {}, /PORT.*abc/],
    [['serve', '--log-level', 'loud'], {}, /LOG_LEVEL.*loud/],
    [['--port', 'x1'], {}, /PORT/],
    [['serve'], { PUBLIC_URL: 'ftp://x' }, /PUBLIC_URL/],
    [['serve'], { CHATVAULT_ADMIN: 'nocolon' }, /CHATVAULT_ADMIN/],
    [['serve'], { MESSAGE_MAX_BYTES: '10' }, /MESSAGE_MAX_BYTES/],
    [['app', 'create', 'o/a'], { TOKEN_TTL: 'forever' }, /TOKEN_TTL/],
  ];
  for (const [args, env, pattern] of cases) {
    test(`${Object.entries(env).map(([k, v]) => `${k}=${v} `).join('')}chatvault ${args.join(' ')} exits 2 naming the setting`, async () => {
      const data = dir();
      assertOneLineFailure(await cli(args, { DATA_DIR: data, ...env }), 2, pattern);
      assert.deepEqual(fs.readdirSync(data), [], 'nothing is written before the configuration is valid');
      assert.equal(await testStoreExists(data), false, 'no store is created before the configuration is valid');
    });
  }
});

test('first start prints the demo appkey and credentials once, and they work', { timeout: 60000 }, async () => {
  const data = dir();
  const first = await spawnServer(data, { CHATVAULT_ADMIN: '' });
  children.push(first);
  const closed = once(first.proc, 'close');
  let out = '';
  for (let i = 0; i < 200 && !/client_secret\s+\S+/.test(out); i++) {
    await new Promise((r) => setTimeout(r, 25));
    out = first.output();
  }
  assert.match(out, /first start/);
  assert.match(out, /demo app created: appkey demo#chat/);
  const id = /client_id\s+(\S+)/.exec(out)?.[1];
  const secret = /client_secret\s+(\S+)/.exec(out)?.[1];
  const admin = /system administrator: admin \/ (\S+)/.exec(out)?.[1];
  assert.ok(id && secret && admin, out);
  assert.equal(out.split(secret).length - 1, 2, 'the secret is shown in the box and in the curl example only');

  let r = await token(first.url, '/demo/chat/token', { grant_type: 'client_credentials', client_id: id, client_secret: secret });
  assert.equal(r.status, 200, r.text);
  r = await token(first.url, '/management/token', { grant_type: 'password', username: 'admin', password: admin });
  assert.equal(r.status, 200, r.text);
  await stopChild(first);
  await closed;

  const second = await spawnServer(data, { CHATVAULT_ADMIN: '' });
  children.push(second);
  const closed2 = once(second.proc, 'close');
  r = await token(second.url, '/management/token', { grant_type: 'password', username: 'admin', password: admin });
  assert.equal(r.status, 200, `the generated admin password still works: ${r.text}`);
  r = await token(second.url, '/demo/chat/token', { grant_type: 'client_credentials', client_id: id, client_secret: secret });
  assert.equal(r.status, 200, r.text);
  await stopChild(second);
  await closed2;
  const out2 = second.output();
  assert.doesNotMatch(out2, /first start|demo app created|system administrator|client_secret/);
  assert.ok(!out2.includes(secret) && !out2.includes(admin));
});
