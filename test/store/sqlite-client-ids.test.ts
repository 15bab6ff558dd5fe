import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { buildMessage } from '../../src/domain/messages.js';
import { SqliteMessages } from '../../src/store/sqlite/sqlite-messages.js';
import { applyPragmas, migrate } from '../../src/store/sqlite/sqlite-schema.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { NewMessage } from '../../src/store/store.js';
import { tempDir } from '../helpers.js';

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

function counts(file: string): { logged: number; moved: number } {
  const db = new Database(file, { readonly: true });
  try {
    const one = (sql: string) => Number(db.prepare(sql).pluck().get());
    return { logged: one('SELECT count(*) FROM client_id_log'), moved: one('SELECT count(*) FROM client_ids') };
  } finally {
    db.close();
  }
}

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
  // A writer that commits and then stops without moving anything (as kill -9 would leave it).
  const db = new Database(file);
  applyPragmas(db);
  migrate(db);
  const writer = new SqliteMessages(db, 64);
  await writer.insert([send('eve', 'fay', 'k1'), send('eve', 'gus', 'k1')]);
  db.close();
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
