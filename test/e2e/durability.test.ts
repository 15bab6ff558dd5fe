import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { ADMIN, Api, req, spawnServer, stopChild, tempDir, type ChildServer } from '../helpers.js';
import { openTestStore } from '../store-under-test.js';

// DESIGN.md: a send is acknowledged only once it is durable, so kill -9 after a 200 loses nothing.

const CLIENTS = 16;
const MAX_PER_CLIENT = 400;
const KILL_AFTER_ACKS = 600;
const DEADLINE_MS = 60000; // bounds the loops on a slow machine; never asserted

const dataDir = tempDir('cv-durability-');
const children: ChildServer[] = [];

after(async () => {
  for (const c of children) await stopChild(c, 'SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function adminApi(c: ChildServer): Promise<Api> {
  const r = await req(`${c.url}/management/token`, 'POST', { grant_type: 'password', ...ADMIN });
  assert.equal(r.status, 200, r.text);
  return new Api(c.url, String(r.body.access_token));
}

interface Entity {
  msg_id: string;
  to: string;
  payload: { bodies: { msg: string }[] };
}

async function readAll(): Promise<Entity[]> {
  const store = await openTestStore(dataDir);
  try {
    const app = await store.getApp('demo', 'chat');
    assert.ok(app);
    const out: Entity[] = [];
    let at = 0n;
    for (;;) {
      const rows = await store.messagesAfter(app.id, at, 500);
      if (rows.length === 0) return out;
      for (const r of rows) out.push(JSON.parse(String(r.entity)) as Entity);
      at = rows[rows.length - 1]!.seq;
    }
  } finally {
    await store.close();
  }
}

test('kill -9 in the middle of 16 concurrent senders loses no acknowledged message', { timeout: 180000 }, async (t) => {
  const server = await spawnServer(dataDir);
  children.push(server);
  const api = await adminApi(server);

  const attempted = new Map<string, string>(); // text → target
  const acked = new Map<string, string>(); // msg_id → text
  let failures = 0;
  let killed = false;
  const deadline = Date.now() + DEADLINE_MS;
  const kill = () => {
    if (killed) return;
    killed = true;
    server.proc.kill('SIGKILL');
  };

  const client = async (n: number) => {
    for (let i = 0; i < MAX_PER_CLIENT && Date.now() < deadline; i++) {
      const text = `c${n}-m${i}`;
      const target = `user${n}`;
      attempted.set(text, target);
      try {
        const r = await api.post('/demo/chat/messages?useMsgId=true', { target_type: 'users', target: [target], msg: { type: 'txt', msg: text } });
        if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
        acked.set(String(r.body.data[target]), text);
        if (acked.size >= KILL_AFTER_ACKS) kill();
      } catch (e) {
        failures++;
        // Before the kill nothing may fail; after it every client stops at its first failure.
        if (!killed) throw e;
        return;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: CLIENTS }, (_, n) => client(n)));
  kill(); // in case every client finished before the threshold
  await stopChild(server, 'SIGKILL');
  for (const r of results) assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
  assert.ok(acked.size >= KILL_AFTER_ACKS, `only ${acked.size} acknowledged before the kill`);
  assert.equal(server.proc.signalCode, 'SIGKILL');
  assert.ok(failures > 0 || acked.size === attempted.size);

  // The store recovers: a new server starts on the same folder and takes new messages.
  const again = await spawnServer(dataDir);
  children.push(again);
  const api2 = await adminApi(again);
  const r = await api2.post('/demo/chat/messages?useMsgId=true', { target_type: 'users', target: ['late'], msg: { type: 'txt', msg: 'after the crash' } });
  assert.equal(r.status, 200, r.text);
  const lateId = String(r.body.data.late);
  assert.ok(!acked.has(lateId), 'a msg_id handed out before the crash is not reused');
  await stopChild(again, 'SIGTERM');

  const stored = await readAll();
  const byId = new Map(stored.map((e) => [e.msg_id, e]));
  assert.equal(byId.size, stored.length, 'no msg_id stored twice');
  const texts = stored.map((e) => e.payload.bodies[0]!.msg);
  assert.equal(new Set(texts).size, texts.length, 'no message stored twice');
  for (const [id, text] of acked) {
    const e = byId.get(id);
    assert.ok(e, `acknowledged message ${id} (${text}) is missing after kill -9`);
    assert.equal(e.payload.bodies[0]!.msg, text);
    assert.equal(e.to, attempted.get(text));
  }
  // Whatever else was stored was really sent (in flight at the kill, never acknowledged).
  for (const e of stored) {
    const text = e.payload.bodies[0]!.msg;
    assert.ok(attempted.has(text) || text === 'after the crash', `unexpected stored message ${text}`);
  }
  assert.ok(byId.has(lateId));
  t.diagnostic(`attempted ${attempted.size}, acknowledged ${acked.size}, stored ${stored.length - 1}, failed at the kill ${failures}`);
  assert.ok(stored.length <= attempted.size + 1);
});
