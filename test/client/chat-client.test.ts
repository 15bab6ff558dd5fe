import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { ChatClient, ChatError, type ChatMessage, type ConnectionState, type Receipt, type WebSocketConstructor } from 'chatvault/client';
import { Api, demoToken, req, startTestServer, type TestServer } from '../helpers.js';

let s: TestServer;
let api: Api;
let wsUrl: string;
const clients: ChatClient[] = [];

before(async () => {
  s = await startTestServer();
  wsUrl = `ws://127.0.0.1:${s.cv.port}/ws`;
  api = new Api(s.url, await demoToken(s));
  for (const username of ['alice', 'bob', 'carol', 'dave', 'erin']) {
    const r = await api.post('/demo/chat/users', { username, password: `${username}-pw` });
    assert.equal(r.status, 200, r.text);
  }
});
after(async () => {
  for (const c of clients) c.close();
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

/** `ws` that remembers its sockets, so a test can cut them like a network would. */
function killableWs(): { WS: WebSocketConstructor; sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  class Killable extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { WS: Killable, sockets };
}

function client(opts: Partial<ConstructorParameters<typeof ChatClient>[0]> = {}): ChatClient {
  const c = new ChatClient({ url: wsUrl, WebSocket, reconnect: { minDelayMs: 20, maxDelayMs: 200 }, ...opts });
  clients.push(c);
  return c;
}

async function userToken(user: string): Promise<string> {
  const r = await req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'password', username: user, password: `${user}-pw` });
  assert.equal(r.status, 200, r.text);
  return r.body.access_token as string;
}

/** Collects a client's messages; `until(n)` waits for n of them. */
function inbox(c: ChatClient): { messages: ChatMessage[]; seqs: (string | null)[]; until(n: number, timeoutMs?: number): Promise<ChatMessage[]> } {
  const messages: ChatMessage[] = [];
  const seqs: (string | null)[] = [];
  c.on('message', (m, { seq }) => {
    messages.push(m);
    seqs.push(seq);
  });
  return {
    messages, seqs,
    async until(n, timeoutMs = 15000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < n) {
        if (Date.now() > deadline) throw new Error(`${messages.length} of ${n} messages arrived`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return messages;
    },
  };
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const texts = (ms: ChatMessage[]): string[] => ms.map((m) => String(m.payload.bodies[0]!.msg));

/** Erin (on a socket a test can cut) and Carol logged in; `base`: Carol's messages before the test's. */
async function erinToCarol() {
  const { WS, sockets } = killableWs();
  const erin = client({ WebSocket: WS });
  const carol = client();
  const got = inbox(carol);
  await erin.login({ appkey: 'demo#chat', username: 'erin', password: 'erin-pw' });
  await carol.login({ appkey: 'demo#chat', username: 'carol', password: 'carol-pw' });
  await new Promise((r) => setTimeout(r, 100));
  return { erin, sockets, carol, got, base: got.messages.length };
}

describe('ChatClient against a real server', () => {
  test('two users chat: send resolves on the ack, the peer gets the message, receipts come back', async () => {
    const alice = client();
    const bob = client();
    const states: ConnectionState[] = [];
    alice.on('state', (st) => states.push(st));
    const receipts: Receipt[] = [];
    alice.on('receipt', (r) => receipts.push(r));
    const got = inbox(bob);
    const back = inbox(alice);
    await alice.login({ token: await userToken('alice') });
    await bob.login({ appkey: 'demo#chat', username: 'bob', password: 'bob-pw' });
    assert.deepEqual(states, ['connecting', 'online']);

    const ack = await alice.sendText('bob', 'hi bob');
    assert.match(ack.msg_id, /^\d+$/);
    assert.equal(typeof ack.timestamp, 'number');
    const [m] = await got.until(1);
    assert.equal(m!.msg_id, ack.msg_id);
    assert.equal(m!.from, 'alice');
    assert.equal(m!.chat_type, 'chat');
    assert.equal(bob.position, got.seqs[0]);
    await waitFor(() => receipts.some((r) => r.receipt === 'delivered'), 'the delivered receipt');
    bob.markRead(ack.msg_id);
    await waitFor(() => receipts.some((r) => r.receipt === 'read'), 'the read receipt');
    assert.deepEqual(receipts, [{ receipt: 'delivered', msg_id: ack.msg_id, from: 'bob' }, { receipt: 'read', msg_id: ack.msg_id, from: 'bob' }]);

    const reply = await bob.send({ target: 'alice', msg: { type: 'txt', msg: 'hi alice' }, ext: { mood: 'good' } });
    const [r] = await back.until(1);
    assert.equal(r!.msg_id, reply.msg_id);
    assert.deepEqual(r!.payload.ext, { mood: 'good' });
    alice.close();
    bob.close();
    assert.equal(alice.state, 'closed');
  });

  test('a resend with the same cid stores one message and resolves with the same msg_id', async () => {
    const alice = client();
    const carol = client();
    const got = inbox(carol);
    await alice.login({ appkey: 'demo#chat', username: 'alice', password: 'alice-pw' });
    await carol.login({ appkey: 'demo#chat', username: 'carol', password: 'carol-pw' });
    const a1 = await alice.send({ cid: 'order-42', target: 'carol', msg: { type: 'txt', msg: 'once only' } });
    const a2 = await alice.send({ cid: 'order-42', target: 'carol', msg: { type: 'txt', msg: 'once only' } });
    assert.equal(a2.msg_id, a1.msg_id);
    await got.until(1);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(texts(got.messages), ['once only']);
    const refused = await alice.send({ target: 'carol', msg: { type: 'txt' } }).catch((e: unknown) => e);
    assert.ok(refused instanceof ChatError);
    assert.equal(refused.code, 'illegal_argument');
    assert.equal(refused.status, 400);
    alice.close();
    carol.close();
  });

  test('resume after the socket is cut mid-stream: every message exactly once, in order', async () => {
    const { WS, sockets } = killableWs();
    const dave = client({ WebSocket: WS });
    const got = inbox(dave);
    await dave.login({ appkey: 'demo#chat', username: 'dave', password: 'dave-pw' });
    const N = 300;
    const sending = (async () => {
      for (let i = 0; i < N; i++) {
        const r = await api.post('/demo/chat/messages', { target_type: 'users', target: ['dave'], from: 'erin', msg: { type: 'txt', msg: `n${i}` } });
        assert.equal(r.status, 200, r.text);
      }
    })();
    let cuts = 0;
    while (got.messages.length < N && cuts < 6) {
      await new Promise((r) => setTimeout(r, 60));
      if (dave.state !== 'online') continue;
      // Like a network failure: no close handshake, the client learns by the socket dying.
      sockets.at(-1)!.terminate();
      cuts++;
    }
    await sending;
    await got.until(N, 30000);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(cuts >= 3, `the stream was cut ${cuts} times`);
    assert.equal(sockets.length, cuts + 1, 'the client reconnected after every cut');
    assert.deepEqual(texts(got.messages), Array.from({ length: N }, (_, i) => `n${i}`));
    const seqs = got.seqs.map((q) => BigInt(q!));
    assert.ok(seqs.every((q, i) => i === 0 || q > seqs[i - 1]!), 'strictly increasing seqs');
    assert.equal(dave.position, got.seqs.at(-1));
    dave.close();
  });

  test('sends made while offline are queued, flushed in order on reconnect, each stored once', async () => {
    const { erin, sockets, carol, got, base } = await erinToCarol();
    sockets.at(-1)!.terminate();
    await waitFor(() => erin.state === 'offline', 'offline');
    const acks = await Promise.all(Array.from({ length: 20 }, (_, i) => erin.sendText('carol', `q${i}`)));
    assert.equal(new Set(acks.map((a) => a.msg_id)).size, 20);
    const all = await got.until(base + 20);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(texts(all.slice(base)), Array.from({ length: 20 }, (_, i) => `q${i}`));
    assert.deepEqual(all.slice(base).map((m) => m.msg_id), acks.map((a) => a.msg_id));
    erin.close();
    carol.close();
  });

  test('bursts past the server\'s 256-frame limit (online and queued offline) go out in a window: all stored once, in order, never closed', { timeout: 60_000 }, async () => {
    const { erin, sockets, carol, got, base } = await erinToCarol();
    const closes: (number | undefined)[] = [];
    erin.on('state', (st, detail) => {
      if (st === 'offline') closes.push(detail.code);
    });
    const online = await Promise.all(Array.from({ length: 600 }, (_, i) => erin.sendText('carol', `burst${i}`)));
    assert.deepEqual(closes, [], 'the connection stayed up through the burst');
    sockets.at(-1)!.terminate();
    await waitFor(() => erin.state === 'offline', 'offline');
    const queued = await Promise.all(Array.from({ length: 600 }, (_, i) => erin.sendText('carol', `queued${i}`)));
    assert.equal(closes.length, 1, `one close (the cut), not a 1008 loop: ${closes.join(',')}`);
    const all = await got.until(base + 1200, 30_000);
    await new Promise((r) => setTimeout(r, 200));
    const want = [...Array.from({ length: 600 }, (_, i) => `burst${i}`), ...Array.from({ length: 600 }, (_, i) => `queued${i}`)];
    assert.deepEqual(texts(all.slice(base)), want);
    assert.deepEqual(all.slice(base).map((m) => m.msg_id), [...online, ...queued].map((a) => a.msg_id));
    erin.close();
    carol.close();
  });

  test('a refused login rejects and stops; a client resumes from a position kept by an earlier run', async () => {
    const wrong = client();
    const states: ConnectionState[] = [];
    wrong.on('state', (st) => states.push(st));
    const e = await wrong.login({ appkey: 'demo#chat', username: 'bob', password: 'nope' }).catch((x: unknown) => x);
    assert.ok(e instanceof ChatError);
    assert.equal(e.code, 'unauthorized');
    assert.equal(e.message, 'wrong user name or password');
    assert.equal(wrong.state, 'closed');
    await assert.rejects(wrong.sendText('alice', 'x'), /closed/);

    const first = client();
    const got1 = inbox(first);
    await first.login({ appkey: 'demo#chat', username: 'bob', password: 'bob-pw' });
    await new Promise((r) => setTimeout(r, 200));
    first.close();
    const kept = first.position!;
    for (let i = 0; i < 3; i++) await api.post('/demo/chat/messages', { target_type: 'users', target: ['bob'], from: 'erin', msg: { type: 'txt', msg: `later ${i}` } });
    const second = client({ position: kept });
    const got2 = inbox(second);
    let synced = false;
    second.on('synced', () => (synced = true));
    await second.login({ token: await userToken('bob') });
    await waitFor(() => synced, 'synced');
    assert.deepEqual(texts(got2.messages), ['later 0', 'later 1', 'later 2']);
    assert.ok(got1.messages.every((m) => !got2.messages.some((n) => n.msg_id === m.msg_id)));
    second.close();
  });
});
