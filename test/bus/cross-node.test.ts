import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Api, demoToken, freePort, req, startTestServer, sysadminToken, tempDir, type TestServer } from '../helpers.js';
import { eventually, REDIS_TEST_URL, redisSkip } from './redis-test-env.js';

const skip = await redisSkip();

// Both servers on SQLite whatever store the suite runs against: B starts on a copy of A's data
// folder. The servers cannot share writes (the full two-node test runs over PostgreSQL); what is
// tested here is the bus wiring: a change on A clears B's caches.
const SQLITE = { DATABASE_URL: '' };

describe('two servers on one Redis: cache invalidation across nodes', { skip }, () => {
  let a: TestServer;
  let b: TestServer;
  let creds: { client_id: string; client_secret: string };

  before(async () => {
    const dirA = tempDir();
    const first = await startTestServer(SQLITE, dirA);
    creds = { client_id: first.demo.clientId, client_secret: first.demo.clientSecret };
    const admin = new Api(first.url, await demoToken(first));
    const r = await admin.post('/demo/chat/users', [{ username: 'zoe', password: 'pw-zoe' }]);
    assert.equal(r.status, 200, r.text);
    await first.close();
    // The copy has A's signing key, hence the same bus namespace, and the same app and user ids.
    const dirB = tempDir();
    fs.cpSync(dirA, dirB, { recursive: true });
    const env = { ...SQLITE, REDIS_URL: REDIS_TEST_URL };
    a = await startTestServer(env, dirA);
    b = await startTestServer(env, dirB);
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  const appToken = (s: TestServer, c = creds) => req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'client_credentials', ...c });

  test('both nodes use the Redis bus, in one namespace', () => {
    assert.equal(a.cv.services.bus.constructor.name, 'RedisBus');
    assert.notEqual(a.cv.services.bus.nodeId, b.cv.services.bus.nodeId);
  });

  test('a deactivation on A clears the token principals and the sender cache of B', async (t) => {
    // The caches' one-second TTL never runs out while Date stands still: only a notice clears them.
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const bAdmin = new Api(b.url, (await appToken(b)).body.access_token);
    const login = await req(`${b.url}/demo/chat/token`, 'POST', { grant_type: 'password', username: 'zoe', password: 'pw-zoe' });
    assert.equal(login.status, 200, login.text);
    const zoeOnB = new Api(b.url, login.body.access_token);
    const send = () => bAdmin.post('/demo/chat/messages', { target_type: 'users', target: ['somebody'], msg: { type: 'txt', msg: 'hi' }, from: 'zoe' });
    assert.equal((await zoeOnB.get('/demo/chat/users/zoe')).status, 200);
    assert.equal((await send()).status, 200);

    // Deactivated behind B's back (as another node would do it in a shared store): B does not know yet.
    const zoe = (await b.cv.services.store.getUser((await b.cv.services.store.getApp('demo', 'chat'))!.id, 'zoe'))!;
    await b.cv.services.store.updateUser(zoe.id, { activated: false, modified: Date.now() });
    assert.equal((await zoeOnB.get('/demo/chat/users/zoe')).status, 200, 'B answers from its principal cache');
    assert.equal((await send()).status, 200, 'B answers from its sender cache');

    const before = { a: a.cv.services.invalidation.counts(), b: b.cv.services.invalidation.counts() };
    const aAdmin = new Api(a.url, (await appToken(a)).body.access_token);
    assert.equal((await aAdmin.post('/demo/chat/users/zoe/deactivate')).status, 200);
    await eventually("B refusing zoe's token", async () => (await zoeOnB.get('/demo/chat/users/zoe')).status === 401);
    const refused = await send();
    assert.equal(refused.status, 403, refused.text);
    assert.match(refused.body.error_description, /zoe is deactivated/);

    // B applied A's notice without passing it on; A ignored its own.
    const now = { a: a.cv.services.invalidation.counts(), b: b.cv.services.invalidation.counts() };
    assert.equal(now.a.sent - before.a.sent, 1);
    assert.equal(now.b.applied - before.b.applied, 1);
    assert.equal(now.b.sent - before.b.sent, 0);
    assert.equal(now.a.applied - before.a.applied, 0);
  });

  test('new credentials on A clear the app cache of B', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    assert.equal((await appToken(b)).status, 200);
    const app = (await b.cv.services.store.getApp('demo', 'chat'))!;
    await b.cv.services.store.setAppCredentials(app.id, 'YXAnew-id', 'YXAnew-secret');
    const stale = await appToken(b);
    assert.equal(stale.status, 200, `B answers from its app cache: ${stale.text}`);

    const sys = new Api(a.url, await sysadminToken(a));
    const regenerated = await sys.post('/management/organizations/demo/applications/chat/credentials');
    assert.equal(regenerated.status, 200, regenerated.text);
    await eventually('B refusing the old credentials', async () => (await appToken(b)).body?.error === 'invalid_grant');
    assert.equal((await appToken(b, { client_id: 'YXAnew-id', client_secret: 'YXAnew-secret' })).status, 200);
  });
});

test('a server whose REDIS_URL does not answer fails to start with a message naming REDIS_URL', { timeout: 15_000 }, async () => {
  const port = await freePort();
  await assert.rejects(startTestServer({ ...SQLITE, REDIS_URL: `redis://127.0.0.1:${port}` }), /^RedisUnavailableError: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+ \(REDIS_URL\)/);
});
