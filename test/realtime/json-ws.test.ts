import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Api, demoToken, rawHttp, req, startTestServer, type TestServer } from '../helpers.js';
import { RawJsonClient, type Frame } from './raw-json-client.js';

let s: TestServer;
let api: Api;
let port: number;

before(async () => {
  s = await startTestServer();
  port = s.cv.port;
  api = new Api(s.url, await demoToken(s));
  for (const username of ['alice', 'bob', 'carol', 'dave']) {
    const r = await api.post('/demo/chat/users', { username, password: `${username}-pw` });
    assert.equal(r.status, 200, r.text);
  }
});
after(async () => {
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

async function userToken(user: string): Promise<string> {
  const r = await req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'password', username: user, password: `${user}-pw` });
  assert.equal(r.status, 200, r.text);
  return r.body.access_token as string;
}

const byPassword = (user: string): Frame => ({ appkey: 'demo#chat', username: user, password: `${user}-pw` });

/** The `chatmessages` entity of a msg_id, as REST exports it. */
async function exported(msgId: string): Promise<Frame> {
  const r = await api.get(`/demo/chat/chatmessages?ql=${encodeURIComponent(`select * where msg_id = '${msgId}'`)}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.entities.length, 1, r.text);
  return r.body.entities[0];
}

const text = (m: Frame): string => m.message.payload.bodies[0].msg;

describe('JSON protocol over WebSocket', () => {
  test('token and password logins; a send is acked with the stored msg_id and pushed as the exported entity', async () => {
    const { c: alice, welcome } = await RawJsonClient.login(port, { token: await userToken('alice'), resource: 'phone' });
    assert.equal(alice.ws.protocol, 'chatvault.v1');
    assert.equal(welcome.user, 'alice');
    assert.equal(welcome.appkey, 'demo#chat');
    assert.equal(welcome.resource, 'phone');
    assert.match(welcome.after, /^\d+$/);
    await alice.expect((f) => f.op === 'synced');
    const { c: bob } = await RawJsonClient.login(port, byPassword('bob'));
    await bob.expect((f) => f.op === 'synced');

    alice.send({ op: 'send', cid: 'c-1', target: 'bob', msg: { type: 'txt', msg: 'hello bob' }, ext: { k: 'v' } });
    const ack = await alice.expect((f) => f.op === 'ack');
    assert.equal(ack.cid, 'c-1');
    assert.match(ack.msg_id, /^\d+$/);
    assert.equal(typeof ack.timestamp, 'number');
    const [push] = await bob.messages(1);
    assert.match(push!.seq, /^\d+$/);
    assert.equal(push!.message.msg_id, ack.msg_id);
    assert.equal(push!.message.timestamp, ack.timestamp);
    // The very entity the export returns, sender from the login (not from the frame).
    assert.deepEqual(push!.message, await exported(ack.msg_id));
    assert.equal(push!.message.from, 'alice');
    assert.deepEqual(push!.message.payload, { bodies: [{ type: 'txt', msg: 'hello bob' }], ext: { k: 'v' } });
    alice.ws.close();
    bob.ws.close();
  });

  test('the same client id twice stores one message and acks the first msg_id', async () => {
    const { c: alice } = await RawJsonClient.login(port, byPassword('alice'));
    const before = (await s.cv.services.store.countMessages((await s.cv.services.store.getApp('demo', 'chat'))!.id));
    alice.send({ op: 'send', cid: 'same-cid', target: 'carol', msg: { type: 'txt', msg: 'once' } });
    const a1 = await alice.expect((f) => f.op === 'ack');
    alice.send({ op: 'send', cid: 'same-cid', target: 'carol', msg: { type: 'txt', msg: 'once' } });
    const a2 = await alice.expect((f) => f.op === 'ack');
    assert.equal(a2.msg_id, a1.msg_id);
    assert.equal(a2.timestamp, a1.timestamp);
    const afterCount = await s.cv.services.store.countMessages((await s.cv.services.store.getApp('demo', 'chat'))!.id);
    assert.equal(afterCount, before + 1);
    alice.ws.close();
  });

  test('refused sends answer an error frame with the cid; the connection keeps serving', async () => {
    const { c: alice } = await RawJsonClient.login(port, byPassword('alice'));
    alice.send({ op: 'send', cid: 'bad-1', target: 'bob', msg: { type: 'txt' } });
    const e1 = await alice.expect((f) => f.op === 'error');
    assert.equal(e1.cid, 'bad-1');
    assert.equal(e1.code, 'illegal_argument');
    assert.equal(e1.status, 400);
    alice.send({ op: 'send', cid: 'bad-2', target_type: 'chatgroups', target: '999999', msg: { type: 'txt', msg: 'x' } });
    const e2 = await alice.expect((f) => f.op === 'error');
    assert.equal(e2.cid, 'bad-2');
    assert.equal(e2.status, 404);
    alice.send({ op: 'send', target: 'bob', msg: { type: 'txt', msg: 'no cid' } });
    assert.equal((await alice.expect((f) => f.op === 'error')).code, 'bad_field');
    alice.send({ op: 'send', cid: 'ok-1', target: 'bob', msg: { type: 'txt', msg: 'fine' } });
    assert.equal((await alice.expect((f) => f.op === 'ack')).cid, 'ok-1');
    alice.ws.close();
  });

  test('resume: a client that comes back with its position gets everything after it, once, in order', async () => {
    const { c: bob1 } = await RawJsonClient.login(port, byPassword('dave'));
    await bob1.expect((f) => f.op === 'synced');
    bob1.ws.close();
    await bob1.closed();
    const sent: string[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await api.post('/demo/chat/messages', { target_type: 'users', target: ['dave'], from: 'alice', msg: { type: 'txt', msg: `m${i}` } });
      assert.equal(r.status, 200, r.text);
      sent.push(`m${i}`);
    }
    // A new device (no position): from the oldest undelivered message.
    const { c: d1 } = await RawJsonClient.login(port, byPassword('dave'));
    const first = await d1.messages(12);
    assert.deepEqual(first.map(text), sent);
    const seqs = first.map((f) => BigInt(f.seq));
    assert.ok(seqs.every((q, i) => i === 0 || q > seqs[i - 1]!), 'pushes in seq order');
    await d1.expect((f) => f.op === 'synced');
    d1.ws.close();
    await d1.closed();
    // Back with the position of the 5th: exactly the 6th to the 12th.
    const { c: d2, welcome } = await RawJsonClient.login(port, { ...byPassword('dave'), after: first[4]!.seq });
    assert.equal(welcome.after, first[4]!.seq);
    const rest = await d2.messages(7);
    assert.deepEqual(rest.map(text), sent.slice(5));
    const synced = await d2.expect((f) => f.op === 'synced');
    assert.equal(synced.seq, first[11]!.seq);
    assert.deepEqual(await d2.quiet(), []);
    // Live after the walk, continuing the same order.
    await api.post('/demo/chat/messages', { target_type: 'users', target: ['dave'], from: 'alice', msg: { type: 'txt', msg: 'live' } });
    const [live] = await d2.messages(1);
    assert.equal(text(live!), 'live');
    assert.ok(BigInt(live!.seq) > BigInt(first[11]!.seq));
    d2.ws.close();
  });

  test('delivered and read receipts reach the sender; delivered clears the offline count', async () => {
    const { c: alice } = await RawJsonClient.login(port, byPassword('alice'));
    await alice.expect((f) => f.op === 'synced');
    alice.send({ op: 'send', cid: 'r-1', target: 'carol', msg: { type: 'txt', msg: 'are you there' } });
    const ack = await alice.expect((f) => f.op === 'ack');
    let r = await api.get('/demo/chat/users/carol/offline_msg_count');
    assert.ok(Number(r.body.data.carol) >= 1, r.text);
    const { c: carol } = await RawJsonClient.login(port, byPassword('carol'));
    const pushes = await carol.messages(1);
    await carol.expect((f) => f.op === 'synced');
    const all = [pushes[0]!, ...carol.frames.filter((f) => f.op === 'message')];
    carol.send({ op: 'delivered', msg_ids: all.map((f) => f.message.msg_id).concat(ack.msg_id) });
    const d = await alice.expect((f) => f.op === 'receipt' && f.msg_id === ack.msg_id);
    assert.deepEqual(d, { op: 'receipt', receipt: 'delivered', msg_id: ack.msg_id, from: 'carol' });
    carol.send({ op: 'read', msg_id: ack.msg_id });
    assert.deepEqual(await alice.expect((f) => f.op === 'receipt'), { op: 'receipt', receipt: 'read', msg_id: ack.msg_id, from: 'carol' });
    for (let i = 0; i < 50; i++) {
      r = await api.get('/demo/chat/users/carol/offline_msg_count');
      if (Number(r.body.data.carol) === 0) break;
      await new Promise((ok) => setTimeout(ok, 20));
    }
    assert.equal(Number(r.body.data.carol), 0, r.text);
    // A repeated delivered sends no second receipt.
    alice.frames.length = 0;
    carol.send({ op: 'delivered', msg_id: ack.msg_id });
    carol.send({ op: 'ping', id: 7 });
    assert.deepEqual(await carol.expect((f) => f.op === 'pong'), { op: 'pong', id: 7 });
    await new Promise((ok) => setTimeout(ok, 100));
    assert.equal(alice.frames.filter((f) => f.op === 'receipt').length, 0);
    alice.ws.close();
    carol.ws.close();
  });

  test('presence goes to contacts on login, on request and when the last session ends', async () => {
    let r = await api.post('/demo/chat/users/alice/contacts/users/bob');
    assert.equal(r.status, 200, r.text);
    const { c: alice } = await RawJsonClient.login(port, byPassword('alice'));
    const { c: bob } = await RawJsonClient.login(port, byPassword('bob'));
    assert.deepEqual(await alice.expect((f) => f.op === 'presence'), { op: 'presence', from: 'bob', presence: 'available' });
    bob.send({ op: 'presence', presence: 'available', status: 'in a meeting' });
    assert.deepEqual(await alice.expect((f) => f.op === 'presence'), { op: 'presence', from: 'bob', presence: 'available', status: 'in a meeting' });
    bob.ws.close();
    assert.deepEqual(await alice.expect((f) => f.op === 'presence'), { op: 'presence', from: 'bob', presence: 'unavailable' });
    r = await api.delete('/demo/chat/users/alice/contacts/users/bob');
    assert.equal(r.status, 200, r.text);
    alice.ws.close();
  });

  test('groups: members get the push with a seq; chat rooms: present members get it live, without one; non-members are refused', async () => {
    let r = await api.post('/demo/chat/chatgroups', { groupname: 'g', desc: 'd', owner: 'alice', public: true, maxusers: 10, members: ['bob'] });
    assert.equal(r.status, 200, r.text);
    const groupId = String(r.body.data.groupid);
    r = await api.post('/demo/chat/chatrooms', { name: 'r', description: 'd', owner: 'alice', members: ['bob'] });
    assert.equal(r.status, 200, r.text);
    const roomId = String(r.body.data.id);
    const { c: alice } = await RawJsonClient.login(port, byPassword('alice'));
    const { c: bob } = await RawJsonClient.login(port, byPassword('bob'));
    await bob.expect((f) => f.op === 'synced');
    bob.frames.length = 0;
    alice.send({ op: 'send', cid: 'g-1', target_type: 'chatgroups', target: groupId, msg: { type: 'txt', msg: 'to the group' } });
    const gAck = await alice.expect((f) => f.op === 'ack');
    const [g] = await bob.messages(1);
    assert.equal(g!.message.msg_id, gAck.msg_id);
    assert.equal(g!.message.chat_type, 'groupchat');
    assert.match(g!.seq, /^\d+$/);
    alice.send({ op: 'send', cid: 'room-1', target_type: 'chatrooms', target: roomId, msg: { type: 'txt', msg: 'to the room' } });
    const rAck = await alice.expect((f) => f.op === 'ack');
    const [room] = await bob.messages(1);
    assert.equal(room!.message.msg_id, rAck.msg_id);
    assert.equal(room!.message.chat_type, 'chatroom');
    assert.equal(room!.seq, undefined);
    const { c: carol } = await RawJsonClient.login(port, byPassword('carol'));
    carol.send({ op: 'send', cid: 'x-1', target_type: 'chatgroups', target: groupId, msg: { type: 'txt', msg: 'intruder' } });
    const refused = await carol.expect((f) => f.op === 'error');
    assert.equal(refused.status, 403);
    assert.equal(refused.cid, 'x-1');
    for (const c of [alice, bob, carol]) c.ws.close();
  });

  test('bad frames: an error frame or a close code, and the server keeps serving', async () => {
    // Logged in: not JSON, not an object, unknown op, bad fields: error frames, connection kept.
    const { c } = await RawJsonClient.login(port, byPassword('alice'));
    c.send('this is not json');
    assert.equal((await c.expect((f) => f.op === 'error')).code, 'bad_frame');
    c.send('[1,2]');
    assert.equal((await c.expect((f) => f.op === 'error')).code, 'bad_frame');
    c.send({ op: 'explode' });
    const unknown = await c.expect((f) => f.op === 'error');
    assert.equal(unknown.code, 'unknown_op');
    assert.match(unknown.message, /explode/);
    c.send({ op: 'delivered', msg_ids: ['x'] });
    assert.equal((await c.expect((f) => f.op === 'error')).code, 'bad_field');
    c.send({ op: 'auth', token: 'again' });
    assert.equal((await c.expect((f) => f.op === 'error')).code, 'bad_frame');
    c.send({ op: 'ping' });
    assert.deepEqual(await c.expect((f) => f.op === 'pong'), { op: 'pong' });
    // Oversized: ws closes with 1009 (message too big).
    c.send(JSON.stringify({ op: 'ping', pad: 'x'.repeat(70 * 1024) }));
    assert.equal(await c.closed(), 1009);

    // Unauthenticated: a send before auth is refused and closed with 4001.
    const u = await RawJsonClient.connect(port);
    u.send({ op: 'send', cid: '1', target: 'bob', msg: { type: 'txt', msg: 'x' } });
    assert.equal((await u.expect((f) => f.op === 'error')).code, 'unauthorized');
    assert.equal(await u.closed(), 4001);
    // Not JSON before auth: error, then 4001.
    const nj = await RawJsonClient.connect(port);
    nj.send('{{{');
    assert.equal((await nj.expect((f) => f.op === 'error')).code, 'bad_frame');
    assert.equal(await nj.closed(), 4001);
    // Bad credentials.
    for (const auth of [{ token: 'YWMt-not-a-token' }, { appkey: 'demo#chat', username: 'alice', password: 'wrong' }, { token: (await demoToken(s)) }]) {
      const b = await RawJsonClient.connect(port);
      b.send({ op: 'auth', ...auth });
      assert.equal((await b.expect((f) => f.op === 'error')).code, 'unauthorized');
      assert.equal(await b.closed(), 4001);
    }
    // A position that is not a seq: refused before the login.
    const badAfter = await RawJsonClient.connect(port);
    badAfter.send({ op: 'auth', appkey: 'demo#chat', username: 'alice', password: 'alice-pw', after: 12 });
    assert.equal((await badAfter.expect((f) => f.op === 'error')).code, 'bad_field');
    assert.equal(await badAfter.closed(), 4001);
    // A position beyond the store's end: nothing to push, then live.
    const { c: ahead, welcome } = await RawJsonClient.login(port, { appkey: 'demo#chat', username: 'alice', password: 'alice-pw', after: '9223372036854775807' });
    assert.equal(welcome.after, '9223372036854775807');
    assert.equal((await ahead.expect((f) => f.op === 'synced')).seq, '9223372036854775807');
    ahead.ws.close();
    // Binary frames are not the protocol.
    const bin = await RawJsonClient.login(port, byPassword('alice'));
    bin.c.ws.send(Buffer.from([1, 2, 3]));
    assert.equal(await bin.c.closed(), 1003);
    // No sub-protocol, or an unknown one: refused before the handshake.
    const plain = await rawHttp(port, `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`, 2000);
    assert.match(plain, /^HTTP\/1.1 400/);
    await assert.rejects(RawJsonClient.connect(port, 'chatvault.v0'));
    await assert.rejects(RawJsonClient.connect(port, 'chatvault.v1', '/other'));
    // Still serving.
    const { c: again } = await RawJsonClient.login(port, byPassword('bob'));
    again.send({ op: 'ping', id: 'still' });
    assert.deepEqual(await again.expect((f) => f.op === 'pong'), { op: 'pong', id: 'still' });
    assert.equal((await api.get('/demo/chat/users/bob')).status, 200);
    again.ws.close();
  });

  test('a second login with the same resource replaces the first (4003)', async () => {
    const { c: one } = await RawJsonClient.login(port, { ...byPassword('carol'), resource: 'tablet' });
    const { c: two } = await RawJsonClient.login(port, { ...byPassword('carol'), resource: 'tablet' });
    assert.equal(await one.closed(), 4003);
    two.send({ op: 'ping' });
    await two.expect((f) => f.op === 'pong');
    two.ws.close();
  });
});

test('the app disconnecting a user closes its JSON connections with 4004', async () => {
  const { c } = await RawJsonClient.login(port, byPassword('dave'));
  const r = await api.get('/demo/chat/users/dave/disconnect');
  assert.equal(r.status, 200, r.text);
  assert.equal(await c.closed(), 4004);
});
