import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildMessage } from '../../src/domain/messages.js';
import { parseQlOrThrow } from '../../src/export/chat-query.js';
import { DuplicateError, type AppRow, type MessageQuery, type Store } from '../../src/store/store.js';
import { tempDir } from '../helpers.js';
import { openTestStore, TEST_STORE } from '../store-under-test.js';

/**
 * The Store port's contract, run against the store under test (SQLite, or PostgreSQL when the
 * runner's second pass sets CHATVAULT_TEST_STORE=postgres): what every adapter must do alike.
 */

const T0 = Date.UTC(2026, 2, 1, 12);

let store: Store;
let app: AppRow;
let other: AppRow;

function msg(appId: number, i: number, over: Partial<Parameters<typeof buildMessage>[1]> = {}) {
  return buildMessage(appId, {
    from: `u${i % 3}`, to: i % 4 === 0 ? '1000' : `u${(i + 1) % 3}`, chatType: i % 4 === 0 ? 'groupchat' : 'chat',
    bodies: [{ type: 'txt', msg: `hello ${i} 你好世界` }], timestamp: T0 + i * 1000, msgId: `${9000000 + i}`, ...over,
  });
}

function query(appId: number, ql: string, limit: number, over: Partial<MessageQuery> = {}): MessageQuery {
  const q = parseQlOrThrow(ql);
  return { appId, where: q.where, orderBy: q.orderBy.map((o) => ({ field: o.field, dir: o.dir })), near: null, after: null, minSeq: 0n, maxSeq: 1n << 62n, limit, ...over };
}

before(async () => {
  store = await openTestStore(tempDir('cv-contract-'));
  const org = await store.createOrg({ uuid: '00000000-0000-1000-8000-00000000c001', name: 'ContractOrg', clientId: 'YXA6contract-org', clientSecret: 'YXA6secret', created: T0 });
  app = await store.createApp({ uuid: '00000000-0000-1000-8000-00000000a001', orgId: org.id, name: 'Chat', clientId: 'YXA6contract-app', clientSecret: 'YXA6s1', openRegistration: false, created: T0 });
  other = await store.createApp({ uuid: '00000000-0000-1000-8000-00000000a002', orgId: org.id, name: 'Other', clientId: 'YXA6contract-app2', clientSecret: 'YXA6s2', openRegistration: true, created: T0 });
});

after(async () => {
  await store?.close();
});

describe(`Store contract (${TEST_STORE})`, () => {
  test('meta keys are set, replaced and read back', async () => {
    assert.equal(await store.getMeta('contract_missing'), null);
    await store.setMeta('contract_k', 'one');
    await store.setMeta('contract_k', 'two');
    assert.equal(await store.getMeta('contract_k'), 'two');
  });

  test('orgs and apps are found case-insensitively; names are unique per org', async () => {
    assert.equal((await store.getOrgByName('contractorg'))?.name, 'ContractOrg');
    assert.equal((await store.getApp('CONTRACTORG', 'chat'))?.id, app.id);
    assert.equal((await store.getApp('contractorg', app.uuid))?.id, app.id);
    assert.equal((await store.getApp('contractorg', 'nope')), null);
    assert.equal((await store.getAppById(other.id))?.openRegistration, true);
    assert.deepEqual((await store.listApps(app.orgId)).map((a) => a.name), ['Chat', 'Other']);
    await assert.rejects(
      store.createApp({ uuid: '00000000-0000-1000-8000-00000000a003', orgId: app.orgId, name: 'CHAT', clientId: 'YXA6x', clientSecret: 'YXA6y', openRegistration: false, created: T0 }),
      DuplicateError,
    );
  });

  test('new app credentials bump the credential generation', async () => {
    const before = (await store.getAppById(other.id))!;
    const changed = await store.setAppCredentials(other.id, 'YXA6contract-app2b', 'YXA6s2b');
    assert.equal(changed.credGen, before.credGen + 1);
    assert.equal(changed.clientId, 'YXA6contract-app2b');
    assert.equal((await store.setOpenRegistration(other.id, false)).openRegistration, false);
  });

  test('admins: upsert by username, lookup by name or e-mail, org membership', async () => {
    const a = await store.upsertAdmin({ uuid: '00000000-0000-1000-8000-0000000ad001', username: 'Boss', email: 'Boss@Example.com', passwordHash: 'h1', sysadmin: false, created: T0 });
    const again = await store.upsertAdmin({ uuid: '00000000-0000-1000-8000-0000000ad002', username: 'boss', email: 'boss@example.com', passwordHash: 'h2', sysadmin: true, created: T0 });
    assert.equal(again.id, a.id);
    assert.equal((await store.findAdmin('BOSS@example.COM'))?.id, a.id);
    assert.equal((await store.findAdmin('BOSS'))?.passwordHash, 'h2');
    await store.addOrgAdmin(app.orgId, a.id);
    await store.addOrgAdmin(app.orgId, a.id);
    assert.equal(await store.isOrgAdmin(app.orgId, a.id), true);
    assert.deepEqual((await store.orgsOfAdmin(a.id)).map((o) => o.name), ['ContractOrg']);
  });

  test('users: all-or-nothing creation, case-insensitive names, keyset listing, update, delete', async () => {
    let n = 0;
    const mk = (name: string, created: number) => ({ uuid: `00000000-0000-1000-8000-${String(++n).padStart(12, '0')}`, username: name, passwordHash: 'x', properties: { nick: name, n: 1 }, created });
    const made = await store.createUsers(app.id, [mk('Alice', 1), mk('bob', 2), mk('carol', 2)]);
    assert.deepEqual(made.map((u) => u.username), ['Alice', 'bob', 'carol']);
    await assert.rejects(store.createUsers(app.id, [mk('dave', 3), mk('ALICE', 4)]), (e: unknown) => e instanceof DuplicateError);
    assert.equal(await store.getUser(app.id, 'dave'), null, 'nothing of a failed batch is kept');
    assert.equal((await store.getUser(app.id, 'alice'))?.username, 'Alice');
    assert.equal(await store.getUser(other.id, 'alice'), null, 'users belong to one app');
    const page1 = await store.listUsers(app.id, null, 2);
    const page2 = await store.listUsers(app.id, { created: page1[1]!.created, id: page1[1]!.id }, 2);
    assert.deepEqual([...page1, ...page2].map((u) => u.username), ['Alice', 'bob', 'carol']);
    const u = await store.updateUser(made[1]!.id, { activated: false, properties: { nick: '鲍勃' }, modified: 99 });
    assert.equal(u.activated, false);
    assert.deepEqual(u.properties, { nick: '鲍勃' });
    assert.equal(u.modified, 99);
    assert.deepEqual((await store.deleteUsers([made[2]!.id])).map((x) => x.username), ['carol']);
    assert.equal(await store.getUserById(made[2]!.id), null);
  });

  test('messages: seqs grow, msg_id is unique per app, a duplicate does not fail its neighbours', async () => {
    const seqs = await store.insertMessages([msg(app.id, 1), msg(app.id, 2), msg(app.id, 3)]);
    assert.equal(seqs.length, 3);
    assert.ok(seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!);
    // Same event-loop turn: these share a group commit; only the duplicate is refused.
    const results = await Promise.allSettled([store.insertMessages([msg(app.id, 4)]), store.insertMessages([msg(app.id, 2)]), store.insertMessages([msg(app.id, 5)])]);
    assert.equal(results[0].status, 'fulfilled');
    assert.equal(results[1].status, 'rejected');
    assert.equal(results[2].status, 'fulfilled');
    // The same msg_id in another app is another message.
    await store.insertMessages([msg(other.id, 2)]);
    assert.equal(await store.countMessages(app.id), 5);
    assert.equal(await store.messageSeq(app.id, '9000003'), seqs[2]);
    assert.equal(await store.messageSeq(app.id, 'missing'), null);
    assert.ok((await store.highWaterMark()) >= seqs[2]!);
  });

  test('messages: keyset pages, spliced pages and plain pages agree', async () => {
    await store.insertMessages(Array.from({ length: 20 }, (_v, i) => msg(app.id, 10 + i)));
    for (const ql of ['', "select * where from = 'U1' order by timestamp desc", "select * where payload.bodies.msg contains '世界' order by timestamp", "select * where chat_type = 'groupchat'"]) {
      const all = await store.findMessages(query(app.id, ql, 1000));
      const walked: string[] = [];
      let q = query(app.id, ql, 4);
      for (;;) {
        const page = await store.findMessagesSpliced(q, '\n');
        if (page.count > 0) walked.push(...page.body.toString('utf8').split('\n'));
        if (!page.more) break;
        q = { ...q, after: page.last! };
      }
      assert.deepEqual(walked, all.map((h) => h.entity.toString('utf8')), `ql: ${ql}`);
      assert.ok(all.length > 0, `ql matches something: ${ql}`);
    }
    const fromU1 = await store.findMessages(query(app.id, "select * where from = 'u1'", 1000));
    assert.ok(fromU1.every((h) => JSON.parse(h.entity.toString('utf8')).from === 'u1'));
    const none = await store.findMessagesSpliced(query(app.id, "select * where from = 'nobody'", 10), '\n');
    assert.deepEqual({ count: none.count, more: none.more, last: none.last, len: none.body.length }, { count: 0, more: false, last: null, len: 0 });
  });

  test('messages: minSeq and maxSeq bound a walk; messagesAfter follows insertion order', async () => {
    const all = await store.messagesAfter(app.id, 0n, 1000);
    const mid = all[5]!.seq;
    const upper = all[10]!.seq;
    const hits = await store.findMessages(query(app.id, '', 1000, { minSeq: mid, maxSeq: upper }));
    assert.deepEqual(hits.map((h) => h.seq), all.slice(6, 11).map((m) => m.seq));
    assert.deepEqual((await store.messagesAfter(app.id, mid, 2)).map((m) => m.seq), [all[6]!.seq, all[7]!.seq]);
    assert.equal(all[0]!.msgId, '9000001');
    assert.equal(typeof all[0]!.timestamp, 'number');
  });

  test('messages: stats change with a purge; deletes count only what was there', async () => {
    const from = T0 + 10_000;
    const to = T0 + 20_000;
    const s1 = await store.messageStats(app.id, from, to);
    assert.equal(s1.count, 10);
    const victim = (await store.messageSeq(app.id, '9000012'))!;
    assert.deepEqual(await store.deleteMessages(app.id, [victim, victim]), [victim]);
    assert.deepEqual(await store.deleteMessages(other.id, [(await store.messageSeq(app.id, '9000013'))!]), [], 'another app cannot delete');
    const s2 = await store.messageStats(app.id, from, to);
    assert.equal(s2.count, 9);
    assert.notEqual(s2.fingerprint, s1.fingerprint);
    assert.equal(await store.messageSeq(app.id, '9000012'), null);
  });

  test('deliveries: inbox rows written with their messages, pending until acked, walked by seq under a bound', async () => {
    const T = T0 + 500_000;
    const rows = [
      { ...msg(app.id, 500, { msgId: 'd500', from: 'Sender', to: 'Rita', chatType: 'chat', timestamp: T }), recipients: ['rita'] },
      { ...msg(app.id, 501, { msgId: 'd501', from: 'Sender', to: '7000', chatType: 'groupchat', timestamp: T + 1 }), recipients: ['rita', 'sam'] },
      // Imported history: no recipients, no inbox rows.
      msg(app.id, 502, { msgId: 'd502', from: 'Sender', to: 'Rita', chatType: 'chat', timestamp: T + 2 }),
      { ...msg(app.id, 503, { msgId: 'd503', from: 'Sam', to: 'Rita', chatType: 'chat', timestamp: T + 3 }), recipients: ['rita'] },
    ];
    const seqs = await store.insertMessages(rows);
    assert.equal(await store.countPendingDeliveries(app.id, 'rita'), 3);
    assert.equal(await store.countPendingDeliveries(app.id, 'sam'), 1);
    assert.equal(await store.countPendingDeliveries(other.id, 'rita'), 0, 'another app sees nothing');
    assert.deepEqual((await store.pendingDeliveries(app.id, 'rita', 0n, 10)).map((m) => m.msgId), ['d500', 'd501', 'd503'], 'oldest first');
    assert.deepEqual((await store.pendingDeliveries(app.id, 'rita', seqs[0]!, 1)).map((m) => m.msgId), ['d501'], 'paged by seq');
    const page = await store.pendingDeliveries(app.id, 'rita', 0n, 1);
    assert.deepEqual(page[0]!.entity, rows[0]!.entity, 'the stored record');
    assert.equal(page[0]!.seq, seqs[0]);

    assert.equal(await store.deliveryStatus(app.id, 'rita', 'd500'), 'undelivered');
    assert.equal(await store.deliveryStatus(app.id, 'rita', 'd502'), null, 'not delivered through the inbox');
    assert.equal(await store.deliveryStatus(app.id, 'nobody', 'd500'), null);
    assert.deepEqual(await store.markDelivered(app.id, 'rita', ['d500', 'D501', 'd502', 'missing', 'd500']), [
      { msgId: 'd500', from: 'Sender', to: 'Rita', chatType: 'chat' },
      { msgId: 'D501', from: 'Sender', to: '7000', chatType: 'groupchat' },
    ], 'the ids as spelled in the ack, with who sent each and where to');
    assert.deepEqual(await store.markDelivered(app.id, 'rita', ['d500']), [], 'a second ack changes nothing');
    assert.equal(await store.deliveryStatus(app.id, 'rita', 'd500'), 'delivered');
    assert.equal(await store.deliveryStatus(app.id, 'sam', 'd501'), 'undelivered', "one recipient's ack is not another's");
    assert.equal(await store.countPendingDeliveries(app.id, 'rita'), 1);

    // The inbox keeps acked messages; the upper bound is the walk's high-water mark.
    assert.deepEqual((await store.inbox(app.id, 'rita', 0n, 1n << 62n, 10)).map((m) => m.msgId), ['d500', 'd501', 'd503']);
    assert.deepEqual((await store.inbox(app.id, 'rita', seqs[0]!, seqs[1]!, 10)).map((m) => m.msgId), ['d501']);
    assert.deepEqual((await store.inbox(app.id, 'rita', 0n, 1n << 62n, 2)).map((m) => m.msgId), ['d500', 'd501']);

    // A purge takes the inbox rows with the message.
    await store.deleteMessages(app.id, [seqs[3]!]);
    assert.equal(await store.countPendingDeliveries(app.id, 'rita'), 0);
    assert.deepEqual((await store.inbox(app.id, 'rita', 0n, 1n << 62n, 10)).map((m) => m.msgId), ['d500', 'd501']);
  });

  test('inboxPrevious: each recipient\'s inbox row before the message, exactly, where the store keeps call order', async () => {
    const T = T0 + 550_000;
    const one = (id: number, to: string, recipients: string[]) => ({ ...msg(app.id, id, { msgId: `p${id}`, from: 'Sender', to, chatType: recipients.length > 1 ? 'groupchat' as const : 'chat' as const, timestamp: T + id }), recipients });
    const before = (await store.inbox(app.id, 'pia', 0n, 1n << 62n, 100)).length;
    assert.equal(before, 0);
    // Several inserts called at once share a commit; each still sees the ones called before it.
    const a = [one(550, 'Pia', ['pia'])];
    const b = [one(551, '7001', ['pia', 'quinn']), one(552, 'Quinn', ['quinn'])];
    const c = [one(553, 'Pia', ['pia'])];
    const [sa, sb, sc] = await Promise.all([store.insertMessages(a), store.insertMessages(b), store.insertMessages(c)]);
    if (!store.insertsInCallOrder) {
      // Concurrent writers: unknowable, so never claimed.
      assert.ok([...a, ...b, ...c].every((m) => m.inboxPrevious === undefined));
      return;
    }
    assert.deepEqual(a[0]!.inboxPrevious, [0n], 'nothing before the first');
    assert.deepEqual(b[0]!.inboxPrevious, [sa![0]!, 0n]);
    assert.deepEqual(b[1]!.inboxPrevious, [sb![0]!]);
    assert.deepEqual(c[0]!.inboxPrevious, [sb![0]!]);
    assert.ok(sa![0]! < sb![0]! && sb![0]! < sb![1]! && sb![1]! < sc![0]!, 'seqs in call order');
    // Imported history has no inbox rows and so no previous.
    const imported = [msg(app.id, 554, { msgId: 'p554', from: 'Sender', to: 'Pia', chatType: 'chat', timestamp: T })];
    await store.insertMessages(imported);
    assert.equal(imported[0]!.inboxPrevious, undefined);
  });

  test('client send ids: a repeated (sender, target, id) stores nothing; other senders and targets are free', async () => {
    const T = T0 + 600_000;
    const first = [
      { ...msg(app.id, 600, { msgId: 'c600', from: 'Carl', to: 'Dana', chatType: 'chat', timestamp: T }), clientId: 'cid-1' },
      { ...msg(app.id, 601, { msgId: 'c601', from: 'Carl', to: 'Eve', chatType: 'chat', timestamp: T }), clientId: 'cid-1' },
    ];
    await store.insertMessages(first);
    assert.deepEqual([...(await store.clientSend(app.id, 'carl', 'cid-1'))].sort(), [['dana', { msgId: 'c600', timestamp: T }], ['eve', { msgId: 'c601', timestamp: T }]]);
    assert.equal((await store.clientSend(app.id, 'carl', 'cid-2')).size, 0);
    assert.equal((await store.clientSend(other.id, 'carl', 'cid-1')).size, 0);
    await assert.rejects(store.insertMessages([{ ...msg(app.id, 602, { msgId: 'c602', from: 'CARL', to: 'dana', chatType: 'chat', timestamp: T }), clientId: 'cid-1' }]));
    assert.equal(await store.messageSeq(app.id, 'c602'), null, 'the repeat stored nothing');
    // A refused write does not take the writes that shared its group commit down with it.
    const [ok] = await Promise.all([
      store.insertMessages([{ ...msg(app.id, 603, { msgId: 'c603', from: 'Fay', to: 'Dana', chatType: 'chat', timestamp: T }), clientId: 'cid-1' }]),
      store.insertMessages([{ ...msg(app.id, 604, { msgId: 'c604', from: 'Carl', to: 'Eve', chatType: 'chat', timestamp: T }), clientId: 'cid-1' }]).catch(() => null),
    ]);
    assert.equal(ok.length, 1);
    assert.deepEqual([...(await store.clientSend(app.id, 'fay', 'cid-1'))], [['dana', { msgId: 'c603', timestamp: T }]]);
  });

  test('contacts and block lists', async () => {
    const [a, b, c] = await store.createUsers(app.id, ['k1', 'k2', 'k3'].map((n, i) => ({ uuid: `00000000-0000-1000-8000-0000000cc00${i}`, username: n, passwordHash: 'x', properties: {}, created: 100 + i })));
    await store.addContact(a!.id, b!.id, 1);
    await store.addContact(a!.id, c!.id, 2);
    await store.addContact(b!.id, a!.id, 3);
    assert.deepEqual(await store.listContacts(a!.id), ['k2', 'k3']);
    assert.deepEqual(await store.listContacts(b!.id), ['k1']);
    await store.removeContact(b!.id, a!.id);
    assert.deepEqual(await store.listContacts(a!.id), ['k3']);
    await store.addBlocks(a!.id, [c!.id, b!.id, c!.id], 5);
    assert.deepEqual(await store.listBlocks(a!.id), ['k3', 'k2']);
    await store.removeBlock(a!.id, c!.id);
    await store.removeBlock(a!.id, c!.id);
    assert.deepEqual(await store.listBlocks(a!.id), ['k2']);
  });

  test('groups: limits refuse the whole change, owner first in members, block moves out', async () => {
    const users = await store.createUsers(app.id, ['g1', 'g2', 'g3', 'g4'].map((n, i) => ({ uuid: `00000000-0000-1000-8000-0000000ee00${i}`, username: n, passwordHash: 'x', properties: {}, created: 200 + i })));
    const [o, m1, m2, m3] = users.map((u) => u.id) as [number, number, number, number];
    const g = await store.createGroup(app.id, { kind: 'group', groupId: '777001', name: 'n', description: 'd', public: true, membersOnly: false, allowInvites: false, maxUsers: 3, ownerId: o, created: 1, memberIds: [m1] }, 100);
    assert.ok(!('refused' in g));
    assert.equal(g.memberCount, 2);
    assert.deepEqual(await store.addGroupMembers(g.id, [m2, m3], 2, 100), { refused: 'full' });
    assert.deepEqual((await store.groupMembers(g.id)).map((x) => [x.username, x.owner]), [['g1', true], ['g2', false]]);
    assert.equal(await store.addGroupMembers(g.id, [m2], 2, 100), null);
    await store.blockGroupUsers(g.id, [m1], 3);
    assert.deepEqual((await store.groupMembers(g.id)).map((x) => x.username), ['g1', 'g3']);
    assert.deepEqual((await store.groupBlocks(g.id)).map((x) => x.username), ['g2']);
    await assert.rejects(
      store.createGroup(app.id, { kind: 'group', groupId: '777001', name: 'x', description: '', public: true, membersOnly: false, allowInvites: false, maxUsers: 10, ownerId: o, created: 1, memberIds: [] }, 100),
      DuplicateError,
    );
    const tooMany = await store.createGroup(app.id, { kind: 'group', groupId: '777002', name: 'x', description: '', public: true, membersOnly: false, allowInvites: false, maxUsers: 10, ownerId: m2, created: 1, memberIds: [] }, 1);
    assert.deepEqual(tooMany, { refused: 'too_many', userId: m2 });
    assert.deepEqual((await store.groupsOfUser(app.id, 'group', m2)).map((x) => x.groupId), ['777001']);
    assert.equal(await store.deleteGroupsOwnedBy([o]), 1);
    assert.deepEqual(await store.getGroups(app.id, 'group', ['777001']), []);
  });

  test('chat files belong to their app', async () => {
    const f = await store.createChatFile({ appId: app.id, uuid: '0b6e1e40-0000-11ef-8000-000000000001', blobKey: 'k1', contentType: 'image/png', size: 10, secret: 's', thumbWidth: null, thumbHeight: 50, created: 1, modified: 1 });
    assert.equal((await store.getChatFile(app.id, f.uuid))?.blobKey, 'k1');
    assert.equal(await store.getChatFile(other.id, f.uuid), null);
  });
});
