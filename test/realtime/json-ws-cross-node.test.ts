import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { ChatClient, type ChatMessage, type Receipt, type WebSocketConstructor } from 'chatvault/client';
import { redisSkip, REDIS_TEST_URL } from '../bus/redis-test-env.js';
import { Api, demoToken, startTestServer, tempDir, type TestServer } from '../helpers.js';
import { PG_SCHEMA_PREFIX, PG_TEST_URL, pgSkip, withSchema } from '../store-under-test.js';

// Two nodes on one PostgreSQL schema and one Redis: JSON-protocol users on different nodes chat,
// and a reader resuming on one node while both nodes write gets every message once, in order.

const skip = (await pgSkip()) || (await redisSkip());
const ENV = {
  DATABASE_URL: withSchema(PG_TEST_URL, `${PG_SCHEMA_PREFIX}jx_${randomBytes(3).toString('hex')}`),
  REDIS_URL: REDIS_TEST_URL, DATABASE_POOL_MAX: '6',
};

let a: TestServer;
let b: TestServer;
let apiA: Api;
let apiB: Api;
const clients: ChatClient[] = [];

function client(node: TestServer, WS: WebSocketConstructor = WebSocket): ChatClient {
  const c = new ChatClient({ url: `ws://127.0.0.1:${node.cv.port}/ws`, WebSocket: WS, reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
  clients.push(c);
  return c;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the JSON protocol across two nodes', { skip }, () => {
  before(async () => {
    a = await startTestServer(ENV, tempDir('cv-jx-a-'));
    b = await startTestServer(ENV, tempDir('cv-jx-b-'));
    apiA = new Api(a.url, await demoToken(a));
    apiB = new Api(b.url, apiA.token);
    for (const u of ['amy', 'bo', 'cy', 'di']) assert.equal((await apiA.post('/demo/chat/users', { username: u, password: `${u}-pw` })).status, 200);
  });
  after(async () => {
    for (const c of clients) c.close();
    await Promise.all([a?.close(), b?.close()]);
  });

  test('users on different nodes chat; receipts cross too', async () => {
    const amy = client(a);
    const bo = client(b);
    const boGot: ChatMessage[] = [];
    bo.on('message', (m) => boGot.push(m));
    const amyGot: ChatMessage[] = [];
    amy.on('message', (m) => amyGot.push(m));
    const receipts: Receipt[] = [];
    amy.on('receipt', (r) => receipts.push(r));
    await amy.login({ appkey: 'demo#chat', username: 'amy', password: 'amy-pw' });
    await bo.login({ appkey: 'demo#chat', username: 'bo', password: 'bo-pw' });
    const ack = await amy.sendText('bo', 'from node A');
    await waitFor(() => boGot.some((m) => m.msg_id === ack.msg_id), 'the message on node B');
    await waitFor(() => receipts.some((r) => r.msg_id === ack.msg_id && r.receipt === 'delivered'), 'the receipt on node A');
    const back = await bo.sendText('amy', 'from node B');
    await waitFor(() => amyGot.some((m) => m.msg_id === back.msg_id), 'the reply on node A');
    amy.close();
    bo.close();
  });

  test('writers on both nodes, a reader on one with its socket cut: every message once, in seq order', async () => {
    const sockets: WebSocket[] = [];
    class Killable extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        sockets.push(this);
      }
    }
    const di = client(b, Killable);
    const got: ChatMessage[] = [];
    const seqs: bigint[] = [];
    di.on('message', (m, { seq }) => {
      got.push(m);
      seqs.push(BigInt(seq!));
    });
    await di.login({ appkey: 'demo#chat', username: 'di', password: 'di-pw' });
    const PER_LANE = 40;
    // Four lanes per node, each sending in order: concurrent commits on PostgreSQL.
    const lanes = [apiA, apiB].flatMap((api, n) => Array.from({ length: 4 }, (_, l) => (async () => {
      for (let i = 0; i < PER_LANE; i++) {
        const r = await api.post('/demo/chat/messages', { target_type: 'users', target: ['di'], from: 'cy', msg: { type: 'txt', msg: `${n}-${l}-${i}` } });
        assert.equal(r.status, 200, r.text);
      }
    })()));
    const total = 8 * PER_LANE;
    let cuts = 0;
    const cutting = (async () => {
      while (got.length < total && cuts < 5) {
        await new Promise((r) => setTimeout(r, 80));
        if (di.state !== 'online') continue;
        sockets.at(-1)!.terminate();
        cuts++;
      }
    })();
    await Promise.all(lanes);
    await cutting;
    await waitFor(() => got.length >= total, `${total} messages`, 40000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got.length, total, 'no message twice');
    assert.equal(new Set(got.map((m) => m.msg_id)).size, total);
    assert.ok(seqs.every((q, i) => i === 0 || q > seqs[i - 1]!), 'strictly increasing seqs');
    // Each lane's messages in the order it sent them.
    for (const lane of ['0-0', '0-3', '1-0', '1-3']) {
      const mine = got.map((m) => String(m.payload.bodies[0]!.msg)).filter((t) => t.startsWith(`${lane}-`));
      assert.deepEqual(mine, Array.from({ length: PER_LANE }, (_, i) => `${lane}-${i}`));
    }
    assert.ok(cuts >= 2, `cut ${cuts} times`);
    di.close();
  });
});
