import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { BusLogger, Delivery, Json } from '../../src/bus/bus.js';
import { RedisBus, RedisUnavailableError } from '../../src/bus/redis-bus.js';
import { freePort } from '../helpers.js';
import { eventually, rawRedis, REDIS_REQUIRED, REDIS_TEST_URL, redisProblem, redisSkip, uniqueNamespace } from './redis-test-env.js';

const skip = await redisSkip();

function recorder(): BusLogger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (c, e) => warnings.push(`${c}: ${e?.message ?? ''}`), info: () => {} };
}

/** Messages received by one handler, with their origin. */
function inbox() {
  const got: { m: Json; origin: string }[] = [];
  const handler = (m: Json, d: Delivery) => void got.push({ m, origin: d.origin });
  return { got, handler, values: () => got.map((g) => g.m) };
}

test('Redis for the bus tests is reachable', { skip }, async () => {
  const problem = await redisProblem();
  const hint = REDIS_REQUIRED ? '; CHATVAULT_REQUIRE_SERVICES=1 requires it' : '';
  assert.equal(problem, null, `Redis at ${REDIS_TEST_URL} is unreachable${hint}`);
});

describe('RedisBus: two buses are two nodes', { skip }, () => {
  const ns = uniqueNamespace('nodes');
  let a: RedisBus;
  let b: RedisBus;
  const logA = recorder();
  before(async () => {
    a = await RedisBus.connect({ url: REDIS_TEST_URL, namespace: ns, nodeId: 'node-a', log: logA });
    b = await RedisBus.connect({ url: REDIS_TEST_URL, namespace: ns, nodeId: 'node-b' });
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  test('a publish reaches both nodes, the publishing one included, in both directions, with its origin', async () => {
    const ia = inbox();
    const ib = inbox();
    const ua = await a.subscribe('both', ia.handler);
    const ub = await b.subscribe('both', ib.handler);
    await a.publish('both', { hello: 'from a', n: [1, 2] });
    await b.publish('both', 'from b');
    await eventually('both messages on both nodes', () => ia.got.length === 2 && ib.got.length === 2);
    const expected = [{ m: { hello: 'from a', n: [1, 2] }, origin: 'node-a' }, { m: 'from b', origin: 'node-b' }];
    assert.deepEqual(ia.got, expected);
    assert.deepEqual(ib.got, expected);
    await ua();
    await ub();
  });

  test('messages of one publisher arrive in order, across channels too', async () => {
    const got: string[] = [];
    const u1 = await b.subscribe('order-1', (m) => void got.push(`1:${String(m)}`));
    const u2 = await b.subscribe('order-2', (m) => void got.push(`2:${String(m)}`));
    const sent: string[] = [];
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      const ch = i % 5 === 0 ? 2 : 1;
      sent.push(`${ch}:${i}`);
      sends.push(a.publish(`order-${ch}`, i));
    }
    await Promise.all(sends);
    await eventually('200 messages', () => got.length === 200);
    assert.deepEqual(got, sent);
    await u1();
    await u2();
  });

  test('unsubscribe stops that handler only; the last one unsubscribes the Redis channel', async () => {
    const raw = rawRedis();
    await raw.connect();
    const key = `chatvault:${ns}:unsub`;
    const numsub = async () => Number((await raw.pubsub('NUMSUB', key))[1]);
    const h1 = inbox();
    const h2 = inbox();
    const u1 = await b.subscribe('unsub', h1.handler);
    const u2 = await b.subscribe('unsub', h2.handler);
    assert.equal(await numsub(), 1, 'one SUBSCRIBE per channel and node, whatever the number of handlers');
    await u1();
    await a.publish('unsub', 1);
    // h2 receiving the message means h1 would have had it by now (same dispatch).
    await eventually('h2 receives', () => h2.got.length === 1);
    assert.deepEqual(h1.got, []);
    await u2();
    await u2();
    assert.equal(await numsub(), 0);
    // Subscribing again after the channel was unsubscribed works.
    const h3 = inbox();
    const u3 = await b.subscribe('unsub', h3.handler);
    await a.publish('unsub', 2);
    await eventually('h3 receives', () => h3.got.length === 1);
    assert.deepEqual(h2.values(), [1]);
    await u3();
    raw.disconnect();
  });

  test('subscribe right after an unsubscribe of the same channel ends up subscribed', async () => {
    const h = inbox();
    const u1 = await b.subscribe('flip', () => {});
    const [, u2] = await Promise.all([u1(), b.subscribe('flip', h.handler)]);
    await a.publish('flip', 'still here');
    await eventually('message after the flip', () => h.got.length === 1);
    await u2();
  });

  test('a handler that throws or rejects is logged; the other handlers and later messages still arrive', async () => {
    const h = inbox();
    const u1 = await a.subscribe('boom', () => {
      throw new Error('sync boom');
    });
    const u2 = await a.subscribe('boom', async () => {
      throw new Error('async boom');
    });
    const u3 = await a.subscribe('boom', h.handler);
    await b.publish('boom', 1);
    await b.publish('boom', 2);
    await eventually('both messages', () => h.got.length === 2);
    await eventually('four warnings', () => logA.warnings.length >= 4);
    assert.equal(logA.warnings.filter((w) => w.startsWith('a handler of channel boom failed: sync boom')).length, 2);
    assert.equal(logA.warnings.filter((w) => w.startsWith('a handler of channel boom failed: async boom')).length, 2);
    await u1();
    await u2();
    await u3();
  });

  test('a malformed message on a chatvault channel is logged and ignored', async () => {
    const raw = rawRedis();
    await raw.connect();
    const h = inbox();
    const u = await a.subscribe('foreign', h.handler);
    const before = logA.warnings.length;
    await raw.publish(`chatvault:${ns}:foreign`, 'not json');
    await raw.publish(`chatvault:${ns}:foreign`, JSON.stringify({ v: 99, o: 'x', m: 1 }));
    await b.publish('foreign', 'fine');
    await eventually('the good message', () => h.got.length === 1);
    assert.deepEqual(h.values(), ['fine']);
    assert.equal(logA.warnings.length - before, 2);
    assert.match(logA.warnings.at(-1)!, /malformed message on channel foreign/);
    await u();
    raw.disconnect();
  });
});

describe('RedisBus: isolation and closing', { skip }, () => {
  test('namespaces isolate deployments on one Redis', async () => {
    const a = await RedisBus.connect({ url: REDIS_TEST_URL, namespace: uniqueNamespace('iso1') });
    const c = await RedisBus.connect({ url: REDIS_TEST_URL, namespace: uniqueNamespace('iso2') });
    try {
      const h = inbox();
      await c.subscribe('shared-name', h.handler);
      await a.publish('shared-name', 'for deployment 1');
      // Redis hands a PUBLISH to every subscriber before answering it, so had c been reached,
      // that message would arrive before c's own marker.
      await c.publish('shared-name', 'marker');
      await eventually('the marker', () => h.got.length >= 1);
      assert.deepEqual(h.values(), ['marker']);
    } finally {
      await a.close();
      await c.close();
    }
  });

  test('close sends what was published before it, quits both connections, and makes the bus refuse further use', async () => {
    const ns = uniqueNamespace('close');
    const nodeId = `closing-${ns}`;
    const a = await RedisBus.connect({ url: REDIS_TEST_URL, namespace: ns, nodeId });
    const b = await RedisBus.connect({ url: REDIS_TEST_URL, namespace: ns });
    const raw = rawRedis();
    await raw.connect();
    try {
      const h = inbox();
      await b.subscribe('c', h.handler);
      await a.subscribe('c', () => {});
      const clients = async () => String(await raw.client('LIST')).split('\n').filter((l) => l.includes(`name=chatvault-${nodeId} `)).length;
      assert.equal(await clients(), 2, 'one publisher and one subscriber connection');
      // Not awaited: a CLI changes something and closes at once; the notice must still go out.
      void a.publish('c', 'last words');
      await a.close();
      await eventually('the message published before close', () => h.got.length === 1);
      assert.deepEqual(h.values(), ['last words']);
      await eventually('both connections gone', async () => (await clients()) === 0);
      await assert.rejects(a.publish('c', 1), /the bus is closed/);
      await assert.rejects(a.subscribe('c', () => {}), /the bus is closed/);
      await a.close();
    } finally {
      await a.close();
      await b.close();
      raw.disconnect();
    }
  });
});

describe('RedisBus: connection loss', { skip }, () => {
  test('a killed connection is reported, re-established by ioredis, and its subscriptions restored', { timeout: 20_000 }, async () => {
    const ns = uniqueNamespace('kill');
    const log = recorder();
    const infos: string[] = [];
    log.info = (c) => void infos.push(c);
    const a = await RedisBus.connect({ url: REDIS_TEST_URL, namespace: ns });
    const b = await RedisBus.connect({ url: REDIS_TEST_URL, namespace: ns, nodeId: `victim-${ns}`, log });
    const raw = rawRedis();
    await raw.connect();
    try {
      const h = inbox();
      await b.subscribe('c', h.handler);
      const list = String(await raw.client('LIST')).split('\n').filter((l) => l.includes(`name=chatvault-victim-${ns} `));
      assert.equal(list.length, 2);
      for (const line of list) await raw.client('KILL', 'ID', /\bid=(\d+)/.exec(line)![1]!);
      await eventually('both losses reported', () => log.warnings.filter((w) => /Redis (publisher|subscriber) connection (closed|failed)/.test(w)).length === 2);
      await eventually('both connections back', () => infos.filter((i) => /connection is back/.test(i)).length === 2);
      // What was published during the outage is lost (at-most-once); once back, messages flow again.
      let n = 0;
      await eventually('a message after the reconnect', async () => {
        await a.publish('c', n++);
        return h.got.length > 0;
      });
      await b.publish('c', 'own');
      await eventually('the publisher connection works again', () => h.values().includes('own'));
    } finally {
      await a.close();
      await b.close();
      raw.disconnect();
    }
  });
});

describe('RedisBus: Redis unreachable at start', () => {
  test('a closed port fails the start at once, naming REDIS_URL and hiding the password', { timeout: 10_000 }, async () => {
    const port = await freePort();
    const url = `redis://:s3cret-pw@127.0.0.1:${port}`;
    await assert.rejects(RedisBus.connect({ url, namespace: 'x' }), (e: Error) => {
      assert.ok(e instanceof RedisUnavailableError);
      assert.match(e.message, new RegExp(`^cannot reach Redis at redis://127\\.0\\.0\\.1:${port} \\(REDIS_URL\\): .*ECONNREFUSED`));
      assert.doesNotMatch(e.message, /s3cret/);
      return true;
    });
  });

  test('a server that accepts but never answers fails the start after the timeout instead of hanging', { timeout: 10_000 }, async () => {
    const sockets: net.Socket[] = [];
    let closed = 0;
    const silent = net.createServer((s) => {
      sockets.push(s);
      s.on('close', () => closed++);
      s.resume(); // read (and drop) what the client sends, so that its hang-up is seen
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      await assert.rejects(
        RedisBus.connect({ url: `redis://127.0.0.1:${port}`, namespace: 'x', connectTimeoutMs: 300 }),
        (e: Error) => e instanceof RedisUnavailableError && /\(REDIS_URL\): no answer within 300 ms$/.test(e.message),
      );
      // The bus let go of its connections: nothing keeps retrying in the background.
      await eventually('the connections to close', () => sockets.length > 0 && closed === sockets.length);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  test('a bad namespace is refused before connecting', async () => {
    await assert.rejects(RedisBus.connect({ url: REDIS_TEST_URL, namespace: 'has space' }), /not a bus namespace/);
  });
});
