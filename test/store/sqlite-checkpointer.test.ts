import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { buildMessage } from '../../src/domain/messages.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { tempDir } from '../helpers.js';

/*
 * The writer thread leaves checkpoints to a thread of its own: committed pages reach the
 * database file while the writer goes on committing, far below the writer's own fallback
 * threshold (40,000 pages of log).
 */

const T = Date.UTC(2026, 6, 1);

test('committed pages are copied into the database file by the checkpointer thread', async () => {
  const file = path.join(tempDir('cv-ckpt-'), 'chatvault.db');
  const store = new SqliteStore(file);
  await store.open();
  const before = fs.statSync(file).size;
  try {
    for (let b = 0; b < 10; b++) {
      const rows = Array.from({ length: 200 }, (_, i) => {
        const n = b * 200 + i;
        return { ...buildMessage(1, { from: `u${n % 50}`, to: `u${(n + 7) % 50}`, chatType: 'chat', bodies: [{ type: 'txt', msg: `hello ${n}` }], timestamp: T + n, msgId: `88000${n}` }), recipients: [`u${(n + 7) % 50}`] };
      });
      await store.insertMessages(rows);
    }
    // A few checkpoint periods (a second each).
    const deadline = Date.now() + 5000;
    while (fs.statSync(file).size <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(fs.statSync(file).size > before, `the database file grew from ${before} bytes: pages were copied out of the log`);
    assert.equal((await store.messagesAfter(1, 0n, 5000)).length, 2000);
  } finally {
    await store.close();
  }
  // Closed cleanly (both threads): reopened with everything there.
  const again = new SqliteStore(file);
  await again.open();
  try {
    assert.equal((await again.messagesAfter(1, 0n, 5000)).length, 2000);
  } finally {
    await again.close();
  }
});

/** The checkpoint sequence number in the log's header: it goes up each time the log starts over. */
function walRestarts(file: string): number {
  const fd = fs.openSync(`${file}-wal`, 'r');
  try {
    const h = Buffer.alloc(16);
    fs.readSync(fd, h, 0, 16, 0);
    return h.readUInt32BE(12);
  } finally {
    fs.closeSync(fd);
  }
}

// At the rates a test makes, a passive copy alone may reach the end of the log now and then; at a
// server's (docs/realtime.md, Speed) only the writer's copy of the tail does. Either way the log
// must keep starting over while commits stream in.
test('under a steady stream of commits the log still starts over', async () => {
  const file = path.join(tempDir('cv-ckpt-'), 'chatvault.db');
  const store = new SqliteStore(file);
  await store.open();
  try {
    await store.insertMessages([{ ...buildMessage(1, { from: 'a', to: 'b', chatType: 'chat', bodies: [{ type: 'txt', msg: 'first' }], timestamp: T, msgId: '89000' }), recipients: ['b'] }]);
    const first = walRestarts(file);
    // Small commits back to back, as a busy server makes them (several sends always waiting, so
    // the writer never pauses for a passive copy to catch up), for a few checkpoint periods.
    let n = 1;
    const deadline = Date.now() + 6000;
    const batch = () =>
      Array.from({ length: 5 }, () => {
        n++;
        return { ...buildMessage(1, { from: `u${n % 50}`, to: `u${(n + 7) % 50}`, chatType: 'chat', bodies: [{ type: 'txt', msg: `m ${n}` }], timestamp: T + n, msgId: `89000${n}` }), recipients: [`u${(n + 7) % 50}`] };
      });
    const lane = async (): Promise<void> => {
      while (walRestarts(file) === first && Date.now() < deadline) await store.insertMessages(batch());
    };
    await Promise.all(Array.from({ length: 8 }, lane));
    assert.ok(walRestarts(file) > first, `the log started over while ${n} messages were being written`);
    assert.equal((await store.messagesAfter(1, 0n, 100_000)).length, n);
  } finally {
    await store.close();
  }
});
