import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { after, test } from 'node:test';
import { ADMIN, Api, demoToken, req, spawnServer, startTestServer, stopChild, tempDir, type ChildServer } from '../helpers.js';
import { openTestStore } from '../store-under-test.js';

// A real `chatvault serve` process, stopped and started again on the same data folder.

const dataDir = tempDir('cv-restart-');
const children: ChildServer[] = [];

after(async () => {
  for (const c of children) await stopChild(c, 'SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function start(): Promise<{ c: ChildServer; closed: Promise<unknown> }> {
  const c = await spawnServer(dataDir);
  children.push(c);
  return { c, closed: once(c.proc, 'close') };
}

async function waitForOutput(c: ChildServer, needle: string): Promise<void> {
  for (let i = 0; i < 200 && !c.output().includes(needle); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(c.output().includes(needle), `expected '${needle}' in: ${c.output()}`);
}

/** The value printed after `label` in the first-start box. */
function printed(out: string, label: string): string {
  const m = new RegExp(`${label}\\s+(\\S+)`).exec(out);
  assert.ok(m, `no ${label} in: ${out}`);
  return m[1]!;
}

async function token(base: string, p: string, body: Record<string, unknown>): Promise<string> {
  const r = await req(`${base}${p}`, 'POST', body);
  assert.equal(r.status, 200, r.text);
  return String(r.body.access_token);
}

test('tokens, apps, users and messages survive a restart; first-start credentials print once', { timeout: 120000 }, async () => {
  // First run: everything an app developer would create.
  const first = await start();
  const url1 = first.c.url;
  await waitForOutput(first.c, 'client_secret');
  const out1 = first.c.output();
  assert.match(out1, /demo app created: appkey demo#chat/);
  const demoId = printed(out1, 'client_id');
  const demoSecret = printed(out1, 'client_secret');

  const demoToken = await token(url1, '/demo/chat/token', { grant_type: 'client_credentials', client_id: demoId, client_secret: demoSecret });
  const sysToken = await token(url1, '/management/token', { grant_type: 'password', ...ADMIN });
  const sys = new Api(url1, sysToken);
  let r = await sys.post('/management/organizations', { organization: 'acme', username: 'acme-owner', email: 'o@acme.test', password: 'owner-pass' });
  assert.equal(r.status, 200, r.text);
  r = await sys.post('/management/organizations/acme/applications', { name: 'shop' });
  assert.equal(r.status, 200, r.text);
  r = await sys.get('/management/organizations/acme/applications/shop/credentials');
  assert.equal(r.status, 200, r.text);
  const { client_id: shopId, client_secret: shopSecret } = r.body.credentials as { client_id: string; client_secret: string };
  const shopToken = await token(url1, '/acme/shop/token', { grant_type: 'client_credentials', client_id: shopId, client_secret: shopSecret });
  const shop = new Api(url1, shopToken);

  const names = ['alice', 'bob', ...Array.from({ length: 20 }, (_, i) => `user${i}`)];
  r = await shop.post('/acme/shop/users', { username: 'alice', password: 'alice-pw', nickname: 'Alice' });
  assert.equal(r.status, 200, r.text);
  r = await shop.post('/acme/shop/users', names.slice(1).map((username) => ({ username, password: `${username}-pw` })));
  assert.equal(r.status, 200, r.text);
  const aliceToken = await token(url1, '/acme/shop/token', { grant_type: 'password', username: 'alice', password: 'alice-pw' });

  const sent = new Map<string, string>(); // msg_id → text
  for (let i = 0; i < 30; i++) {
    r = await shop.post('/acme/shop/messages?useMsgId=true', { target_type: 'users', target: ['bob'], from: 'alice', msg: { type: 'txt', msg: `before ${i}` } });
    assert.equal(r.status, 200, r.text);
    sent.set(String(r.body.data.bob), `before ${i}`);
  }

  await stopChild(first.c, 'SIGTERM');
  await first.closed;
  assert.equal(first.c.proc.exitCode, 0, `graceful stop: ${first.c.output()}`);

  // Second run on the same folder.
  const second = await start();
  const url2 = second.c.url;
  const again = (t: string) => new Api(url2, t);

  r = await again(demoToken).get('/demo/chat/users');
  assert.equal(r.status, 200, `demo app token after restart: ${r.text}`);
  r = await again(sysToken).get('/management/organizations/acme/applications/shop/credentials');
  assert.equal(r.status, 200, `sysadmin token after restart: ${r.text}`);
  assert.deepEqual(r.body.credentials, { client_id: shopId, client_secret: shopSecret });
  r = await again(aliceToken).get('/acme/shop/users/alice');
  assert.equal(r.status, 200, `IM user token after restart: ${r.text}`);
  assert.equal(r.body.entities[0].username, 'alice');
  assert.equal(r.body.entities[0].nickname, 'Alice');

  const listed: string[] = [];
  let cursor: string | undefined;
  do {
    r = await again(shopToken).get(`/acme/shop/users?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(r.status, 200, r.text);
    listed.push(...(r.body.entities as { username: string }[]).map((u) => u.username));
    cursor = r.body.cursor as string | undefined;
  } while (cursor);
  assert.deepEqual(listed.sort(), [...names].sort());

  // The stored credentials still grant tokens; the old password still logs in.
  await token(url2, '/acme/shop/token', { grant_type: 'client_credentials', client_id: shopId, client_secret: shopSecret });
  await token(url2, '/acme/shop/token', { grant_type: 'password', username: 'user7', password: 'user7-pw' });

  for (let i = 0; i < 5; i++) {
    r = await again(shopToken).post('/acme/shop/messages?useMsgId=true', { target_type: 'users', target: ['bob'], msg: { type: 'txt', msg: `after ${i}` } });
    assert.equal(r.status, 200, r.text);
    const id = String(r.body.data.bob);
    assert.ok(!sent.has(id), `msg_id ${id} reused after restart`);
    sent.set(id, `after ${i}`);
  }

  await stopChild(second.c, 'SIGINT');
  await second.closed;
  assert.equal(second.c.proc.exitCode, 0);
  const out2 = second.c.output();
  assert.doesNotMatch(out2, /first start|demo app created|client_secret/);
  assert.ok(!out2.includes(demoSecret));

  // Every message of both runs is stored once, in order, as sent.
  const store = await openTestStore(dataDir);
  try {
    const app = await store.getApp('acme', 'shop');
    assert.ok(app);
    const rows = await store.messagesAfter(app.id, 0n, 1000);
    const stored = rows.map((row) => JSON.parse(String(row.entity)) as { msg_id: string; from: string; to: string; payload: { bodies: { msg: string }[] } });
    assert.deepEqual(stored.map((e) => e.msg_id), [...sent.keys()]);
    assert.deepEqual(stored.map((e) => e.payload.bodies[0]!.msg), [...sent.values()]);
    assert.deepEqual(new Set(stored.map((e) => `${e.from}>${e.to}`)), new Set(['alice>bob', 'admin>bob']));
    assert.equal(await store.countMessages(app.id), sent.size);
  } finally {
    await store.close();
  }
});

// The timeout is a bound, not a measurement: a stop that waits out a client's keep-alive (72 s) fails here.
test('SIGTERM while clients are sending: every 200 is stored, nothing answers 500', { timeout: 60000 }, async (t) => {
  const dir = tempDir('cv-sigterm-');
  try {
    const c = await spawnServer(dir);
    children.push(c);
    const closed = once(c.proc, 'close');
    const api = new Api(c.url, await token(c.url, '/management/token', { grant_type: 'password', ...ADMIN }));
    const acked = new Set<string>();
    const statuses = new Map<number, number>();
    let stopping = false;
    const client = async (n: number) => {
      for (let i = 0; i < 500; i++) {
        let r;
        try {
          r = await api.post('/demo/chat/messages?useMsgId=true', { target_type: 'users', target: [`u${n}`], msg: { type: 'txt', msg: `c${n}-${i}` } });
        } catch {
          if (!stopping) throw new Error('connection failed before the stop');
          return;
        }
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status === 200) acked.add(String(r.body.data[`u${n}`]));
        else {
          assert.ok(stopping, `${r.status} before the stop: ${r.text}`);
          assert.equal(r.status, 503, r.text);
          assert.equal(r.headers.get('content-type'), 'application/json;charset=UTF-8');
          return;
        }
        if (acked.size >= 300 && !stopping) {
          stopping = true;
          c.proc.kill('SIGTERM');
        }
      }
    };
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, n) => client(n)));
    await closed;
    for (const r of results) assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
    assert.equal(c.proc.exitCode, 0, c.output());
    t.diagnostic(`statuses ${JSON.stringify([...statuses])}`);

    const store = await openTestStore(dir);
    try {
      const app = (await store.getApp('demo', 'chat'))!;
      const ids = new Set((await store.messagesAfter(app.id, 0n, 10000)).map((m) => (JSON.parse(String(m.entity)) as { msg_id: string }).msg_id));
      for (const id of acked) assert.ok(ids.has(id), `acknowledged ${id} missing after a graceful stop`);
    } finally {
      await store.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a stopping server finishes the requests it has begun and refuses new ones with an Easemob 503', { timeout: 30000 }, async () => {
  const srv = await startTestServer();
  let closing: Promise<void> | undefined;
  const socks: net.Socket[] = [];
  try {
    const t = await demoToken(srv);
    const body = JSON.stringify({ target_type: 'users', target: ['u1'], msg: { type: 'txt', msg: 'sent while stopping' } });
    const open = async () => {
      const sock = net.connect(srv.cv.port, '127.0.0.1');
      socks.push(sock);
      const o = { sock, out: '', closed: once(sock, 'close') };
      sock.on('data', (d) => (o.out += d));
      await once(sock, 'connect');
      return o;
    };
    // a: a send whose body is still arriving when the stop begins; b: a request whose headers are.
    const a = await open();
    const b = await open();
    a.sock.write(`POST /demo/chat/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t}\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
    b.sock.write('GET /status HTTP/1.1\r\n');
    await new Promise((r) => setTimeout(r, 100));
    const app = (await srv.cv.services.store.getApp('demo', 'chat'))!;
    closing = srv.close();
    await new Promise((r) => setTimeout(r, 50));
    a.sock.write(body.slice(10));
    b.sock.write('Host: x\r\n\r\n');
    await Promise.all([a.closed, b.closed, closing]);

    assert.match(a.out, /^HTTP\/1\.1 200 /);
    assert.match(a.out, /\r\nconnection: close\r\n/i, 'a client must not reuse a connection of a stopping server');
    assert.match(a.out, /"data":\{"u1":"success"\}/);
    assert.match(b.out, /^HTTP\/1\.1 503 /);
    assert.match(b.out, /\r\ncontent-type: application\/json;charset=UTF-8\r\n/i);
    const err = JSON.parse(b.out.slice(b.out.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    assert.equal(err.error, 'service_unavailable');
    assert.equal(typeof err.timestamp, 'number');
    assert.equal(typeof err.error_description, 'string');

    const store = await openTestStore(srv.dataDir);
    try {
      const rows = await store.messagesAfter(app.id, 0n, 10);
      assert.deepEqual(rows.map((m) => (JSON.parse(String(m.entity)) as { payload: { bodies: { msg: string }[] } }).payload.bodies[0]!.msg), ['sent while stopping']);
    } finally {
      await store.close();
    }
  } finally {
    for (const sock of socks) sock.destroy();
    await (closing ?? srv.close());
    fs.rmSync(srv.dataDir, { recursive: true, force: true });
  }
});
