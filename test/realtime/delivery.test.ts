import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { AppRow } from '../../src/store/store.js';
import { eventually } from '../bus/redis-test-env.js';
import { Api, demoToken, startTestServer, type TestServer } from '../helpers.js';
import { FakeSession, settle } from './fake-session.js';

/** The real-time core of one server, driven by REST sends and fake transport sessions. */

let s: TestServer;
let api: Api;
let app: AppRow;

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  app = (await s.cv.services.store.getApp('demo', 'chat'))!;
  for (const u of ['alice', 'bob', 'gowner', 'gm1', 'gm2']) {
    const r = await api.post('/demo/chat/users', { username: u, password: 'pw' });
    assert.equal(r.status, 200, r.text);
  }
});
after(async () => {
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

const send = async (targetType: string, target: string, from: string, text: string): Promise<string> => {
  const r = await api.post('/demo/chat/messages?useMsgId=true', { target_type: targetType, target: [target], from, msg: { type: 'txt', msg: text } });
  assert.equal(r.status, 200, r.text);
  return r.body.data[target] as string;
};

describe('real-time core on one node', () => {
  test('a REST send reaches a registered session live, with the stored record, and waits for its ack', async () => {
    const rt = s.cv.services.realtime;
    const alice = new FakeSession();
    const reg = rt.sessions.register({ appId: app.id, username: 'Alice', resource: 'webim' }, alice);
    try {
      assert.equal(rt.sessions.isOnline(app.id, 'ALICE'), true, 'user names compare lower-cased');
      const msgId = await send('users', 'alice', 'bob', 'hello live');
      await eventually('the live delivery', () => alice.received.length === 1);
      const m = alice.received[0]!;
      assert.deepEqual([m.msgId, m.from, m.to, m.chatType], [msgId, 'bob', 'alice', 'chat']);
      assert.deepEqual(alice.texts(), ['hello live']);
      // The record is the export's entity, byte for byte.
      const exported = await api.get(`/demo/chat/chatmessages?ql=${encodeURIComponent(`select * where msg_id = '${msgId}'`)}`);
      assert.equal(exported.status, 200, exported.text);
      assert.deepEqual(JSON.parse(m.record), exported.body.entities[0]);
      assert.equal((await rt.delivery.status(app.id, 'alice', msgId)) === 'undelivered', true, 'delivered to a socket is not acked yet');
      assert.deepEqual((await rt.router.ack(app.id, 'alice', [msgId, 'no-such-id'])).map((a) => a.msgId), [msgId]);
      assert.equal((await rt.delivery.count(app.id, 'alice')), 0);
    } finally {
      reg.unregister();
    }
  });

  test('a send to a user nobody connected still answers 200 and waits in the delivery state for replay', async () => {
    const rt = s.cv.services.realtime;
    assert.equal(rt.sessions.isOnline(app.id, 'bob'), false);
    const before = (await rt.delivery.count(app.id, 'bob'));
    const ids = [await send('users', 'bob', 'alice', 'one'), await send('users', 'bob', 'alice', 'two')];
    await eventually('both recorded', async () => (await rt.delivery.count(app.id, 'bob')) === before + 2);
    assert.deepEqual((await rt.delivery.pending(app.id, 'BOB', 0n, 1000)).slice(-2).map((m) => m.msgId), ids, 'oldest first');
    await rt.router.ack(app.id, 'bob', ids);
  });

  test('a group message reaches every member session (owner included) but not the sender', async () => {
    const rt = s.cv.services.realtime;
    const group = await s.cv.services.groups.create(app, 'group', { groupname: 'rt', desc: 'rt', owner: 'gowner', members: ['gm1', 'gm2'] });
    const sessions = { gowner: new FakeSession(), gm1: new FakeSession(), gm2: new FakeSession(), bob: new FakeSession() };
    const regs = Object.entries(sessions).map(([u, t]) => rt.sessions.register({ appId: app.id, username: u, resource: 'webim' }, t));
    try {
      const msgId = await send('chatgroups', group.groupId, 'gm1', 'to the group');
      await eventually('the owner and the other member got it', () => sessions.gowner.received.length === 1 && sessions.gm2.received.length === 1);
      await settle();
      assert.equal(sessions.gm1.received.length, 0, 'the sender does not receive its own message');
      assert.equal(sessions.bob.received.length, 0, 'a non-member does not receive it');
      assert.deepEqual(sessions.gm2.received.map((m) => [m.msgId, m.chatType, m.to]), [[msgId, 'groupchat', group.groupId]]);
      assert.equal((await rt.delivery.status(app.id, 'gowner', msgId)) === 'undelivered', true);
      assert.equal((await rt.delivery.status(app.id, 'gm1', msgId)) === 'undelivered', false);
    } finally {
      for (const r of regs) r.unregister();
    }
  });

  test('a second session with the same resource replaces the first with conflict; another resource does not', async () => {
    const rt = s.cv.services.realtime;
    const first = new FakeSession();
    const second = new FakeSession();
    const mobile = new FakeSession();
    const size = rt.sessions.size;
    const r1 = rt.sessions.register({ appId: app.id, username: 'alice', resource: 'webim' }, first);
    const rm = rt.sessions.register({ appId: app.id, username: 'alice', resource: 'mobile' }, mobile);
    const r2 = rt.sessions.register({ appId: app.id, username: 'ALICE', resource: 'webim' }, second);
    try {
      assert.deepEqual(first.closed, ['conflict']);
      assert.deepEqual([second.closed, mobile.closed], [[], []]);
      assert.equal(rt.sessions.size, size + 2);
      assert.equal(r1.unregister(), false, "the replaced session's late unregister leaves its successor alone");
      assert.deepEqual(rt.sessions.resources(app.id, 'alice').sort(), ['mobile', 'webim']);
      await send('users', 'alice', 'bob', 'after the replace');
      await eventually('both current sessions got it', () => second.received.length === 1 && mobile.received.length === 1);
      await settle();
      assert.equal(first.received.length, 0);
    } finally {
      r2.unregister();
      rm.unregister();
      await rt.router.ack(app.id, 'alice', (await rt.delivery.pending(app.id, 'alice', 0n, 1000)).map((m) => m.msgId));
    }
  });

  test('an unregistered session is offline and receives nothing more', async () => {
    const rt = s.cv.services.realtime;
    const t = new FakeSession();
    const reg = rt.sessions.register({ appId: app.id, username: 'bob', resource: 'webim' }, t);
    assert.equal(reg.unregister(), true);
    assert.equal(reg.unregister(), false, 'a second unregister does nothing');
    assert.equal(rt.sessions.isOnline(app.id, 'bob'), false);
    const msgId = await send('users', 'bob', 'alice', 'after leaving');
    await eventually('recorded for replay', async () => (await rt.delivery.status(app.id, 'bob', msgId)) === 'undelivered');
    await settle();
    assert.equal(t.received.length, 0);
    assert.deepEqual(t.closed, []);
  });

  test('a throwing transport does not stop delivery to the user\'s other sessions, nor the send', async () => {
    const rt = s.cv.services.realtime;
    const good = new FakeSession();
    const bad = { deliver: () => { throw new Error('socket gone'); }, signal: () => {}, close: () => {} };
    const regs = [
      rt.sessions.register({ appId: app.id, username: 'gm2', resource: 'a' }, bad),
      rt.sessions.register({ appId: app.id, username: 'gm2', resource: 'b' }, good),
    ];
    try {
      await send('users', 'gm2', 'alice', 'still arrives');
      await eventually('the healthy session got it', () => good.received.length === 1);
    } finally {
      for (const r of regs) r.unregister();
    }
  });

  test('status follows the sessions; disconnect, deactivation and deletion close them with "removed"', async () => {
    const rt = s.cv.services.realtime;
    const status = async (u: string): Promise<unknown> => Object.values((await api.get(`/demo/chat/users/${u}/status`)).body.data as Record<string, string>)[0];
    assert.equal(await status('gm1'), 'offline');
    const t1 = new FakeSession();
    const t2 = new FakeSession();
    const r1 = rt.sessions.register({ appId: app.id, username: 'gm1', resource: 'webim' }, t1);
    rt.sessions.register({ appId: app.id, username: 'gm1', resource: 'mobile' }, t2);
    assert.equal(await status('GM1'), 'online');
    r1.unregister();
    assert.equal(await status('gm1'), 'online', 'one session is left');
    const d = await api.get('/demo/chat/users/gm1/disconnect');
    assert.equal(d.status, 200, d.text);
    assert.deepEqual([t1.closed, t2.closed], [[], ['removed']]);
    assert.equal(await status('gm1'), 'offline');

    const t3 = new FakeSession();
    rt.sessions.register({ appId: app.id, username: 'gm1', resource: 'webim' }, t3);
    assert.equal((await api.post('/demo/chat/users/gm1/deactivate')).status, 200);
    assert.deepEqual(t3.closed, ['removed']);
    assert.equal((await api.post('/demo/chat/users/gm1/activate')).status, 200);

    assert.equal((await api.post('/demo/chat/users', { username: 'gone', password: 'pw' })).status, 200);
    const t4 = new FakeSession();
    rt.sessions.register({ appId: app.id, username: 'gone', resource: 'webim' }, t4);
    assert.equal((await api.delete('/demo/chat/users/gone')).status, 200);
    assert.deepEqual(t4.closed, ['removed']);
  });

  test("a deleted user's inbox goes with it: a new user of the same name starts empty", async () => {
    assert.equal((await api.post('/demo/chat/users', { username: 'reborn', password: 'pw' })).status, 200);
    await send('users', 'reborn', 'alice', 'for the first one');
    assert.equal(await s.cv.services.realtime.delivery.count(app.id, 'reborn'), 1);
    assert.equal((await api.delete('/demo/chat/users/reborn')).status, 200);
    assert.equal((await api.post('/demo/chat/users', { username: 'Reborn', password: 'pw' })).status, 200);
    assert.equal(await s.cv.services.realtime.delivery.count(app.id, 'reborn'), 0);
    assert.deepEqual((await s.cv.services.realtime.delivery.inbox(app.id, 'reborn', 0n, 10)).messages, []);
  });
});
