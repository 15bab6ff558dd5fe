import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BusLogger, Delivery, Json } from '../../src/bus/bus.js';
import { LocalBus } from '../../src/bus/local-bus.js';

/** A logger that keeps what it was told. */
function recorder(): BusLogger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (c, e) => warnings.push(`${c}: ${e?.message ?? ''}`), info: () => {} };
}

/** Resolves on the next turn of the event loop after everything queued now. */
const turn = () => new Promise((r) => setImmediate(r));

test('a publish reaches the subscribers of its channel, with this node as origin, and no other channel', async () => {
  const bus = new LocalBus({ nodeId: 'node-a' });
  const got: [Json, Delivery][] = [];
  const other: Json[] = [];
  await bus.subscribe('cache', (m, d) => void got.push([m, d]));
  await bus.subscribe('cache-other', (m) => void other.push(m));
  await bus.publish('cache', { cache: 'apps', n: 1 });
  await turn();
  assert.deepEqual(got, [[{ cache: 'apps', n: 1 }, { channel: 'cache', origin: 'node-a' }]]);
  assert.deepEqual(other, []);
  assert.equal(bus.nodeId, 'node-a');
  await bus.close();
});

test('delivery is asynchronous: never inside publish(), even for a handler that publishes again', async () => {
  const bus = new LocalBus();
  const log: string[] = [];
  await bus.subscribe('ping', (m) => {
    log.push(`got ${String(m)}`);
    if (m === 1) {
      void bus.publish('ping', 2);
      log.push('published 2');
    }
  });
  const p = bus.publish('ping', 1);
  log.push('published 1');
  await p;
  log.push('publish resolved');
  await turn();
  await turn();
  assert.deepEqual(log, ['published 1', 'publish resolved', 'got 1', 'published 2', 'got 2']);
  await bus.close();
});

test('subscribers get a JSON copy: later changes by the publisher do not show, JSON losses do', async () => {
  const bus = new LocalBus();
  let got: Json = null;
  await bus.subscribe('c', (m) => void (got = m));
  const sent = { list: [1, 2], nested: { a: 'x' }, bad: Number.NaN };
  await bus.publish('c', sent);
  sent.list.push(3);
  sent.nested.a = 'changed';
  await turn();
  assert.deepEqual(got, { list: [1, 2], nested: { a: 'x' }, bad: null });
  await bus.close();
});

test('order per publisher is kept, across channels too', async () => {
  const bus = new LocalBus();
  const got: string[] = [];
  await bus.subscribe('a', (m) => void got.push(`a${String(m)}`));
  await bus.subscribe('b', (m) => void got.push(`b${String(m)}`));
  const sent: string[] = [];
  for (let i = 0; i < 50; i++) {
    const ch = i % 3 === 0 ? 'b' : 'a';
    sent.push(`${ch}${i}`);
    void bus.publish(ch, i);
  }
  await turn();
  assert.deepEqual(got, sent);
  await bus.close();
});

test('unsubscribe stops one handler; the same function subscribed twice is called twice until unsubscribed once', async () => {
  const bus = new LocalBus();
  const calls: string[] = [];
  const h = (m: Json) => void calls.push(`h${String(m)}`);
  const u1 = await bus.subscribe('c', h);
  await bus.subscribe('c', h);
  const u3 = await bus.subscribe('c', (m) => void calls.push(`k${String(m)}`));
  await bus.publish('c', 1);
  await turn();
  assert.deepEqual(calls.sort(), ['h1', 'h1', 'k1']);
  calls.length = 0;
  await u1();
  await u1(); // a second call does nothing (it must not remove the other subscription of h)
  await u3();
  await bus.publish('c', 2);
  await turn();
  assert.deepEqual(calls, ['h2']);
  await bus.close();
});

test('a handler unsubscribed by an earlier handler of the same message is not called; queued messages to an unsubscribed handler are dropped', async () => {
  const bus = new LocalBus();
  const calls: string[] = [];
  let unsubSecond: () => Promise<void> = async () => {};
  await bus.subscribe('c', () => {
    calls.push('first');
    void unsubSecond();
  });
  unsubSecond = await bus.subscribe('c', () => void calls.push('second'));
  await bus.publish('c', 1);
  await turn();
  assert.deepEqual(calls, ['first']);

  const late: Json[] = [];
  const u = await bus.subscribe('d', (m) => void late.push(m));
  await bus.publish('d', 1);
  await u(); // before the delivery turn
  await turn();
  assert.deepEqual(late, []);
  await bus.close();
});

test('a handler that throws or rejects is logged and breaks nothing: the other handlers and later messages still arrive', async () => {
  const log = recorder();
  const bus = new LocalBus({ log });
  const got: Json[] = [];
  await bus.subscribe('c', () => {
    throw new Error('sync boom');
  });
  await bus.subscribe('c', async () => {
    throw new Error('async boom');
  });
  await bus.subscribe('c', (m) => void got.push(m));
  await bus.publish('c', 1);
  await bus.publish('c', 2);
  await turn();
  await turn();
  assert.deepEqual(got, [1, 2]);
  assert.equal(log.warnings.filter((w) => w === 'a handler of channel c failed: sync boom').length, 2);
  assert.equal(log.warnings.filter((w) => w === 'a handler of channel c failed: async boom').length, 2);
  assert.equal(log.warnings.length, 4);
  await bus.close();
});

test('close drops queued messages, and publish and subscribe afterwards reject; close is idempotent', async () => {
  const bus = new LocalBus();
  const got: Json[] = [];
  await bus.subscribe('c', (m) => void got.push(m));
  await bus.publish('c', 1);
  await bus.close();
  await turn();
  assert.deepEqual(got, []);
  await assert.rejects(bus.publish('c', 2), /the bus is closed/);
  await assert.rejects(bus.subscribe('c', () => {}), /the bus is closed/);
  await bus.close();
});

test('bad channel names and values JSON cannot carry are refused at publish', async () => {
  const bus = new LocalBus();
  await assert.rejects(bus.publish('', 1), /not a bus channel name/);
  await assert.rejects(bus.publish('a\nb', 1), /not a bus channel name/);
  await assert.rejects(bus.subscribe('', () => {}), /not a bus channel name/);
  const cyclic: { [k: string]: Json } = {};
  cyclic.self = cyclic;
  await assert.rejects(bus.publish('c', cyclic), TypeError);
  await assert.rejects(bus.publish('c', undefined as unknown as Json), /must be a JSON value/);
  await bus.close();
});

test('two local buses in one process are two separate nodes: nothing crosses', async () => {
  const a = new LocalBus();
  const b = new LocalBus();
  assert.notEqual(a.nodeId, b.nodeId);
  const got: Json[] = [];
  await b.subscribe('c', (m) => void got.push(m));
  await a.publish('c', 'from a');
  await b.publish('c', 'from b');
  await turn();
  assert.deepEqual(got, ['from b']);
  await a.close();
  await b.close();
});
