import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { openStore } from '../../src/chatvault.js';
import { loadConfig } from '../../src/config.js';
import { buildMessage } from '../../src/domain/messages.js';
import type { Store } from '../../src/store/store.js';
import { rawRedis, REDIS_TEST_URL, redisSkip } from '../bus/redis-test-env.js';
import { Api, createApp, req, spawnServer, stopChild, tempDir, type ChildServer, type TestServer } from '../helpers.js';
import { download, multipartBody, upload } from '../http/chatfile-helpers.js';
import { PG_SCHEMA_PREFIX, PG_TEST_URL, pgSkip, withSchema } from '../store-under-test.js';

/**
 * Two `chatvault serve` processes on one PostgreSQL schema and one Redis act as one server:
 * tokens, sends, exports, cursors, archive links and chat files cross from one node to the other.
 */

const pgWhy = await pgSkip();
const redisWhy = await redisSkip();
const skip = pgWhy || redisWhy;

const DB = withSchema(PG_TEST_URL, `${PG_SCHEMA_PREFIX}cluster_${randomBytes(3).toString('hex')}`);
const ENV = { DATABASE_URL: DB, REDIS_URL: REDIS_TEST_URL, CHATVAULT_DEMO: 'false', DATABASE_POOL_MAX: '4' };

let a: ChildServer;
let b: ChildServer;
let apiA: Api;
let apiB: Api;
let creds: { clientId: string; clientSecret: string; token: string };

const asServer = (c: ChildServer) => ({ url: c.url }) as TestServer;

async function walk(api: Api, ql: string, limit: number, handOver?: Api): Promise<string[]> {
  const ids: string[] = [];
  let cursor = '';
  let page = 0;
  for (;;) {
    const on = handOver && page % 2 === 1 ? handOver : api;
    const r = await on.get(`/o1/chat/chatmessages?ql=${encodeURIComponent(ql)}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200, r.text);
    ids.push(...(r.body.entities as { msg_id: string }[]).map((e) => e.msg_id));
    page++;
    if (!r.body.cursor) return ids;
    cursor = r.body.cursor;
  }
}

describe('two nodes on one PostgreSQL and one Redis', { skip }, () => {
  before(async () => {
    // Started together on an empty schema: they must agree on the signing key.
    [a, b] = await Promise.all([spawnServer(tempDir('cv-node-a-'), ENV), spawnServer(tempDir('cv-node-b-'), ENV)]);
    creds = await createApp(asServer(a), 'o1', 'chat');
    apiA = new Api(a.url, creds.token);
    apiB = new Api(b.url, creds.token);
    for (const u of ['alice', 'bob']) assert.equal((await apiA.post('/o1/chat/users', { username: u, password: 'pw' })).status, 200);
  });
  after(async () => {
    await Promise.all([a && stopChild(a), b && stopChild(b)]);
  });

  test('a token from one node works on the other', async () => {
    const r = await apiB.get('/o1/chat/users/alice');
    assert.equal(r.status, 200, r.text);
    const t = await req(`${b.url}/o1/chat/token`, 'POST', { grant_type: 'password', username: 'bob', password: 'pw' });
    assert.equal(t.status, 200, t.text);
    assert.equal((await new Api(a.url, t.body.access_token).get('/o1/chat/users/bob')).status, 200);
  });

  test('messages sent through both nodes at once are exported by either, with distinct ids, and a cursor crosses over', async () => {
    const sends = [];
    for (let i = 0; i < 30; i++) {
      const api = i % 2 === 0 ? apiA : apiB;
      sends.push(api.post('/o1/chat/messages', { target_type: 'users', target: ['bob'], from: 'alice', msg: { type: 'txt', msg: `m${i}` } }));
    }
    for (const r of await Promise.all(sends)) assert.equal(r.status, 200, r.text);
    const onA = await walk(apiA, "select * where to = 'bob'", 1000);
    assert.equal(onA.length, 30);
    assert.equal(new Set(onA).size, 30, 'message ids of the two nodes never collide');
    assert.deepEqual(await walk(apiB, "select * where to = 'bob'", 1000), onA);
    assert.deepEqual(await walk(apiA, "select * where to = 'bob'", 7, apiB), onA, 'pages alternate between the nodes');
    const stream = await fetch(`${b.url}/o1/chat/chatmessages/export?ql=${encodeURIComponent("select * where to = 'bob'")}`, { headers: { authorization: `Bearer ${creds.token}` } });
    const lines = (await stream.text()).trim().split('\n');
    // The stream runs in storage order, the pages in the default (timestamp) order: the same set.
    assert.deepEqual(lines.slice(0, -1).map((l) => (JSON.parse(l) as { msg_id: string }).msg_id).sort(), [...onA].sort());
  });

  test('an archive link of one node downloads from the other', async () => {
    const store: Store = openStore(loadConfig({ DATABASE_URL: DB, DATA_DIR: tempDir() }));
    await store.open();
    try {
      const app = (await store.getApp('o1', 'chat'))!;
      const h = Date.UTC(2025, 5, 1, 8);
      await store.insertMessages([0, 1, 2].map((i) => buildMessage(app.id, { from: 'alice', to: 'bob', chatType: 'chat', bodies: [{ type: 'txt', msg: `old ${i}` }], timestamp: h + i * 60_000, msgId: `55500${i}` })));
    } finally {
      await store.close();
    }
    const r = await apiA.get('/o1/chat/chatmessages/2025060108');
    assert.equal(r.status, 200, r.text);
    const item = r.body.data[0] as { url: string; count: number; sha256: string };
    const onB = new URL(item.url);
    onB.host = new URL(b.url).host;
    const d = await download(onB.toString());
    assert.equal(d.status, 200);
    const recs = gunzipSync(d.bytes).toString('utf8').trim().split('\n');
    assert.equal(recs.length, 3);
    assert.equal(item.count, 3);
  });

  test('a chat file uploaded to one node downloads from the other', async () => {
    const data = randomBytes(700_000);
    const r = await upload(a.url, '/o1/chat', multipartBody([{ name: 'file', filename: 'f.bin', type: 'application/octet-stream', data }]), { authorization: `Bearer ${creds.token}` });
    assert.equal(r.status, 200, r.text);
    const e = (r.body as { entities: { uuid: string; 'share-secret'?: string }[] }).entities[0]!;
    const d = await download(`${b.url}/o1/chat/chatfiles/${e.uuid}`, { authorization: `Bearer ${creds.token}`, ...(e['share-secret'] ? { 'share-secret': e['share-secret'] } : {}) });
    assert.equal(d.status, 200);
    assert.ok(d.bytes.equals(data));
  });

  test('new credentials on one node revoke the old tokens on the other, told through Redis', async () => {
    const spy = rawRedis();
    const notices: string[] = [];
    await spy.connect();
    spy.on('pmessage', (_p: string, _c: string, m: string) => notices.push(m));
    await spy.psubscribe('chatvault:*');
    try {
      assert.equal((await apiB.get('/o1/chat/users/alice')).status, 200, 'warm: node B has the token principal cached');
      const sys = new Api(a.url, (await req(`${a.url}/management/token`, 'POST', { grant_type: 'password', username: 'root', password: 'root-pass-1' })).body.access_token);
      const regen = await sys.post('/management/organizations/o1/applications/chat/credentials');
      assert.equal(regen.status, 200, regen.text);
      let status = 0;
      for (let i = 0; i < 100 && status !== 401; i++) {
        status = (await apiB.get('/o1/chat/users/alice')).status;
        if (status !== 401) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(status, 401);
      assert.ok(notices.some((m) => m.includes('principals') || m.includes('apps')), `an invalidation crossed Redis: ${notices.join(' | ')}`);
    } finally {
      spy.disconnect();
    }
  });
});
