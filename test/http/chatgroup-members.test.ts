import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Api, demoToken, req, startTestServer, type TestServer } from '../helpers.js';
import { assertError, assertNotFound, assertOk, ENVELOPE } from './api-assert.js';

let s: TestServer;
let admin: Api;

before(async () => {
  s = await startTestServer();
  admin = new Api(s.url, await demoToken(s));
  const names = ['owner', 'bob', 'Carol', 'dave', 'erin', 'frank', 'gina', 'joiner', 'bulk'];
  const r = await admin.post('/demo/chat/users', names.map((username) => ({ username, password: 'pw' })));
  assert.equal(r.status, 200, r.text);
});
after(() => s.close());

const G = '/demo/chat/chatgroups';

async function makeGroup(members: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const r = await admin.post(G, { groupname: 'g', desc: 'd', public: true, owner: 'owner', members, ...extra });
  assert.equal(r.status, 200, r.text);
  return r.body.data.groupid;
}

const membersOf = async (gid: string): Promise<unknown[]> => {
  const r = await admin.get(`${G}/${gid}/users`);
  assert.equal(r.status, 200, r.text);
  return r.body.data;
};
const blocksOf = async (gid: string): Promise<string[]> => (await admin.get(`${G}/${gid}/blocks/users`)).body.data;

test('members list: the members in the order they joined, then the owner; count', async () => {
  const gid = await makeGroup(['carol', 'bob']);
  const r = await admin.get(`${G}/${gid}/users`);
  assertOk(r, [...ENVELOPE, 'entities', 'data', 'count']);
  assert.equal(r.body.uri, `${s.url}/demo/chat/chatgroups/${gid}/users`);
  assert.deepEqual(r.body.data, [{ member: 'Carol' }, { member: 'bob' }, { owner: 'owner' }]);
  assert.equal(r.body.count, 3);
  assertNotFound(await admin.get(`${G}/99999999999999/users`));
});

test('add one member: {action, result, groupid, user}; twice, the owner or an unknown user is refused', async () => {
  const gid = await makeGroup(['bob']);
  const r = await admin.post(`${G}/${gid}/users/CAROL`);
  assertOk(r, [...ENVELOPE, 'entities', 'data']);
  assert.deepEqual(r.body.data, { result: true, action: 'add_member', groupid: gid, user: 'Carol' });
  assertError(await admin.post(`${G}/${gid}/users/carol`), 403, 'forbidden_op', `can not join this group, reason:user: Carol already in group: ${gid}\n`);
  assertError(await admin.post(`${G}/${gid}/users/owner`), 403, 'forbidden_op', `can not join this group, reason:user: owner already in group: ${gid}\n`);
  assertError(await admin.post(`${G}/${gid}/users/ghost`), 400, 'illegal_argument', "group member ghost doesn't exist");
  assertNotFound(await admin.post(`${G}/99999999999999/users/dave`));
  assert.deepEqual(await membersOf(gid), [{ member: 'bob' }, { member: 'Carol' }, { owner: 'owner' }]);
});

test('add a batch: newmembers lists those who joined; an unknown user refuses the whole batch', async () => {
  const gid = await makeGroup(['bob']);
  const r = await admin.post(`${G}/${gid}/users`, { usernames: ['dave', 'bob', 'erin'] });
  assertOk(r, [...ENVELOPE, 'entities', 'data']);
  assert.deepEqual(r.body.data, { newmembers: ['dave', 'erin'], action: 'add_member', groupid: gid });
  assertError(await admin.post(`${G}/${gid}/users`, { usernames: ['frank', 'username1'] }), 400, 'illegal_argument', "group member username1 doesn't exist");
  for (const body of [{}, { usernames: [] }, { usernames: 'frank' }, { usernames: [1] }, ['frank']]) {
    assertError(await admin.post(`${G}/${gid}/users`, body), 400, 'illegal_argument',
      Array.isArray(body) ? 'the request body must be a JSON object' : 'usernames must be a non-empty array of usernames');
  }
  const many = Array.from({ length: 61 }, (_, i) => `u${i}`);
  assertError(await admin.post(`${G}/${gid}/users`, { usernames: many }), 400, 'illegal_argument', 'at most 60 users can be named in one request');
  assert.deepEqual(await membersOf(gid), [{ member: 'bob' }, { member: 'dave' }, { member: 'erin' }, { owner: 'owner' }]);
});

test('a group may be created with more members than a batch holds, up to maxusers', async () => {
  const names = Array.from({ length: 70 }, (_, i) => `crowd${i}`);
  for (const part of [names.slice(0, 35), names.slice(35)]) {
    assert.equal((await admin.post('/demo/chat/users', part.map((username) => ({ username, password: 'pw' })))).status, 200);
  }
  const gid = await makeGroup(names, { maxusers: 71 });
  assert.equal((await membersOf(gid)).length, 71);
  const full = await admin.post(G, { groupname: 'g', desc: 'd', public: true, owner: 'owner', members: names, maxusers: 70 });
  assert.equal(full.status, 403, full.text);
  assert.match(full.body.error_description, /^can not join this group, reason:group: \d+ has reached maxusers 70$/);
});

test('remove one member: an object; several: an array; the owner and non-members are refused, nothing removed', async () => {
  const gid = await makeGroup(['bob', 'carol', 'dave', 'erin']);
  const one = await admin.delete(`${G}/${gid}/users/BOB`);
  assertOk(one, [...ENVELOPE, 'entities', 'data']);
  assert.deepEqual(one.body.data, { result: true, action: 'remove_member', groupid: gid, user: 'bob' });
  assertError(await admin.delete(`${G}/${gid}/users/bob`), 403, 'forbidden_op', 'users [bob] are not members of this group!');
  assertError(await admin.delete(`${G}/${gid}/users/owner`), 403, 'forbidden_op', 'forbidden operation on group owner!');
  assertError(await admin.delete(`${G}/${gid}/users/carol,u9,ghost`), 403, 'forbidden_op', 'users [u9, ghost] are not members of this group!');
  assertError(await admin.delete(`${G}/${gid}/users/carol,owner`), 403, 'forbidden_op', 'forbidden operation on group owner!');
  assert.equal((await membersOf(gid)).length, 4);
  // The official Node example writes a double slash before chatgroups.
  const several = await admin.delete(`/demo/chat//chatgroups/${gid}/users/carol,dave`);
  assert.equal(several.status, 200, several.text);
  assert.deepEqual(several.body.data, [
    { result: true, action: 'remove_member', groupid: gid, user: 'Carol' },
    { result: true, action: 'remove_member', groupid: gid, user: 'dave' },
  ]);
  assert.deepEqual(await membersOf(gid), [{ member: 'erin' }, { owner: 'owner' }]);
  assertNotFound(await admin.delete(`${G}/99999999999999/users/erin`));
});

test('maxusers (owner included) caps adding, one by one or in a batch, until it is raised', async () => {
  const gid = await makeGroup(['bob'], { maxusers: 3 });
  assert.equal((await admin.post(`${G}/${gid}/users/carol`)).status, 200);
  const full = `can not join this group, reason:group: ${gid} has reached maxusers 3`;
  assertError(await admin.post(`${G}/${gid}/users/dave`), 403, 'forbidden_op', full);
  assertError(await admin.post(`${G}/${gid}/users`, { usernames: ['dave', 'erin'] }), 403, 'forbidden_op', full);
  // A batch of members already in the group adds nobody and so fits.
  assert.deepEqual((await admin.post(`${G}/${gid}/users`, { usernames: ['bob'] })).body.data.newmembers, []);
  assert.equal((await admin.put(`${G}/${gid}`, { maxusers: 5 })).status, 200);
  assert.deepEqual((await admin.post(`${G}/${gid}/users`, { usernames: ['dave', 'erin'] })).body.data.newmembers, ['dave', 'erin']);
  assertError(await admin.post(`${G}/${gid}/users/frank`), 403, 'forbidden_op', `can not join this group, reason:group: ${gid} has reached maxusers 5`);
});

test('concurrent adds cannot push a group past maxusers', async () => {
  const gid = await makeGroup(['bob'], { maxusers: 3 });
  const rs = await Promise.all(['carol', 'dave', 'erin', 'frank', 'gina'].map((u) => admin.post(`${G}/${gid}/users/${u}`)));
  assert.deepEqual(rs.map((r) => r.status).sort(), [200, 403, 403, 403, 403]);
  assert.equal((await membersOf(gid)).length, 3);
});

test('a user may own or belong to at most 500 groups; chat rooms are counted apart', async () => {
  const app = (await s.cv.services.store.getApp('demo', 'chat'))!;
  // Set-up through the service: 500 requests would only test the same code more slowly.
  for (let i = 0; i < 499; i++) await s.cv.services.groups.create(app, 'group', { groupname: `q${i}`, owner: 'bulk', members: ['joiner'] });
  await s.cv.services.groups.create(app, 'group', { groupname: 'mine', owner: 'joiner' });
  const gid = await makeGroup(['bob']);
  const tooMany = 'can not join this group, reason：user joiner has joined too many groups/chatroom!';
  assertError(await admin.post(`${G}/${gid}/users/joiner`), 403, 'forbidden_op', tooMany);
  assertError(await admin.post(`${G}/${gid}/users`, { usernames: ['dave', 'joiner'] }), 403, 'forbidden_op', tooMany);
  assertError(await admin.post(G, { groupname: 'g', desc: 'd', public: true, owner: 'owner', members: ['joiner'] }), 403, 'forbidden_op', tooMany);
  assertError(await admin.post(G, { groupname: 'g', desc: 'd', public: true, owner: 'joiner' }), 403, 'forbidden_op', tooMany);
  assert.deepEqual(await membersOf(gid), [{ member: 'bob' }, { owner: 'owner' }]);
  const room = await admin.post('/demo/chat/chatrooms', { name: 'r', description: 'd', owner: 'owner', members: ['joiner'] });
  assert.equal(room.status, 200, room.text);
  // Leaving one group makes room for another.
  const joined = (await admin.get('/demo/chat/users/joiner/joined_chatgroups')).body;
  assert.equal(joined.count, 500);
  assert.equal((await admin.delete(`${G}/${joined.data[0].groupid}/users/joiner`)).status, 200);
  assert.equal((await admin.post(`${G}/${gid}/users/joiner`)).status, 200);
});

test('group block list: block one, a batch (one element answers one object), the owner and non-members fail', async () => {
  const gid = await makeGroup(['bob', 'carol', 'dave', 'erin']);
  const empty = await admin.get(`${G}/${gid}/blocks/users`);
  assertOk(empty, [...ENVELOPE, 'entities', 'data', 'count']);
  assert.deepEqual([empty.body.data, empty.body.count], [[], 0]);

  const one = await admin.post(`${G}/${gid}/blocks/users/BOB`);
  assertOk(one, [...ENVELOPE, 'entities', 'data']);
  assert.deepEqual(one.body.data, { result: true, action: 'add_blocks', groupid: gid, user: 'bob' });
  // A blocked user leaves the group and cannot come back until unblocked.
  assert.deepEqual(await blocksOf(gid), ['bob']);
  assert.equal((await membersOf(gid)).some((m) => JSON.stringify(m) === '{"member":"bob"}'), false);
  assertError(await admin.post(`${G}/${gid}/users/bob`), 403, 'forbidden_op', `can not join this group, reason:user: bob is blocked in group: ${gid}`);
  assertError(await admin.post(`${G}/${gid}/users`, { usernames: ['frank', 'bob'] }), 403, 'forbidden_op', `can not join this group, reason:user: bob is blocked in group: ${gid}`);
  assertError(await admin.post(`${G}/${gid}/blocks/users/owner`), 403, 'forbidden_op', 'forbidden operation on group owner!');
  assertError(await admin.post(`${G}/${gid}/blocks/users/frank`), 403, 'forbidden_op', `user: frank doesn't exist in group: ${gid}`);
  // Blocking again changes nothing.
  assert.equal((await admin.post(`${G}/${gid}/blocks/users/bob`)).status, 200);

  const batch = await admin.post(`${G}/${gid}/blocks/users`, { usernames: ['carol', 'user3', 'owner'] });
  assert.equal(batch.status, 200, batch.text);
  assert.deepEqual(batch.body.data, [
    { result: true, action: 'add_blocks', groupid: gid, user: 'Carol' },
    { result: false, action: 'add_blocks', groupid: gid, user: 'user3', reason: `user: user3 doesn't exist in group: ${gid}` },
    { result: false, action: 'add_blocks', groupid: gid, user: 'owner', reason: 'forbidden operation on group owner!' },
  ]);
  const single = await admin.post(`${G}/${gid}/blocks/users`, { usernames: ['dave'] });
  assert.deepEqual(single.body.data, { result: true, action: 'add_blocks', groupid: gid, user: 'dave' });
  const failed = await admin.post(`${G}/${gid}/blocks/users`, { usernames: ['gina'] });
  assert.equal(failed.status, 200, failed.text);
  assert.deepEqual(failed.body.data, { result: false, action: 'add_blocks', groupid: gid, user: 'gina', reason: `user: gina doesn't exist in group: ${gid}` });
  assertError(await admin.post(`${G}/${gid}/blocks/users`, { usernames: [] }), 400, 'illegal_argument', 'usernames must be a non-empty array of usernames');
  const list = await admin.get(`${G}/${gid}/blocks/users`);
  assert.deepEqual([list.body.data, list.body.count], [['bob', 'Carol', 'dave'], 3]);
  assertNotFound(await admin.get(`${G}/99999999999999/blocks/users`));
  assertNotFound(await admin.post(`${G}/99999999999999/blocks/users/bob`));
});

test('group block list: remove one (an object) or several (an array); a user not on it is refused', async () => {
  const gid = await makeGroup(['bob', 'carol', 'dave']);
  await admin.post(`${G}/${gid}/blocks/users`, { usernames: ['bob', 'carol', 'dave'] });
  const one = await admin.delete(`${G}/${gid}/blocks/users/bob`);
  assertOk(one, [...ENVELOPE, 'entities', 'data']);
  assert.deepEqual(one.body.data, { result: true, action: 'remove_blocks', groupid: gid, user: 'bob' });
  assertError(await admin.delete(`${G}/${gid}/blocks/users/bob`), 403, 'forbidden_op', `user: bob is not blocked in group: ${gid}`);
  const several = await admin.delete(`${G}/${gid}/blocks/users/carol,erin,DAVE`);
  assert.equal(several.status, 200, several.text);
  assert.deepEqual(several.body.data, [
    { result: true, action: 'remove_blocks', groupid: gid, user: 'Carol' },
    { result: false, action: 'remove_blocks', groupid: gid, user: 'erin', reason: `user: erin is not blocked in group: ${gid}` },
    { result: true, action: 'remove_blocks', groupid: gid, user: 'dave' },
  ]);
  assert.deepEqual(await blocksOf(gid), []);
  // Unblocked users are not members again until added.
  assert.deepEqual(await membersOf(gid), [{ owner: 'owner' }]);
  assert.equal((await admin.post(`${G}/${gid}/users/bob`)).status, 200);
});

test('joined_chatgroups lists the groups a user owns or belongs to, not chat rooms; unknown user 404', async () => {
  await admin.post('/demo/chat/users', [{ username: 'solo', password: 'pw' }, { username: 'pal', password: 'pw' }, { username: 'loner', password: 'pw' }]);
  const a = (await admin.post(G, { groupname: 'A', desc: 'd', public: true, owner: 'solo' })).body.data.groupid;
  const b = (await admin.post(G, { groupname: 'B', desc: 'd', public: true, owner: 'pal', members: ['solo'] })).body.data.groupid;
  await admin.post('/demo/chat/chatrooms', { name: 'R', description: 'd', owner: 'solo' });
  const r = await admin.get('/demo/chat/users/SOLO/joined_chatgroups');
  assertOk(r, [...ENVELOPE, 'entities', 'data', 'count']);
  assert.equal(r.body.path, '/users');
  assert.deepEqual(r.body.data, [{ groupid: a, groupname: 'A' }, { groupid: b, groupname: 'B' }]);
  assert.equal(r.body.count, 2);
  const uuid = (await admin.get('/demo/chat/users/pal')).body.entities[0].uuid;
  assert.deepEqual((await admin.get(`/demo/chat/users/${uuid}/joined_chatgroups`)).body.data, [{ groupid: b, groupname: 'B' }]);
  // (Not a user of the other tests here: one of them joins a group whose race any may win.)
  assert.deepEqual((await admin.get('/demo/chat/users/loner/joined_chatgroups')).body.data, []);
  assertNotFound(await admin.get('/demo/chat/users/ghost/joined_chatgroups'));
  const user = await req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'password', username: 'solo', password: 'pw' });
  assert.equal((await admin.with(user.body.access_token).get('/demo/chat/users/solo/joined_chatgroups')).status, 401);
});
