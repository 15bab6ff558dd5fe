import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { ChatClient, type ChatMessage, type ConnectionState, type SendAck } from 'chatvault/client';
import { Api, freePort, req, spawnServer, stopChild, tempDir, type ChildServer } from '../helpers.js';

// A real `chatvault serve` process killed with SIGKILL in the middle of a conversation and
// started again on the same data folder and port: the clients must recover by themselves, no
// acknowledged message may be lost, and none may arrive twice.

const dataDir = tempDir('cv-kill-');
const children: ChildServer[] = [];
const clients: ChatClient[] = [];

after(async () => {
  for (const c of clients) c.close();
  for (const c of children) await stopChild(c, 'SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function waitFor(cond: () => boolean, what: string, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('kill -9 and restart during a conversation: nothing acknowledged is lost, nothing repeats, clients recover', { timeout: 120000 }, async () => {
  const port = await freePort();
  const first = await spawnServer(dataDir, {}, port);
  children.push(first);
  await waitFor(() => first.output().includes('client_secret'), 'the first-start credentials');
  const id = /client_id\s+(\S+)/.exec(first.output())![1]!;
  const secret = /client_secret\s+(\S+)/.exec(first.output())![1]!;
  const t = await req(`${first.url}/demo/chat/token`, 'POST', { grant_type: 'client_credentials', client_id: id, client_secret: secret });
  const api = new Api(first.url, String(t.body.access_token));
  for (const username of ['alice', 'bob']) assert.equal((await api.post('/demo/chat/users', { username, password: `${username}-pw` })).status, 200);

  const url = `ws://127.0.0.1:${port}/ws`;
  const make = (): ChatClient => {
    const c = new ChatClient({ url, WebSocket, reconnect: { minDelayMs: 50, maxDelayMs: 400 } });
    clients.push(c);
    return c;
  };
  const alice = make();
  const bob = make();
  const bobGot: ChatMessage[] = [];
  bob.on('message', (m) => bobGot.push(m));
  const aliceGot: ChatMessage[] = [];
  alice.on('message', (m) => aliceGot.push(m));
  const bobStates: ConnectionState[] = [];
  bob.on('state', (st) => bobStates.push(st));
  await alice.login({ appkey: 'demo#chat', username: 'alice', password: 'alice-pw' });
  await bob.login({ appkey: 'demo#chat', username: 'bob', password: 'bob-pw' });

  const N = 150;
  const acks: SendAck[] = [];
  let killed = false;
  // Alice talks steadily, several sends in flight at a time; the server dies under her.
  const talking = (async () => {
    for (let i = 0; i < N; i += 5) {
      const batch = await Promise.all(Array.from({ length: 5 }, (_, k) => alice.sendText('bob', `m${i + k}`)));
      acks.push(...batch);
    }
  })();
  await waitFor(() => bobGot.length >= 40, 'the conversation under way');
  await stopChild(first, 'SIGKILL');
  killed = true;
  const ackedBeforeKill = acks.length;
  // Sends made while the server is down wait in the client.
  const whileDown = bob.sendText('alice', 'are you still there?');
  await new Promise((r) => setTimeout(r, 300));
  const second = await spawnServer(dataDir, {}, port);
  children.push(second);

  await talking;
  const reply = await whileDown;
  assert.ok(killed);
  assert.ok(ackedBeforeKill < N, 'the kill came mid-conversation');
  await waitFor(() => bobGot.length >= N, `bob's ${N} messages`);
  await waitFor(() => aliceGot.some((m) => m.msg_id === reply.msg_id), 'the reply sent while the server was down');
  await new Promise((r) => setTimeout(r, 300));

  // Every acknowledged message, exactly once, in the order sent.
  assert.equal(acks.length, N);
  assert.deepEqual(bobGot.map((m) => m.msg_id), acks.map((a) => a.msg_id));
  assert.deepEqual(bobGot.map((m) => m.payload.bodies[0]!.msg), Array.from({ length: N }, (_, i) => `m${i}`));
  // Stored once each, the ones acknowledged before the kill included.
  const api2 = new Api(second.url, api.token);
  const r = await api2.get(`/demo/chat/chatmessages?ql=${encodeURIComponent("select * where from = 'alice'")}&limit=1000`);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual((r.body.entities as { msg_id: string }[]).map((e) => e.msg_id).sort(), acks.map((a) => a.msg_id).sort());
  // The clients noticed the loss and came back by themselves.
  assert.ok(bobStates.includes('offline'), JSON.stringify(bobStates));
  assert.equal(bob.state, 'online');
  assert.equal(alice.state, 'online');
});
