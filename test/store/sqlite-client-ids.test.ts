import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { buildMessage } from '../../src/domain/messages.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { NewMessage } from '../../src/store/store.js';
import { tempDir } from '../helpers.js';
import { leftInLogs, logCounts } from './sqlite-log-helpers.js';

/*
 * SQLite keeps the client ids of the last moment in client_id_log (appended with their
 * messages) and moves them into client_ids about once a second. Wherever an id is — logged,
 * moved, or left in the log by a process that died — a repeat stores nothing.
 */

const T = Date.UTC(2026, 5, 1);
let n = 0;

function send(from: string, to: string, clientId: string): NewMessage {
  const i = n++;
  return { ...buildMessage(1, { from, to, chatType: 'chat', bodies: [{ type: 'txt', msg: `m${i}` }], timestamp: T + i, msgId: `77000${i}` }), recipients: [to.toLowerCase()], clientId };
}

const counts = (file: string) => logCounts(file, 'client_id_log', 'client_ids');

test('a repeated client id is refused while logged, after the move, and within one group commit', async () => {
  const file = path.join(tempDir('cv-cid-'), 'chatvault.db');
  const store = new SqliteStore(file);
  await store.open();
  try {
    await store.insertMessages([send('ann', 'bob', 'c1')]);
    assert.deepEqual(counts(file), { logged: 1, moved: 0 }, 'waits in the log');
    assert.equal((await store.clientSend(1, 'ann', 'c1')).size, 1, 'found in the log');
    await assert.rejects(store.insertMessages([send('ANN', 'Bob', 'c1')]), /used already/);

    // Two sends of one id in the same turn share a commit: one is stored.
    const both = await Promise.allSettled([store.insertMessages([send('ann', 'cat', 'c2')]), store.insertMessages([send('ann', 'cat', 'c2')])]);
    assert.deepEqual(both.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    // A send to two targets, one of them a repeat, is refused whole, and the new target's id
    // stays free for the next write of the same commit.
    const mixed = await Promise.allSettled([store.insertMessages([send('ann', 'eve', 'c1'), send('ann', 'bob', 'c1')]), store.insertMessages([send('ann', 'eve', 'c1')])]);
    assert.deepEqual(mixed.map((r) => r.status), ['rejected', 'fulfilled']);
    assert.deepEqual([...(await store.clientSend(1, 'ann', 'c1')).keys()].sort(), ['bob', 'eve']);

    // A second later the next commit moves the log into client_ids, in key order.
    await new Promise((r) => setTimeout(r, 1100));
    await store.insertMessages([send('dan', 'bob', 'c3')]);
    assert.deepEqual(counts(file), { logged: 0, moved: 4 });
    await assert.rejects(store.insertMessages([send('ann', 'bob', 'c1')]), /used already/);
    await assert.rejects(store.insertMessages([send('dan', 'bob', 'c3')]), /used already/);
    assert.deepEqual([...(await store.clientSend(1, 'ann', 'c2')).keys()], ['cat']);
    // Other targets and senders are free.
    await store.insertMessages([send('ann', 'dan', 'c1'), send('bob', 'ann', 'c1')]);
  } finally {
    await store.close();
  }
  assert.equal(counts(file).logged, 0, 'a clean close moves what waits');
});

test('ids a process left in the log when it died are moved when the store opens', async () => {
  const file = path.join(tempDir('cv-cid-'), 'chatvault.db');
  await leftInLogs(file, async (writer) => {
    await writer.insert([send('eve', 'fay', 'k1'), send('eve', 'gus', 'k1')]);
  });
  assert.deepEqual(counts(file), { logged: 2, moved: 0 });

  const store = new SqliteStore(file);
  await store.open();
  try {
    assert.deepEqual(counts(file), { logged: 0, moved: 2 });
    assert.deepEqual([...(await store.clientSend(1, 'eve', 'k1')).keys()].sort(), ['fay', 'gus']);
    await assert.rejects(store.insertMessages([send('eve', 'fay', 'k1')]), /used already/);
  } finally {
    await store.close();
  }
});

test('a purged message frees its client id, logged or moved', async () => {
  const file = path.join(tempDir('cv-cid-'), 'chatvault.db');
  const store = new SqliteStore(file);
  await store.open();
  try {
    const [logged] = await store.insertMessages([send('hal', 'ivy', 'p1')]);
    assert.deepEqual(await store.deleteMessages(1, [logged!]), [logged]);
    assert.equal((await store.clientSend(1, 'hal', 'p1')).size, 0);
    const [again] = await store.insertMessages([send('hal', 'ivy', 'p1')]);
    assert.ok(again! > logged!, 'stored anew');
  } finally {
    await store.close();
  }
  // Moved at the close; purged after the next open.
  const reopened = new SqliteStore(file);
  await reopened.open();
  try {
    assert.equal((await reopened.clientSend(1, 'hal', 'p1')).size, 1);
    const stored = await reopened.messagesAfter(1, 0n, 10);
    const last = stored[stored.length - 1]!;
    await reopened.deleteMessages(1, [last.seq]);
    assert.equal((await reopened.clientSend(1, 'hal', 'p1')).size, 0);
    await reopened.insertMessages([send('hal', 'ivy', 'p1')]);
  } finally {
    await reopened.close();
  }
});

test('the log is moved group of senders by group, and a repeat is refused at every step', async () => {
  const file = path.join(tempDir('cv-cid-'), 'chatvault.db');
  const store = new SqliteStore(file);
  await store.open();
  const senders = Array.from({ length: 40 }, (_, i) => `s${i}`);
  // For each sender, the numbers of its ids (g0, g1, …) in the log and in client_ids.
  const where = (): Map<string, { logged: number[]; moved: number[] }> => {
    const db = new Database(file, { readonly: true });
    try {
      const out = new Map<string, { logged: number[]; moved: number[] }>();
      for (const [table, place] of [['client_id_log', 'logged'], ['client_ids', 'moved']] as const) {
        for (const r of db.prepare(`SELECT sender, client_id FROM ${table}`).all() as { sender: string; client_id: string }[]) {
          const e = out.get(r.sender) ?? { logged: [], moved: [] };
          e[place].push(Number(r.client_id.slice(1)));
          out.set(r.sender, e);
        }
      }
      return out;
    } finally {
      db.close();
    }
  };
  try {
    await store.insertMessages(senders.map((s) => send(s, 'zed', 'g0')));
    let sent = 1;
    let sawPart = false;
    for (let step = 0; step < 12; step++) {
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, 300));
      await store.insertMessages(senders.map((s) => send(s, 'zed', `g${sent}`)));
      sent++;
      // A sender's ids move in the order they were sent: what waits in the log is its newest.
      const places = where();
      for (const [s, p] of places) assert.ok(Math.max(-1, ...p.moved) < Math.min(sent, ...p.logged), `${s}: moved ${p.moved}, logged ${p.logged}`);
      // Some groups had their older ids moved, others not yet: seen when the commits came less
      // than a second apart (a later one moves every group).
      const olderLogged = [...places.values()].filter((p) => p.logged.some((k) => k < sent - 1)).length;
      if (olderLogged > 0 && olderLogged < senders.length && Date.now() - t0 < 900) sawPart = true;
      // Every id sent so far is refused, wherever it waits.
      for (const s of [senders[step]!, senders[39 - step]!]) {
        for (let k = 0; k < sent; k++) await assert.rejects(store.insertMessages([send(s, 'zed', `g${k}`)]), /used already/);
      }
    }
    assert.ok(sawPart, 'a commit moved some groups of senders and left the others in the log');
    const c = counts(file);
    assert.ok(c.moved > 0, 'groups were moved');
    assert.equal(c.moved + c.logged, senders.length * sent, 'every id is in one of the two tables');
  } finally {
    await store.close();
  }
  assert.deepEqual(counts(file), { logged: 0, moved: senders.length * 13 }, 'a clean close moves the rest');
});
