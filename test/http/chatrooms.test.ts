import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Api, createApp, demoToken, startTestServer, type TestServer } from '../helpers.js';
import { assertError, assertNotFound, assertOk, ENVELOPE } from './api-assert.js';

let s: TestServer;
let admin: Api;
let appUuid: string;

before(async () => {
  s = await startTestServer();
  admin = new Api(s.url, await demoToken(s));
  appUuid = (await s.cv.services.store.getApp('demo', 'chat'))!.uuid;
  const names = ['rita', 'u1', 'u2', 'U3', 'u4', 'u5'];
  const r = await admin.post('/demo/chat/users', names.map((username) => ({ username, password: 'pw' })));
  assert.equal(r.status, 200, r.text);
});
after(() => s.close());

const R = '/demo/chat/chatrooms';

async function makeRoom(body: Record<string, unknown> = {}): Promise<string> {
  const r = await admin.post(R, { name: 'room', description: 'd', owner: 'rita', ...body });
  assert.equal(r.status, 200, r.text);
  return r.body.data.id;
}

async function detailOf(id: string): Promise<Record<string, unknown>> {
  const r = await admin.get(`${R}/${id}`);
  assert.equal(r.status, 200, r.text);
  return r.body.data[0];
}

test('create answers data.id; details carry name, description, maxusers and the affiliations', async () => {
  const r = await admin.post(R, { name: 'lobby', description: 'all welcome', maxusers: 5000, owner: 'rita', members: ['u1', 'u3'] });
  assertOk(r, [...ENVELOPE, 'entities', 'data']);
  assert.equal(r.body.path, '/chatrooms');
  assert.equal(r.body.uri, `${s.url}/demo/chat/chatrooms`);
  assert.deepEqual(Object.keys(r.body.data), ['id']);
  const id = r.body.data.id;
  assert.match(id, /^\d{13,16}$/);
  const d = await admin.get(`${R}/${id}`);
  assertOk(d, [...ENVELOPE, 'entities', 'data', 'count']);
  const room = d.body.data[0];
  assert.equal(typeof room.created, 'number');
  delete room.created;
  assert.deepEqual(room, {
    id, name: 'lobby', description: 'all welcome', public: true, membersonly: false, allowinvites: false, maxusers: 5000,
    affiliations_count: 3, affiliations: [{ owner: 'rita' }, { member: 'u1' }, { member: 'U3' }],
  });
});

test('the E3 client body: groupname and desc, the owner also among members', async () => {
  const id = await makeRoom({ name: undefined, description: undefined, groupname: 'chatroom title', desc: 'chatroom description', members: ['rita', 'u2'] });
  const room = await detailOf(id);
  assert.equal(room.name, 'chatroom title');
  assert.equal(room.description, 'chatroom description');
  assert.equal(room.maxusers, 200);
  assert.deepEqual(room.affiliations, [{ owner: 'rita' }, { member: 'u2' }]);
});

test('create refuses bad bodies with 400 illegal_argument', async () => {
  const ok = { name: 'x', description: 'd', owner: 'rita' };
  const cases: [unknown, string][] = [
    [{ ...ok, name: undefined }, 'name must be provided'],
    [{ ...ok, owner: 'ghost' }, "group owner ghost doesn't exist"],
    [{ ...ok, members: ['u1', 'ghost'] }, "group member ghost doesn't exist"],
    [{ ...ok, maxusers: 10001 }, 'maxusers must be an integer from 1 to 10000'],
    [{ ...ok, description: 'd'.repeat(513) }, 'description is longer than 512 characters'],
  ];
  for (const [body, description] of cases) assertError(await admin.post(R, body), 400, 'illegal_argument', description);
});

test('list: id, name, owner (the plain username), affiliations_count; paged with limit and cursor', async () => {
  const ids = [await makeRoom({ name: 'p1' }), await makeRoom({ name: 'p2', members: ['u1'] }), await makeRoom({ name: 'p3' })];
  const r = await admin.get(R);
  assertOk(r, [...ENVELOPE, 'entities', 'data', 'count']);
  assert.deepEqual(r.body.data[1], { id: ids[1], name: 'p2', owner: 'rita', affiliations_count: 2 });
  const all = r.body.data.map((x: { id: string }) => x.id);
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await admin.get(`${R}?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(page.status, 200, page.text);
    for (const item of page.body.data) assert.deepEqual(Object.keys(item), ['id', 'name', 'owner', 'affiliations_count']);
    seen.push(...page.body.data.map((x: { id: string }) => x.id));
    cursor = page.body.cursor;
  } while (cursor);
  assert.deepEqual(seen, all);
});

test('update: name, description, maxusers answer true; groupname is accepted for the name; group-only keys are invalid', async () => {
  const id = await makeRoom({ members: ['u1'] });
  const r = await admin.put(`${R}/${id}`, { name: 'renamed', description: 'new', maxusers: 10 });
  assertOk(r, [...ENVELOPE, 'entities', 'data']);
  assert.deepEqual(r.body.data, { name: true, description: true, maxusers: true });
  assert.deepEqual((await admin.put(`${R}/${id}`, { groupname: 'again' })).body.data, { groupname: true });
  const room = await detailOf(id);
  assert.deepEqual([room.name, room.description, room.maxusers], ['again', 'new', 10]);
  assertError(await admin.put(`${R}/${id}`, { id: '1' }), 400, 'invalid_parameter', 'some of [id] are not valid fields');
  assertError(await admin.put(`${R}/${id}`, { public: false, membersonly: true }), 400, 'invalid_parameter', 'some of [public, membersonly] are not valid fields');
  assertError(await admin.put(`${R}/${id}`, { maxusers: 10001 }), 400, 'illegal_argument', 'maxusers must be an integer from 1 to 10000');
  assertNotFound(await admin.put(`${R}/99999999999999`, { name: 'x' }));
});

test('transfer ownership with newowner; the same errors as groups', async () => {
  const id = await makeRoom({ members: ['u1'] });
  assertError(await admin.put(`${R}/${id}`, { newowner: 'rita' }), 403, 'forbidden_op', 'new owner and old owner are the same');
  assertError(await admin.put(`${R}/${id}`, { newowner: 'u2' }), 403, 'forbidden_op', `user: u2 doesn't exist in group: ${id}`);
  assert.deepEqual((await admin.put(`${R}/${id}`, { newowner: 'U1' })).body.data, { newowner: true });
  assert.deepEqual((await detailOf(id)).affiliations, [{ owner: 'u1' }, { member: 'rita' }]);
});

test('delete answers {success, id}', async () => {
  const id = await makeRoom();
  const r = await admin.delete(`${R}/${id}`);
  assertOk(r, [...ENVELOPE, 'entities', 'data']);
  assert.deepEqual(r.body.data, { success: true, id });
  assertNotFound(await admin.get(`${R}/${id}`));
  assertNotFound(await admin.delete(`${R}/${id}`));
});

test('members: list, add one, add a batch, remove one and several, with "id" in place of "groupid"', async () => {
  const id = await makeRoom({ members: ['u1'] });
  // The official Node example adds a trailing slash here.
  const list = await admin.get(`${R}/${id}/users/`);
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.body.data, [{ member: 'u1' }, { owner: 'rita' }]);
  assert.deepEqual((await admin.post(`${R}/${id}/users/u2`)).body.data, { result: true, action: 'add_member', id, user: 'u2' });
  assertError(await admin.post(`${R}/${id}/users/u2`), 403, 'forbidden_op', `can not join this group, reason:user: u2 already in group: ${id}\n`);
  assertError(await admin.post(`${R}/${id}/users/ghost`), 400, 'illegal_argument', "group member ghost doesn't exist");
  assert.deepEqual((await admin.post(`${R}/${id}/users`, { usernames: ['u3', 'u4'] })).body.data, { newmembers: ['U3', 'u4'], action: 'add_member', id });
  assert.deepEqual((await admin.delete(`${R}/${id}/users/u4`)).body.data, { result: true, action: 'remove_member', id, user: 'u4' });
  assertError(await admin.delete(`${R}/${id}/users/u4`), 403, 'forbidden_op', 'users [u4] are not members of this group!');
  assert.deepEqual((await admin.delete(`${R}/${id}/users/u1,u2`)).body.data, [
    { result: true, action: 'remove_member', id, user: 'u1' }, { result: true, action: 'remove_member', id, user: 'u2' },
  ]);
  assert.deepEqual((await admin.get(`${R}/${id}/users`)).body.data, [{ member: 'U3' }, { owner: 'rita' }]);
  const full = await makeRoom({ maxusers: 2, members: ['u1'] });
  assertError(await admin.post(`${R}/${full}/users/u2`), 403, 'forbidden_op', `can not join this group, reason:group: ${full} has reached maxusers 2`);
});

test('room block lists work as for groups, with "id"', async () => {
  const id = await makeRoom({ members: ['u1', 'u2'] });
  assert.deepEqual((await admin.post(`${R}/${id}/blocks/users/u1`)).body.data, { result: true, action: 'add_blocks', id, user: 'u1' });
  assert.deepEqual((await admin.post(`${R}/${id}/blocks/users`, { usernames: ['u2'] })).body.data, { result: true, action: 'add_blocks', id, user: 'u2' });
  assert.deepEqual((await admin.get(`${R}/${id}/blocks/users`)).body.data, ['u1', 'u2']);
  assertError(await admin.post(`${R}/${id}/blocks/users/rita`), 403, 'forbidden_op', 'forbidden operation on group owner!');
  assert.deepEqual((await admin.delete(`${R}/${id}/blocks/users/u1,u2`)).body.data, [
    { result: true, action: 'remove_blocks', id, user: 'u1' }, { result: true, action: 'remove_blocks', id, user: 'u2' },
  ]);
});

test('joined_chatrooms lists {id, name} of the rooms a user owns or is in', async () => {
  await admin.post('/demo/chat/users', { username: 'visitor', password: 'pw' });
  const a = await makeRoom({ name: 'first', members: ['visitor'] });
  const b = await makeRoom({ name: 'second', owner: 'visitor' });
  await admin.post('/demo/chat/chatgroups', { groupname: 'g', desc: 'd', public: true, owner: 'visitor' });
  const r = await admin.get('/demo/chat/users/visitor/joined_chatrooms');
  assertOk(r, [...ENVELOPE, 'entities', 'data', 'count']);
  assert.deepEqual(r.body.data, [{ id: a, name: 'first' }, { id: b, name: 'second' }]);
  assert.equal(r.body.count, 2);
  assertNotFound(await admin.get('/demo/chat/users/ghost/joined_chatrooms'));
});

test('messages to rooms are stored once per room as chatroom; an unknown room (or a group id) is 404', async () => {
  const id = await makeRoom({ members: ['u1', 'u2'] });
  const group = (await admin.post('/demo/chat/chatgroups', { groupname: 'g', desc: 'd', public: true, owner: 'rita' })).body.data.groupid;
  const sent = await admin.post('/demo/chat/messages?useMsgId=true', { target_type: 'chatrooms', target: [id], msg: { type: 'txt', msg: 'hi room' }, from: 'u1' });
  assert.equal(sent.status, 200, sent.text);
  const msgId = sent.body.data[id];
  assert.match(msgId, /^\d+$/);
  const r = await admin.get(`/demo/chat/chatmessages?ql=${encodeURIComponent(`select * where to='${id}'`)}`);
  assert.equal(r.body.entities.length, 1);
  assert.deepEqual([r.body.entities[0].msg_id, r.body.entities[0].chat_type, r.body.entities[0].from], [msgId, 'chatroom', 'u1']);
  const send = (target: string[]) => admin.post('/demo/chat/messages', { target_type: 'chatrooms', target, msg: { type: 'txt', msg: 'x' } });
  assertNotFound(await send(['99999999999999']));
  assertNotFound(await send([id, group]));
  assert.equal((await admin.get(`/demo/chat/chatmessages?ql=${encodeURIComponent(`select * where to='${id}'`)}`)).body.entities.length, 1);
});

test('room endpoints need an admin token of the app, and other apps do not see the rooms', async () => {
  const id = await makeRoom();
  const other = await createApp(s, 'roomless', 'app');
  for (const caller of [admin.with(undefined), admin.with(other.token)]) {
    assertError(await caller.get(`${R}/${id}`), 401, 'unauthorized', `Subject does not have permission [applications:get:${appUuid}:/chatrooms]`);
    assertError(await caller.delete(`${R}/${id}`), 401, 'unauthorized', `Subject does not have permission [applications:delete:${appUuid}:/chatrooms]`);
    assertError(await caller.post(`${R}/${id}/users/u1`), 401, 'unauthorized', `Subject does not have permission [applications:post:${appUuid}:/chatrooms]`);
  }
  assertNotFound(await new Api(s.url, other.token).get(`/roomless/app/chatrooms/${id}`));
  assertNotFound(await admin.get(`/demo/chat/chatgroups/${id}`));
  assert.equal((await detailOf(id)).name, 'room');
});
