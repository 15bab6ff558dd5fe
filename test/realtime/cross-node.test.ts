import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { eventually, REDIS_TEST_URL, redisSkip } from '../bus/redis-test-env.js';
import { Api, demoToken, startTestServer, tempDir, type TestServer } from '../helpers.js';
import { PG_SCHEMA_PREFIX, PG_TEST_URL, pgSkip, withSchema } from '../store-under-test.js';
import { FakeSession, settle } from './fake-session.js';

/** Two in-process servers on one PostgreSQL schema and one Redis: a send on one reaches sessions on the other. */

const skip = (await pgSkip()) || (await redisSkip());
const ENV = {
  DATABASE_URL: withSchema(PG_TEST_URL, `${PG_SCHEMA_PREFIX}rt_${randomBytes(3).toString('hex')}`),
  REDIS_URL: REDIS_TEST_URL, DATABASE_POOL_MAX: '4',
};

let a: TestServer;
let b: TestServer;
let apiA: Api;
let appId: number;

describe('real-time delivery across two nodes', { skip }, () => {
  before(async () => {
    // One after the other: the first creates the demo app (and announces its credentials).
    a = await startTestServer(ENV, tempDir('cv-rt-a-'));
    b = await startTestServer(ENV, tempDir('cv-rt-b-'));
    apiA = new Api(a.url, await demoToken(a));
    appId = (await a.cv.services.store.getApp('demo', 'chat'))!.id;
    for (const u of ['carol', 'dave', 'erin']) assert.equal((await apiA.post('/demo/chat/users', { username: u, password: 'pw' })).status, 200);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  test('a REST send on node A reaches the session on node B once, and each node its own sessions once', async () => {
    const onB = new FakeSession();
    const onA = new FakeSession();
    const regB = b.cv.services.realtime.sessions.register({ appId, username: 'dave', resource: 'webim' }, onB);
    const regA = a.cv.services.realtime.sessions.register({ appId, username: 'dave', resource: 'mobile' }, onA);
    try {
      assert.equal(a.cv.services.realtime.sessions.isOnline(appId, 'dave'), true);
      const r = await apiA.post('/demo/chat/messages?useMsgId=true', { target_type: 'users', target: ['dave'], from: 'carol', msg: { type: 'txt', msg: 'across' } });
      assert.equal(r.status, 200, r.text);
      const msgId = r.body.data.dave as string;
      await eventually('delivery on node B through Redis', () => onB.received.length === 1);
      await eventually('delivery on node A', () => onA.received.length === 1);
      await settle(200);
      assert.deepEqual([onA.received.length, onB.received.length], [1, 1], 'no node delivers twice');
      assert.equal(onB.received[0]!.msgId, msgId);
      assert.deepEqual(onB.texts(), ['across']);
      // Both nodes know it waits for dave's ack; an ack on B clears it on A too.
      assert.equal((await a.cv.services.realtime.delivery.status(appId, 'dave', msgId)) === 'undelivered', true);
      assert.equal((await b.cv.services.realtime.delivery.status(appId, 'dave', msgId)) === 'undelivered', true);
      await b.cv.services.realtime.router.ack(appId, 'dave', [msgId]);
      await eventually('the ack reached node A', async () => (await a.cv.services.realtime.delivery.status(appId, 'dave', msgId)) !== 'undelivered');
    } finally {
      regA.unregister();
      regB.unregister();
    }
  });

  test('a group message sent on node B reaches members on node A, not the sender', async () => {
    const app = (await b.cv.services.store.getApp('demo', 'chat'))!;
    const group = await b.cv.services.groups.create(app, 'group', { groupname: 'x', desc: 'x', owner: 'carol', members: ['dave', 'erin'] });
    const s = { carol: new FakeSession(), dave: new FakeSession(), erin: new FakeSession() };
    const regs = Object.entries(s).map(([u, t]) => a.cv.services.realtime.sessions.register({ appId, username: u, resource: 'webim' }, t));
    try {
      const apiB = new Api(b.url, apiA.token);
      const r = await apiB.post('/demo/chat/messages', { target_type: 'chatgroups', target: [group.groupId], from: 'erin', msg: { type: 'txt', msg: 'group across' } });
      assert.equal(r.status, 200, r.text);
      await eventually('carol and dave on node A', () => s.carol.received.length === 1 && s.dave.received.length === 1);
      await settle(200);
      assert.equal(s.erin.received.length, 0);
      assert.deepEqual(s.dave.texts(), ['group across']);
    } finally {
      for (const r of regs) r.unregister();
    }
  });

  test('status is online on every node while a session is on one; a kick or deactivation on node B closes the session on node A', async () => {
    const apiB = new Api(b.url, apiA.token);
    const status = async (api: Api, u: string): Promise<unknown> => (await api.get(`/demo/chat/users/${u}/status`)).body.data[u];
    // The group test's session for erin on node A has just gone; its presence reaches Redis asynchronously.
    await eventually('node B sees erin offline after the last test', async () => (await status(apiB, 'erin')) === 'offline');
    const t = new FakeSession();
    const reg = a.cv.services.realtime.sessions.register({ appId, username: 'erin', resource: 'webim' }, t);
    await eventually('node B sees erin online', async () => (await status(apiB, 'erin')) === 'online');
    assert.equal(await status(apiA, 'erin'), 'online');
    assert.equal((await apiB.get('/demo/chat/users/erin/disconnect')).status, 200);
    await eventually('the kick crossed to node A', () => t.closed.length === 1);
    assert.deepEqual(t.closed, ['removed']);
    await eventually('node B sees erin offline', async () => (await status(apiB, 'erin')) === 'offline');
    assert.equal(reg.unregister(), false, 'the kick removed the session already');

    const t2 = new FakeSession();
    a.cv.services.realtime.sessions.register({ appId, username: 'erin', resource: 'webim' }, t2);
    assert.equal((await apiB.post('/demo/chat/users/erin/deactivate')).status, 200);
    await eventually('the deactivation closed the session on node A', () => t2.closed.length === 1);
    assert.equal((await apiB.post('/demo/chat/users/erin/activate')).status, 200);
  });

  test('a node that stops takes its users offline on the others', async () => {
    const c = await startTestServer(ENV, tempDir('cv-rt-c-'));
    const t = new FakeSession();
    c.cv.services.realtime.sessions.register({ appId, username: 'carol', resource: 'webim' }, t);
    await eventually('node A sees carol online', () => a.cv.services.realtime.presence.isOnline(appId, 'carol'));
    await c.close();
    assert.deepEqual(t.closed, ['shutdown']);
    await eventually('node A sees carol offline', () => !a.cv.services.realtime.presence.isOnline(appId, 'CAROL'));
  });
});
