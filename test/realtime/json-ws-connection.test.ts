import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { JsonConnection, type JsonSocket } from '../../src/realtime/json-ws/json-connection.js';
import { Api, demoToken, startTestServer, type TestServer } from '../helpers.js';

// The connection's timers and caps, with a socket of our own (short timeouts, no network).

let s: TestServer;

before(async () => {
  s = await startTestServer();
  const api = new Api(s.url, await demoToken(s));
  assert.equal((await api.post('/demo/chat/users', { username: 'tim', password: 'tim-pw' })).status, 200);
});
after(async () => {
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

class FakeSocket implements JsonSocket {
  readonly sent: Record<string, unknown>[] = [];
  closed: { code: number; reason: string } | null = null;
  bufferedAmount = 0;
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
}

const onError = (): void => {};

test('no auth within the timeout: closed with 4002', async () => {
  const sock = new FakeSocket();
  new JsonConnection(s.cv.services, sock, { onError, authTimeoutMs: 50 });
  await until(() => sock.closed !== null, 'closed');
  assert.equal(sock.closed!.code, 4002);
});

test('silent for three heartbeats: closed with 4000; pings keep a connection open', async () => {
  // A token login: a password check can take longer than these short heartbeats on a busy machine.
  const t = await new Api(s.url).post('/demo/chat/token', { grant_type: 'password', username: 'tim', password: 'tim-pw' });
  assert.equal(t.status, 200, t.text);
  const sock = new FakeSocket();
  const conn = new JsonConnection(s.cv.services, sock, { onError, heartbeatMs: 40 });
  conn.receive(JSON.stringify({ op: 'auth', token: t.body.access_token as string }));
  await until(() => sock.sent.some((f) => f.op === 'welcome'), 'welcome');
  assert.equal(sock.sent.find((f) => f.op === 'welcome')!.heartbeat, 40);
  for (let i = 0; i < 8; i++) {
    conn.receive(JSON.stringify({ op: 'ping' }));
    await new Promise((r) => setTimeout(r, 30));
  }
  assert.equal(sock.closed, null, 'pinging keeps it open');
  await until(() => sock.closed !== null, 'closed when silent');
  assert.equal(sock.closed!.code, 4000);
  assert.equal(s.cv.services.realtime.sessions.isOnline((await s.cv.services.store.getApp('demo', 'chat'))!.id, 'tim'), false);
});

test('more frames in flight than the cap: closed with 1008', async () => {
  const sock = new FakeSocket();
  const conn = new JsonConnection(s.cv.services, sock, { onError });
  conn.receive(JSON.stringify({ op: 'auth', appkey: 'demo#chat', username: 'tim', password: 'tim-pw' }));
  // Synchronously, while the login still awaits the store: none of them can be handled yet.
  for (let i = 0; i < 300; i++) conn.receive(JSON.stringify({ op: 'ping', id: i }));
  assert.equal(sock.closed?.code, 1008);
});

test('a slow reader: pushes wait in the store while output is buffered, and all come once it drains', async () => {
  const api = new Api(s.url, await demoToken(s));
  const sock = new FakeSocket();
  const conn = new JsonConnection(s.cv.services, sock, { onError });
  conn.receive(JSON.stringify({ op: 'auth', appkey: 'demo#chat', username: 'tim', password: 'tim-pw', resource: 'slow' }));
  await until(() => sock.sent.some((f) => f.op === 'synced'), 'synced');
  sock.bufferedAmount = 2 * 1024 * 1024;
  for (let i = 0; i < 5; i++) {
    const r = await api.post('/demo/chat/messages', { target_type: 'users', target: ['tim'], from: 'x', msg: { type: 'txt', msg: `s${i}` } });
    assert.equal(r.status, 200, r.text);
  }
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(sock.sent.filter((f) => f.op === 'message').length, 0, 'nothing pushed into a full buffer');
  assert.equal(sock.closed, null);
  sock.bufferedAmount = 0;
  await until(() => sock.sent.filter((f) => f.op === 'message').length === 5, 'all five pushed');
  const msgs = sock.sent.filter((f) => f.op === 'message') as { message: { payload: { bodies: { msg: string }[] } } }[];
  assert.deepEqual(msgs.map((m) => m.message.payload.bodies[0]!.msg), ['s0', 's1', 's2', 's3', 's4']);
  conn.socketClosed();
});

test('a live message is pushed at once only when nothing of the inbox lies between the client\'s position and it', async () => {
  // A user with an empty inbox: the client starts at the high-water mark.
  const api = new Api(s.url, await demoToken(s));
  assert.equal((await api.post('/demo/chat/users', { username: 'tam', password: 'tam-pw' })).status, 200);
  const sock = new FakeSocket();
  const conn = new JsonConnection(s.cv.services, sock, { onError });
  conn.receive(JSON.stringify({ op: 'auth', appkey: 'demo#chat', username: 'tam', password: 'tam-pw' }));
  await until(() => sock.sent.some((f) => f.op === 'synced'), 'synced');
  const at = BigInt(sock.sent.find((f) => f.op === 'welcome')!.after as string);
  const live = (seq: bigint) => ({ appId: 1, msgId: `live${seq}`, seq: seq.toString(), from: 'x', to: 'tam', chatType: 'chat' as const, timestamp: 1, record: `{"msg_id":"live${seq}"}` });
  const pushed = () => sock.sent.filter((f) => f.op === 'message').map((f) => f.seq);
  // Frames of a turn leave together when it ends.
  const turn = () => new Promise((r) => setImmediate(r));
  // The inbox row before it is the client's position: pushed in the same turn, no store read.
  conn.deliver(live(at + 1n), at);
  await turn();
  assert.deepEqual(pushed(), [(at + 1n).toString()]);
  // Pushed already: not again.
  conn.deliver(live(at + 1n), at);
  await turn();
  assert.deepEqual(pushed(), [(at + 1n).toString()]);
  // A row the client has not had lies between: left to the walk, which pushes from the store in
  // order (and finds neither of these made-up messages there).
  conn.deliver(live(at + 3n), at + 2n);
  await turn();
  assert.deepEqual(pushed(), [(at + 1n).toString()]);
  // Unknown (another node's message): the walk too.
  conn.deliver(live(at + 4n));
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(pushed(), [(at + 1n).toString()]);
  conn.socketClosed();
});
