import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RealtimeMessage } from '../../src/realtime/realtime-message.js';
import { DeliveryGate, REPLAY_PAGE, type GateIo } from '../../src/realtime/xmpp-ws/delivery-gate.js';

function msg(seq: number): RealtimeMessage {
  return { appId: 1, msgId: `m${seq}`, seq: String(seq), from: 'a', to: 'b', chatType: 'chat', timestamp: seq, record: '{}' };
}

/** A gate over a scripted store: every `load` waits until the test hands it a page. */
function scripted(over: Partial<GateIo> = {}) {
  const pushed: string[] = [];
  const loads: { after: bigint; resolve: (page: RealtimeMessage[]) => void }[] = [];
  let overflowed = 0;
  const io: GateIo = {
    load: (after) => new Promise((resolve) => loads.push({ after, resolve })),
    push: (m, delayed) => pushed.push(`${m.msgId}${delayed ? '+delay' : ''}`),
    congested: () => false,
    drained: async () => true,
    overflow: () => overflowed++,
    ...over,
  };
  const gate = new DeliveryGate(io);
  const nextLoad = async () => {
    for (let i = 0; i < 100 && loads.length === 0; i++) await new Promise((r) => setImmediate(r));
    const l = loads.shift();
    assert.ok(l, 'the gate asked for a page');
    return l;
  };
  return { gate, pushed, nextLoad, overflows: () => overflowed };
}

describe('DeliveryGate', () => {
  test('nothing passes while gated', () => {
    const { gate, pushed } = scripted();
    gate.deliver(msg(1));
    assert.deepEqual(pushed, []);
    assert.equal(gate.open, false);
  });

  test('live messages during the replay are held, then sent unless the replay had them; late echoes are dropped', async () => {
    const { gate, pushed, nextLoad } = scripted();
    const done = gate.openGate();
    gate.deliver(msg(5)); // also in the page below
    gate.deliver(msg(9)); // stored after the page was read
    assert.deepEqual(pushed, []);
    (await nextLoad()).resolve([msg(1), msg(5)]);
    await done;
    assert.deepEqual(pushed, ['m1+delay', 'm5+delay', 'm9']);
    // Another node's copy of a replayed message arriving later.
    gate.deliver(msg(1));
    gate.deliver(msg(10));
    assert.deepEqual(pushed, ['m1+delay', 'm5+delay', 'm9', 'm10']);
  });

  test('pages follow the seq of the last message until a short page', async () => {
    const { gate, pushed, nextLoad } = scripted();
    const done = gate.openGate();
    const first = await nextLoad();
    assert.equal(first.after, 0n);
    first.resolve(Array.from({ length: REPLAY_PAGE }, (_, i) => msg(i + 1)));
    const second = await nextLoad();
    assert.equal(second.after, BigInt(REPLAY_PAGE));
    second.resolve([msg(REPLAY_PAGE + 7)]);
    await done;
    assert.equal(pushed.length, REPLAY_PAGE + 1);
    assert.equal(pushed.at(-1), `m${REPLAY_PAGE + 7}+delay`);
  });

  test('a congested socket is waited for; a client that never drains stops the replay', async () => {
    let waits = 0;
    const { gate, pushed, nextLoad } = scripted({ congested: () => true, drained: async () => ++waits < 2 });
    const done = gate.openGate();
    (await nextLoad()).resolve([msg(1), msg(2), msg(3)]);
    await done;
    assert.deepEqual(pushed, ['m1+delay']);
    gate.deliver(msg(4));
    assert.deepEqual(pushed, ['m1+delay'], 'not live after an abandoned replay');
  });

  test('closing during the replay discards it; opening again replays afresh', async () => {
    const { gate, pushed, nextLoad } = scripted();
    const done = gate.openGate();
    gate.deliver(msg(3));
    gate.close();
    (await nextLoad()).resolve([msg(1)]);
    await done;
    gate.deliver(msg(4));
    assert.deepEqual(pushed, []);
    const again = gate.openGate();
    (await nextLoad()).resolve([msg(1), msg(3)]);
    await again;
    assert.deepEqual(pushed, ['m1+delay', 'm3+delay']);
  });

  test('too many live messages behind a replay overflow', async () => {
    const { gate, nextLoad, overflows } = scripted();
    const done = gate.openGate();
    for (let i = 0; i < 6000; i++) gate.deliver(msg(1000 + i));
    assert.ok(overflows() > 0);
    (await nextLoad()).resolve([]);
    await done;
  });
});
