import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { buildMessage } from '../../src/domain/messages.js';
import { SqliteDeliveries } from '../../src/store/sqlite/sqlite-deliveries.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { NewMessage } from '../../src/store/store.js';
import { tempDir } from '../helpers.js';
import { leftInLogs, logCounts } from './sqlite-log-helpers.js';

/*
 * SQLite keeps the inbox rows of the last moment in delivery_log (appended with their messages,
 * acked there) and moves them into deliveries about once a second, a group of recipients at a
 * time. Wherever a row is — logged, moved, or left in the log by a process that died — every
 * read answers the same, an ack counts once, and each message's previous inbox seq is exact.
 */

const T = Date.UTC(2026, 6, 1);
let n = 0;

function send(from: string, to: string[], chatType: 'chat' | 'groupchat' = 'chat'): NewMessage {
  const i = n++;
  const target = chatType === 'chat' ? to[0]! : 'g1';
  return { ...buildMessage(1, { from, to: target, chatType, bodies: [{ type: 'txt', msg: `m${i}` }], timestamp: T + i, msgId: `88000${i}` }), recipients: to };
}

const counts = (file: string) => logCounts(file, 'delivery_log', 'deliveries');

/** What every read of the store says of a user's inbox. */
async function inboxOf(store: SqliteStore, user: string) {
  const hwm = await store.highWaterMark();
  return {
    pending: (await store.pendingDeliveries(1, user, 0n, 100)).map((m) => m.msgId),
    firstPending: (await store.pendingDeliveries(1, user, 0n, 1)).map((m) => m.msgId),
    count: await store.countPendingDeliveries(1, user),
    inbox: (await store.inbox(1, user, 0n, hwm, 100)).map((m) => m.msgId),
  };
}

test('inbox rows read the same logged and moved; acks in the log move with the rows; previous seqs are exact', async () => {
  const file = path.join(tempDir('cv-dlog-'), 'chatvault.db');
  const store = new SqliteStore(file);
  await store.open();
  try {
    const a = send('ann', ['bob']);
    const b = send('cat', ['bob', 'dan'], 'groupchat');
    const [seqA] = await store.insertMessages([a]);
    const [seqB] = await store.insertMessages([b]);
    assert.deepEqual(counts(file), { logged: 3, moved: 0 }, 'waits in the log');
    assert.deepEqual(a.inboxPrevious, [0n]);
    assert.deepEqual(b.inboxPrevious, [seqA, 0n], "bob's previous row is the logged one");

    const logged = await inboxOf(store, 'bob');
    assert.deepEqual(logged, { pending: [a.msgId, b.msgId], firstPending: [a.msgId], count: 2, inbox: [a.msgId, b.msgId] });
    assert.equal(await store.deliveryStatus(1, 'bob', a.msgId), 'undelivered');
    assert.equal(await store.deliveryStatus(1, 'ann', a.msgId), null, 'no row for the sender');
    assert.equal(await store.deliveryStatus(1, 'bob', 'no-such-id'), null);

    // Acked in the log: once.
    assert.deepEqual((await store.markDelivered(1, 'bob', [a.msgId, a.msgId])).map((m) => m.msgId), [a.msgId]);
    assert.deepEqual(await store.markDelivered(1, 'bob', [a.msgId]), []);
    assert.equal(await store.deliveryStatus(1, 'bob', a.msgId), 'delivered');
    assert.deepEqual((await inboxOf(store, 'bob')).pending, [b.msgId]);

    // A second later the next commit moves the log, the acked row as acked.
    await new Promise((r) => setTimeout(r, 1100));
    const c = send('eve', ['bob']);
    const [seqC] = await store.insertMessages([c]);
    assert.deepEqual(c.inboxPrevious, [seqB], "bob's previous row is the moved one");
    assert.deepEqual(counts(file), { logged: 0, moved: 4 });
    assert.equal(await store.deliveryStatus(1, 'bob', a.msgId), 'delivered');
    assert.equal(await store.deliveryStatus(1, 'bob', b.msgId), 'undelivered');
    assert.deepEqual(await inboxOf(store, 'bob'), { pending: [b.msgId, c.msgId], firstPending: [b.msgId], count: 2, inbox: [a.msgId, b.msgId, c.msgId] });
    // A window of the inbox, and pages of one.
    assert.deepEqual((await store.inbox(1, 'bob', seqA!, seqB!, 10)).map((m) => m.msgId), [b.msgId]);
    assert.deepEqual((await store.inbox(1, 'bob', 0n, seqC!, 2)).map((m) => m.msgId), [a.msgId, b.msgId]);
    assert.deepEqual((await store.pendingDeliveries(1, 'bob', seqB!, 10)).map((m) => m.msgId), [c.msgId]);

    // Acked after the move: in deliveries, once.
    assert.deepEqual((await store.markDelivered(1, 'bob', [b.msgId])).map((m) => ({ ...m })), [{ msgId: b.msgId, from: 'cat', to: 'g1', chatType: 'groupchat' }]);
    assert.deepEqual(await store.markDelivered(1, 'bob', [b.msgId]), []);
    assert.deepEqual((await inboxOf(store, 'dan')).pending, [b.msgId], "another recipient's row is its own");
  } finally {
    await store.close();
  }
  assert.equal(counts(file).logged, 0, 'a clean close moves what waits');
});

test('rows a process left in the log when it died are read, acked and moved when the store opens', async () => {
  const file = path.join(tempDir('cv-dlog-'), 'chatvault.db');
  const m1 = send('fay', ['gus']);
  const m2 = send('fay', ['gus']);
  await leftInLogs(file, async (writer, db) => {
    await writer.insert([m1, m2]);
    await writer.withNextCommit(() => new SqliteDeliveries(db).markDeliveredInTransaction(1, 'gus', [m1.msgId]));
  });
  assert.deepEqual(counts(file), { logged: 2, moved: 0 });

  const store = new SqliteStore(file);
  await store.open();
  try {
    assert.deepEqual(counts(file), { logged: 0, moved: 2 });
    assert.deepEqual(await inboxOf(store, 'gus'), { pending: [m2.msgId], firstPending: [m2.msgId], count: 1, inbox: [m1.msgId, m2.msgId] });
    const m3 = send('hal', ['gus']);
    await store.insertMessages([m3]);
    assert.deepEqual(m3.inboxPrevious, [BigInt((await store.pendingDeliveries(1, 'gus', 0n, 1))[0]!.seq)]);
  } finally {
    await store.close();
  }
});

test('a purge and a deleted user take their rows from the log too', async () => {
  const file = path.join(tempDir('cv-dlog-'), 'chatvault.db');
  const store = new SqliteStore(file);
  await store.open();
  try {
    // App 1 with the user kim, who is deleted below.
    const org = await store.createOrg({ uuid: '00000000-0000-1000-8000-00000000d001', name: 'LogOrg', clientId: 'YXA6log-org', clientSecret: 'YXA6s', created: T });
    const app = await store.createApp({ uuid: '00000000-0000-1000-8000-00000000d002', orgId: org.id, name: 'Log', clientId: 'YXA6log-app', clientSecret: 'YXA6s', openRegistration: false, created: T });
    assert.equal(app.id, 1);
    const [kim] = await store.createUsers(1, [{ uuid: '00000000-0000-1000-8000-00000000d003', username: 'Kim', passwordHash: 'x', properties: {}, created: T }]);
    const m1 = send('ivy', ['jon', 'kim'], 'groupchat');
    const m2 = send('ivy', ['jon']);
    const [s1] = await store.insertMessages([m1]);
    await store.insertMessages([m2]);
    assert.deepEqual(await store.deleteMessages(1, [s1!]), [s1]);
    assert.deepEqual(counts(file), { logged: 1, moved: 0 }, "the purged message's two rows are gone");
    assert.deepEqual((await inboxOf(store, 'jon')).pending, [m2.msgId]);

    const m3 = send('ivy', ['kim']);
    await store.insertMessages([m3]);
    assert.equal(await store.countPendingDeliveries(1, 'kim'), 1);
    await store.deleteUsers([kim!.id]);
    assert.deepEqual(counts(file), { logged: 1, moved: 0 }, "the deleted user's row is gone");
    assert.deepEqual(await inboxOf(store, 'kim'), { pending: [], firstPending: [], count: 0, inbox: [] });
  } finally {
    await store.close();
  }
});
