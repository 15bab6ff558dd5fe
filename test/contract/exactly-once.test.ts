import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { buildMessage } from '../../src/domain/messages.js';
import type { AppRow, MessageQuery, Store } from '../../src/store/store.js';
import { tempDir } from '../helpers.js';
import { openTestStore, slowCommits, TEST_STORE } from '../store-under-test.js';

/**
 * The high-water mark under concurrent writers: eight store instances (eight nodes, each with its
 * own connections) write at once, some with deliberately slow transactions, while a consumer
 * tails the store from watermark to watermark. Every message must reach the consumer exactly once.
 */

const WRITERS = 8;
const BATCHES = 40;

test(`a tailing consumer sees every message of 8 concurrent writers exactly once (${TEST_STORE})`, async () => {
  const dir = tempDir('cv-exactly-once-');
  const reader = await openTestStore(dir);
  const writers: Store[] = [];
  try {
    const org = await reader.createOrg({ uuid: '00000000-0000-1000-8000-0000000e0001', name: 'eo', clientId: 'YXA6eo', clientSecret: 'YXA6eo', created: 1 });
    const app: AppRow = await reader.createApp({ uuid: '00000000-0000-1000-8000-0000000e0002', orgId: org.id, name: 'eo', clientId: 'YXA6eoapp', clientSecret: 'YXA6eo', openRegistration: false, created: 1 });
    for (let w = 0; w < WRITERS; w++) {
      const s = await openTestStore(dir);
      // Every third writer holds its transactions open for a while after taking its seqs: a
      // reader must not move its watermark past them.
      if (w % 3 === 0) slowCommits(s, () => 5 + Math.floor(Math.random() * 40));
      writers.push(s);
    }

    const written = new Set<string>();
    let writing = true;
    const T0 = Date.UTC(2026, 4, 1);
    const work = writers.map(async (s, w) => {
      for (let b = 0; b < BATCHES; b++) {
        const n = 1 + ((w + b) % 5);
        const batch = Array.from({ length: n }, (_v, i) => {
          const id = `${w}-${b}-${i}`;
          return buildMessage(app.id, { from: `w${w}`, to: 'sink', chatType: 'chat', bodies: [{ type: 'txt', msg: id }], timestamp: T0 + b * 1000 + i, msgId: id });
        });
        await s.insertMessages(batch);
        for (const m of batch) written.add(m.msgId);
        if (b % 7 === 0) await sleep(1);
      }
    });
    const allWritten = Promise.all(work).finally(() => (writing = false));

    const seen = new Map<string, number>();
    let mark = 0n;
    let passes = 0;
    const tail = async () => {
      const hwm = await reader.highWaterMark();
      assert.ok(hwm >= mark, `the watermark never goes back (${mark} -> ${hwm})`);
      let q: MessageQuery = { appId: app.id, where: null, orderBy: [], near: null, after: null, minSeq: mark, maxSeq: hwm, limit: 97 };
      for (;;) {
        const page = await reader.findMessagesSpliced(q, '\n');
        if (page.count > 0) {
          for (const line of page.body.toString('utf8').split('\n')) {
            const id = (JSON.parse(line) as { msg_id: string }).msg_id;
            seen.set(id, (seen.get(id) ?? 0) + 1);
          }
        }
        if (!page.more) break;
        q = { ...q, after: page.last! };
      }
      mark = hwm;
      passes++;
    };
    while (writing) {
      await tail();
      await sleep(2);
    }
    await allWritten;
    await tail();

    let expected = 0;
    for (let w = 0; w < WRITERS; w++) for (let b = 0; b < BATCHES; b++) expected += 1 + ((w + b) % 5);
    assert.equal(written.size, expected);
    const repeated = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
    const missed = [...written].filter((id) => !seen.has(id));
    const unknown = [...seen.keys()].filter((id) => !written.has(id));
    assert.deepEqual(repeated, [], 'no message is seen twice');
    assert.deepEqual(missed, [], 'no message is missed');
    assert.deepEqual(unknown, []);
    assert.ok(passes > 3, `the consumer tailed while writers wrote (${passes} passes)`);
  } finally {
    await Promise.all(writers.map((s) => s.close()));
    await reader.close();
  }
});
