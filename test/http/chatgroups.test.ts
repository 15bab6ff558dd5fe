import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Api, createApp, demoToken, req, startTestServer, type Res, type TestServer } from '../helpers.js';
import { assertError, assertNotFound, assertOk, ENVELOPE } from './api-assert.js';

let s: TestServer;
let admin: Api;
let anon: Api;
let appUuid: string;

before(async () => {
  s = await startTestServer();
  admin = new Api(s.url, await demoToken(s));
  anon = new Api(s.url);
  appUuid = (await s.cv.services.store.getApp('demo', 'chat'))!.uuid;
  const names = ['alice', 'bob', 'Carol', 'dave', 'erin', 'frank', 'gina'];
  const r = await admin.post('/demo/chat/users', names.map((username) => ({ username, password: `pw-${username}` })));
  assert.equal(r.status, 200, r.text);
});
after(() => s.close());

const G = '/demo/chat/chatgroups';

/** Creates a group and returns its id. */
async function makeGroup(body: Record<string, unknown>): Promise<string> {
  const r = await admin.post(G, { groupname: 'g', desc: 'd', public: true, owner: 'alice', ...body });
  assert.equal(r.status, 200, r.text);
  return r.body.data.groupid;
}

async function detailOf(gid: string): Promise<Record<string, unknown>> {
  const r = await admin.get(`${G}/${gid}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.data.length, 1);
  return r.body.data[0];
}

/** A 403 whose description names a group id we cannot know in advance. */
function assertForbidden(r: Res, description: RegExp): void {
  assert.equal(r.status, 403, r.text);
  assert.equal(r.body.error, 'forbidden_op');
  assert.equal(r.body.exception, 'EasemobForbiddenOpException');
  assert.match(r.body.error_description, description);
}

test('create answers data.groupid (13-16 digits); the details show every field and the affiliations', async () => {
  const r = await admin.post(G, { groupname: 'team', desc: 'the team', public: true, maxusers: 300, owner: 'alice', members: ['bob', 'carol'] });
  assertOk(r, [...ENVELOPE, 'entities', 'data']);
  assert.equal(r.body.action, 'post');
  assert.equal(r.body.application, appUuid);
  assert.equal(r.body.path, '/chatgroups');
  assert.equal(r.body.uri, `${s.url}/demo/chat/chatgroups`);
  assert.deepEqual(r.body.entities, []);
  assert.deepEqual(Object.keys(r.body.data), ['groupid']);
  const gid = r.body.data.groupid;
  assert.match(gid, /^\d{13,16}$/);

  const d = await admin.get(`${G}/${gid}`);
  assertOk(d, [...ENVELOPE, 'entities', 'data', 'count']);
  assert.equal(d.body.uri, `${s.url}/demo/chat/chatgroups/${gid}`);
  assert.equal(d.body.count, 1);
  const g = d.body.data[0];
  assert.equal(typeof g.created, 'number');
  delete g.created;
  assert.deepEqual(g, {
    id: gid, name: 'team', description: 'the team', public: true, membersonly: false, allowinvites: false, maxusers: 300,
    affiliations_count: 3, affiliations: [{ owner: 'alice' }, { member: 'bob' }, { member: 'Carol' }],
  });
});

test('create defaults: maxusers 200, no members; approval, membersonly, allowinvites and "description" are read', async () => {
  const plain = await detailOf(await makeGroup({ groupname: 'plain', public: false }));
  assert.equal(plain.maxusers, 200);
  assert.equal(plain.public, false);
  assert.deepEqual(plain.affiliations, [{ owner: 'alice' }]);
  assert.equal(plain.affiliations_count, 1);
  const e4 = await detailOf(await makeGroup({ groupname: 'e4', desc: undefined, description: 'E4 spelling', approval: true, allowinvites: true, maxusers: '50' }));
  assert.equal(e4.description, 'E4 spelling');
  assert.equal(e4.membersonly, true);
  assert.equal(e4.allowinvites, true);
  assert.equal(e4.maxusers, 50);
  // A member list that names the owner too, and repeats: each user is in the group once.
  const dup = await detailOf(await makeGroup({ members: ['alice', 'bob', 'BOB'] }));
  assert.deepEqual(dup.affiliations, [{ owner: 'alice' }, { member: 'bob' }]);
});

test('create refuses bad bodies with 400 illegal_argument and exact descriptions; nothing is created', async () => {
  const before = (await admin.get(G)).body.count;
  const ok = { groupname: 'x', desc: 'd', public: true, owner: 'alice' };
  const cases: [unknown, string][] = [
    [{ ...ok, owner: 'ghost' }, "group owner ghost doesn't exist"],
    [{ ...ok, members: ['bob', 'ghost'] }, "group member ghost doesn't exist"],
    [{ ...ok, owner: undefined }, 'owner must be provided'],
    [{ ...ok, groupname: undefined }, 'groupname must be provided'],
    [{ ...ok, groupname: '  ' }, 'groupname must be provided'],
    [{ ...ok, groupname: 'n'.repeat(129) }, 'groupname is longer than 128 characters'],
    [{ ...ok, desc: 5 }, 'desc must be a string'],
    [{ ...ok, members: [] }, 'members must be a non-empty array of usernames'],
    [{ ...ok, members: 'bob' }, 'members must be a non-empty array of usernames'],
    [{ ...ok, maxusers: 0 }, 'maxusers must be an integer from 1 to 3000'],
    [{ ...ok, maxusers: 3001 }, 'maxusers must be an integer from 1 to 3000'],
    [{ ...ok, maxusers: 'many' }, 'maxusers must be an integer from 1 to 3000'],
    [{ ...ok, public: 'yes' }, 'public must be true or false'],
    [[ok], 'the request body must be a JSON object'],
  ];
  for (const [body, description] of cases) assertError(await admin.post(G, body), 400, 'illegal_argument', description);
  // More members than maxusers allows (the owner counts).
  assertForbidden(await admin.post(G, { ...ok, maxusers: 2, members: ['bob', 'dave'] }), /^can not join this group, reason:group: \d+ has reached maxusers 2$/);
  assert.equal((await admin.get(G)).body.count, before);
});

test('list all: groupid, groupname, owner as org#app_user, affiliations; newest first; count', async () => {
  const gid = await makeGroup({ groupname: 'listed', members: ['dave', 'erin'] });
  const r = await admin.get(G);
  assertOk(r, [...ENVELOPE, 'entities', 'data', 'count']);
  assert.equal(r.body.count, r.body.data.length);
  assert.equal('cursor' in r.body, false);
  assert.deepEqual(r.body.data[0], { groupid: gid, groupname: 'listed', owner: 'demo#chat_alice', affiliations: 3 });
  const ids = r.body.data.map((x: { groupid: string }) => x.groupid);
  assert.deepEqual(ids, [...ids].sort((a: string, b: string) => (BigInt(b) > BigInt(a) ? 1 : -1)));
});

test('paged list: limit and cursor walk every group once, items carry type and last_modified', async () => {
  for (let i = 0; i < 4; i++) await makeGroup({ groupname: `page${i}` });
  const all = (await admin.get(G)).body.data.map((x: { groupid: string }) => x.groupid);
  const seen: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const r = await admin.get(`${G}?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.params.limit, ['3']);
    assert.equal(r.body.count, r.body.data.length);
    for (const item of r.body.data) {
      assert.deepEqual(Object.keys(item).sort(), ['affiliations', 'groupid', 'groupname', 'last_modified', 'owner', 'type']);
      assert.equal(item.type, 'group');
      assert.match(item.last_modified, /^\d{13}$/);
      seen.push(item.groupid);
    }
    cursor = r.body.cursor;
    pages++;
  } while (cursor);
  assert.deepEqual(seen, all);
  assert.equal(pages, Math.ceil(all.length / 3));
  // A cursor alone pages with the default limit; a chat room cursor or garbage is refused.
  const first = await admin.get(`${G}?limit=1`);
  assert.equal((await admin.get(`${G}?cursor=${first.body.cursor}`)).body.data[0].groupid, all[1]);
  const rooms = (await admin.post('/demo/chat/chatrooms', { name: 'r', description: 'd', owner: 'alice' })).status;
  assert.equal(rooms, 200);
  await admin.post('/demo/chat/chatrooms', { name: 'r2', description: 'd', owner: 'alice' });
  const roomCursor = (await admin.get('/demo/chat/chatrooms?limit=1')).body.cursor;
  assertError(await admin.get(`${G}?limit=1&cursor=${roomCursor}`), 400, 'illegal_argument',
    'cursor does not belong to this query: it was made by another query, app or server');
  assert.equal((await admin.get(`${G}?limit=1&cursor=nonsense`)).status, 400);
});

test('details of several groups in the order asked; an unknown id is 404', async () => {
  const a = await makeGroup({ groupname: 'one' });
  const b = await makeGroup({ groupname: 'two', members: ['bob'] });
  const r = await admin.get(`${G}/${b},${a}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.count, 2);
  assert.deepEqual(r.body.data.map((g: { name: string }) => g.name), ['two', 'one']);
  assertNotFound(await admin.get(`${G}/${a},99999999999999`));
  assertNotFound(await admin.get(`${G}/99999999999999`));
  assertNotFound(await admin.get(`${G}/not-a-group`));
});

test('update answers true for exactly the keys sent; unknown keys are 400 invalid_parameter and change nothing', async () => {
  const gid = await makeGroup({ groupname: 'before', members: ['bob'] });
  const r = await admin.put(`${G}/${gid}`, { groupname: 'after', description: 'new words', maxusers: 500 });
  assertOk(r, [...ENVELOPE, 'entities', 'data']);
  assert.equal(r.body.action, 'put');
  assert.deepEqual(r.body.data, { groupname: true, description: true, maxusers: true });
  const one = await admin.put(`${G}/${gid}`, { description: 'only this' });
  assert.deepEqual(one.body.data, { description: true });
  const flags = await admin.put(`${G}/${gid}`, { public: false, membersonly: 'true', allowinvites: true });
  assert.deepEqual(flags.body.data, { public: true, membersonly: true, allowinvites: true });
  assertError(await admin.put(`${G}/${gid}`, { public: 'no' }), 400, 'illegal_argument', 'public must be true or false');
  let g = await detailOf(gid);
  assert.equal(g.name, 'after');
  assert.equal(g.description, 'only this');
  assert.equal(g.maxusers, 500);
  assert.deepEqual([g.public, g.membersonly, g.allowinvites], [false, true, true]);

  assertError(await admin.put(`${G}/${gid}`, { groupid: '1' }), 400, 'invalid_parameter', 'some of [groupid] are not valid fields');
  assertError(await admin.put(`${G}/${gid}`, { groupname: 'z', owner: 'bob', x: 1 }), 400, 'invalid_parameter', 'some of [owner, x] are not valid fields');
  assertError(await admin.put(`${G}/${gid}`, { maxusers: 1 }), 400, 'illegal_argument', 'maxusers 1 is less than the 2 members');
  assertError(await admin.put(`${G}/${gid}`, { groupname: '' }), 400, 'illegal_argument', 'groupname must be provided');
  assertError(await admin.put(`${G}/${gid}`, {}), 400, 'illegal_argument',
    'nothing to update: send any of groupname, description, maxusers, public, membersonly, allowinvites, newowner');
  assertNotFound(await admin.put(`${G}/99999999999999`, { groupname: 'x' }));
  g = await detailOf(gid);
  assert.equal(g.name, 'after');
  assert.equal(g.maxusers, 500);
});

test('transfer ownership: newowner must be another member; the old owner stays a member', async () => {
  const gid = await makeGroup({ members: ['bob', 'Carol'] });
  assertError(await admin.put(`${G}/${gid}`, { newowner: 'alice' }), 403, 'forbidden_op', 'new owner and old owner are the same');
  assertError(await admin.put(`${G}/${gid}`, { newowner: 'dave' }), 403, 'forbidden_op', `user: dave doesn't exist in group: ${gid}`);
  assertError(await admin.put(`${G}/${gid}`, { newowner: 'ghost' }), 403, 'forbidden_op', `user: ghost doesn't exist in group: ${gid}`);
  assertError(await admin.put(`${G}/${gid}`, { newowner: 7 }), 400, 'illegal_argument', 'newowner must be a username');
  const r = await admin.put(`${G}/${gid}`, { newowner: 'carol' });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.data, { newowner: true });
  const g = await detailOf(gid);
  assert.deepEqual(g.affiliations, [{ owner: 'Carol' }, { member: 'bob' }, { member: 'alice' }]);
  assert.equal(g.affiliations_count, 3);
  const listed = (await admin.get(G)).body.data.find((x: { groupid: string }) => x.groupid === gid);
  assert.equal(listed.owner, 'demo#chat_Carol');
});

test('delete answers {success, groupid}; the group is gone afterwards', async () => {
  const gid = await makeGroup({ members: ['bob'] });
  const r = await admin.delete(`${G}/${gid}`);
  assertOk(r, [...ENVELOPE, 'entities', 'data']);
  assert.equal(r.body.action, 'delete');
  assert.deepEqual(r.body.data, { success: true, groupid: gid });
  assertNotFound(await admin.get(`${G}/${gid}`));
  assertNotFound(await admin.delete(`${G}/${gid}`));
  assertNotFound(await admin.get(`${G}/${gid}/users`));
});

test('the group flow: create with members, send, export with ql, transfer the owner, delete', async () => {
  const gid = await makeGroup({ groupname: 'flow', owner: 'dave', members: ['erin', 'frank'] });
  const sent = await admin.post('/demo/chat/messages', { target_type: 'chatgroups', target: [gid], msg: { type: 'txt', msg: 'hello group' }, from: 'erin' });
  assert.equal(sent.status, 200, sent.text);
  assert.deepEqual(sent.body.data, { [gid]: 'success' });
  const legacy = await admin.post(`/demo/chat/groups/${gid}/messages`, { msg: { type: 'text', msg: 'old style' } });
  assert.equal(legacy.status, 200, legacy.text);

  const exported = async (): Promise<Record<string, unknown>[]> => {
    const r = await admin.get(`/demo/chat/chatmessages?ql=${encodeURIComponent("select * where chat_type='groupchat'")}&limit=1000`);
    assert.equal(r.status, 200, r.text);
    return r.body.entities.filter((e: { to: string }) => e.to === gid);
  };
  const mine = await exported();
  // Stored once per group, not once per member.
  assert.equal(mine.length, 2);
  assert.deepEqual(mine.map((e) => [e.from, e.to, e.chat_type, (e.payload as { bodies: { msg: string }[] }).bodies[0]!.msg]), [
    ['erin', gid, 'groupchat', 'hello group'], ['admin', gid, 'groupchat', 'old style'],
  ]);

  assert.equal((await admin.put(`${G}/${gid}`, { newowner: 'erin' })).status, 200);
  assert.deepEqual((await detailOf(gid)).affiliations, [{ owner: 'erin' }, { member: 'frank' }, { member: 'dave' }]);
  assert.equal((await admin.delete(`${G}/${gid}`)).status, 200);
  // The history stays; the group takes no new messages.
  assert.equal((await exported()).length, 2);
  assertNotFound(await admin.post('/demo/chat/messages', { target_type: 'chatgroups', target: [gid], msg: { type: 'txt', msg: 'late' } }));
  assertNotFound(await admin.post(`/demo/chat/groups/${gid}/messages`, { msg: { type: 'txt', msg: 'late' } }));
});

test('deleting a user deletes the groups and rooms it owns, and takes it out of the others', async () => {
  await admin.post('/demo/chat/users', [{ username: 'leaver', password: 'pw' }, { username: 'stayer', password: 'pw' }]);
  const owned = await makeGroup({ owner: 'leaver', members: ['stayer'] });
  const other = await makeGroup({ owner: 'stayer', members: ['leaver'] });
  const room = (await admin.post('/demo/chat/chatrooms', { name: 'r', description: 'd', owner: 'leaver' })).body.data.id;
  assert.equal((await admin.delete('/demo/chat/users/leaver')).status, 200);
  assertNotFound(await admin.get(`${G}/${owned}`));
  assertNotFound(await admin.get(`/demo/chat/chatrooms/${room}`));
  assert.deepEqual((await detailOf(other)).affiliations, [{ owner: 'stayer' }]);

  // DELETE /users?limit=N does the same, in another app so that "the oldest" are ours.
  const c = await createApp(s, 'cascade', 'app');
  const api = new Api(s.url, c.token);
  await api.post('/cascade/app/users', ['u1', 'u2', 'u3'].map((username) => ({ username, password: 'pw' })));
  const gone = (await api.post('/cascade/app/chatgroups', { groupname: 'g', desc: 'd', public: true, owner: 'u1', members: ['u3'] })).body.data.groupid;
  const kept = (await api.post('/cascade/app/chatgroups', { groupname: 'g', desc: 'd', public: true, owner: 'u3', members: ['u2'] })).body.data.groupid;
  const del = await api.delete('/cascade/app/users?limit=2');
  assert.deepEqual(del.body.entities.map((e: { username: string }) => e.username), ['u1', 'u2']);
  assertNotFound(await api.get(`/cascade/app/chatgroups/${gone}`));
  assert.deepEqual((await api.get(`/cascade/app/chatgroups/${kept}/users`)).body.data, [{ owner: 'u3' }]);
});

test('every group endpoint needs an admin token of the app: none, an IM user token or another app token is 401', async () => {
  const gid = await makeGroup({ members: ['bob'] });
  const user = await req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'password', username: 'bob', password: 'pw-bob' });
  const other = await createApp(s, 'elsewhere', 'app');
  const callers = [anon, admin.with(user.body.access_token), admin.with(other.token)];
  const calls: [string, string, unknown?][] = [
    ['POST', G, { groupname: 'x', desc: 'd', public: true, owner: 'alice' }], ['GET', G], ['GET', `${G}/${gid}`],
    ['PUT', `${G}/${gid}`, { groupname: 'pwned' }], ['DELETE', `${G}/${gid}`], ['GET', `${G}/${gid}/users`],
    ['POST', `${G}/${gid}/users/dave`], ['POST', `${G}/${gid}/users`, { usernames: ['dave'] }], ['DELETE', `${G}/${gid}/users/bob`],
    ['GET', `${G}/${gid}/blocks/users`], ['POST', `${G}/${gid}/blocks/users/bob`], ['POST', `${G}/${gid}/blocks/users`, { usernames: ['bob'] }],
    ['DELETE', `${G}/${gid}/blocks/users/bob`],
  ];
  for (const caller of callers) {
    for (const [method, path, body] of calls) {
      assertError(await caller.call(method, path, body), 401, 'unauthorized',
        `Subject does not have permission [applications:${method.toLowerCase()}:${appUuid}:/chatgroups]`);
    }
    assertError(await caller.get('/demo/chat/users/bob/joined_chatgroups'), 401, 'unauthorized', `Subject does not have permission [applications:get:${appUuid}:/users]`);
  }
  // Through its own path the other app does not see the group at all.
  const foreign = new Api(s.url, other.token);
  assertNotFound(await foreign.get(`/elsewhere/app/chatgroups/${gid}`));
  assertNotFound(await foreign.delete(`/elsewhere/app/chatgroups/${gid}`));
  assert.deepEqual((await foreign.get('/elsewhere/app/chatgroups')).body.data, []);
  const g = await detailOf(gid);
  assert.equal(g.name, 'g');
  assert.deepEqual(g.affiliations, [{ owner: 'alice' }, { member: 'bob' }]);
});
