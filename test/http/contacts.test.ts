import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Api, createApp, type TestServer } from '../helpers.js';
import { assertError, assertNoPermission, assertNotFound, assertOk, ENVELOPE } from './api-assert.js';
import { startDemoUsers, type DemoUsers } from './demo-users.js';

let d: DemoUsers;
let s: TestServer;
let admin: Api;
let anon: Api;
let appUuid: string;
let users: DemoUsers['users'];

before(async () => {
  d = await startDemoUsers(['ann', 'ben', 'cat', 'dan', 'eve', 'fay', 'Gus', 'hal', 'ivy', 'jon', 'kim', 'lee', 'max', 'ned']);
  ({ s, admin, anon, appUuid, users } = d);
});
after(() => s.close());

const P = '/demo/chat/users';
const contactsOf = async (u: string): Promise<string[]> => {
  const r = await admin.get(`${P}/${u}/contacts/users`);
  assert.equal(r.status, 200, r.text);
  return r.body.data;
};
const blocksOf = async (u: string): Promise<string[]> => {
  const r = await admin.get(`${P}/${u}/blocks/users`);
  assert.equal(r.status, 200, r.text);
  return r.body.data;
};

test('adding a contact makes both users friends and answers entities: [friend]', async () => {
  const r = await admin.post(`${P}/ann/contacts/users/ben`);
  assertOk(r, [...ENVELOPE, 'entities']);
  assert.equal(r.body.action, 'post');
  assert.equal(r.body.application, appUuid);
  assert.deepEqual(r.body.params, {});
  assert.equal(r.body.path, '/users/ann/contacts/users/ben');
  assert.equal(r.body.uri, `${s.url}/demo/chat/users/ann/contacts/users/ben`);
  assert.equal(r.body.organization, 'demo');
  assert.equal(r.body.applicationName, 'chat');
  assert.deepEqual(r.body.entities, [users.get('ben')]);
  assert.deepEqual(await contactsOf('ann'), ['ben']);
  assert.deepEqual(await contactsOf('ben'), ['ann']);
});

test('the contact list answers entities: [] and data: [usernames] in the order friends were added', async () => {
  for (const f of ['dan', 'Gus', 'cat']) assert.equal((await admin.post(`${P}/eve/contacts/users/${f}`)).status, 200);
  const r = await admin.get(`${P}/eve/contacts/users`);
  assertOk(r, [...ENVELOPE, 'entities', 'data', 'count']);
  assert.equal(r.body.action, 'get');
  assert.equal(r.body.path, '/users/eve/contacts/users');
  assert.equal(r.body.uri, `${s.url}/demo/chat/users/eve/contacts/users`);
  assert.deepEqual(r.body.entities, []);
  assert.deepEqual(r.body.data, ['dan', 'Gus', 'cat']);
  assert.equal(r.body.count, 3);
  const none = await admin.get(`${P}/hal/contacts/users`);
  assert.deepEqual(none.body.data, []);
  assert.equal(none.body.count, 0);
});

test('adding a friend twice (from either side, in any case) is an idempotent 200', async () => {
  for (const [o, f] of [['fay', 'hal'], ['fay', 'hal'], ['HAL', 'FAY'], ['fay', String(users.get('hal')!.uuid)]]) {
    const r = await admin.post(`${P}/${o}/contacts/users/${f}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.entities[0].username, o === 'HAL' ? 'fay' : 'hal');
  }
  assert.deepEqual(await contactsOf('fay'), ['hal']);
  assert.deepEqual(await contactsOf('hal'), ['fay']);
});

test('removing a contact ends the friendship both ways and answers entities: [removed friend]', async () => {
  assert.equal((await admin.post(`${P}/ivy/contacts/users/jon`)).status, 200);
  assert.equal((await admin.post(`${P}/ivy/contacts/users/kim`)).status, 200);
  // Removed by the other side of the friendship.
  const r = await admin.delete(`${P}/jon/contacts/users/ivy`);
  assertOk(r, [...ENVELOPE, 'entities']);
  assert.equal(r.body.action, 'delete');
  assert.equal(r.body.path, '/users/jon/contacts/users/ivy');
  assert.deepEqual(r.body.entities, [users.get('ivy')]);
  assert.deepEqual(await contactsOf('ivy'), ['kim']);
  assert.deepEqual(await contactsOf('jon'), []);
  // Removing someone who is not a friend changes nothing and is no error.
  const again = await admin.delete(`${P}/ivy/contacts/users/jon`);
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.body.entities, [users.get('jon')]);
  assert.deepEqual(await contactsOf('ivy'), ['kim']);
  // And they can become friends again.
  assert.equal((await admin.post(`${P}/jon/contacts/users/ivy`)).status, 200);
  assert.deepEqual(await contactsOf('ivy'), ['kim', 'jon']);
});

test('contacts: unknown owner or friend is 404, adding or removing oneself is 400', async () => {
  assertNotFound(await admin.post(`${P}/ghost/contacts/users/ann`));
  assertNotFound(await admin.post(`${P}/ann/contacts/users/ghost`));
  assertNotFound(await admin.delete(`${P}/ghost/contacts/users/ann`));
  assertNotFound(await admin.delete(`${P}/ann/contacts/users/ghost`));
  assertNotFound(await admin.get(`${P}/ghost/contacts/users`));
  assertError(await admin.post(`${P}/ann/contacts/users/ANN`), 400, 'illegal_argument', 'a user cannot add itself as a contact');
  assertError(await admin.delete(`${P}/ann/contacts/users/ann`), 400, 'illegal_argument', 'a user cannot remove itself as a contact');
  assert.deepEqual(await contactsOf('ann'), ['ben']);
});

test('the block list answers only action, uri, entities: [], data, timestamp, duration', async () => {
  const empty = await admin.get(`${P}/lee/blocks/users`);
  assertOk(empty, ['action', 'uri', 'entities', 'data', 'timestamp', 'duration']);
  assert.equal(empty.body.action, 'get');
  assert.equal(empty.body.uri, `${s.url}/demo/chat/users/lee/blocks/users`);
  assert.deepEqual(empty.body.entities, []);
  assert.deepEqual(empty.body.data, []);
});

test('blocking users answers data: [usernames]; blocking again, duplicates and case do not repeat them', async () => {
  const r = await admin.post(`${P}/lee/blocks/users`, { usernames: ['max', 'ned'] });
  assertOk(r, [...ENVELOPE, 'entities', 'data']);
  assert.equal(r.body.action, 'post');
  assert.equal(r.body.path, '/users/lee/blocks/users');
  assert.deepEqual(r.body.entities, []);
  assert.deepEqual(r.body.data, ['max', 'ned']);
  assert.deepEqual(await blocksOf('lee'), ['max', 'ned']);
  // Already blocked names are answered again; the stored case is what comes back.
  const more = await admin.post(`${P}/lee/blocks/users`, { usernames: ['NED', 'gus', 'GUS'] });
  assert.equal(more.status, 200, more.text);
  assert.deepEqual(more.body.data, ['ned', 'Gus']);
  assert.deepEqual(await blocksOf('lee'), ['max', 'ned', 'Gus']);
  // A single name as a string is a list of one.
  assert.deepEqual((await admin.post(`${P}/lee/blocks/users`, { usernames: 'kim' })).body.data, ['kim']);
  assert.deepEqual(await blocksOf('lee'), ['max', 'ned', 'Gus', 'kim']);
  // Blocking is one-sided.
  assert.deepEqual(await blocksOf('max'), []);
});

test('blocking: missing or invalid usernames is 400, an unknown user 404, oneself 400, and nothing is blocked', async () => {
  const before = await blocksOf('lee');
  const bad = [undefined, {}, { usernames: [] }, { usernames: null }, { usernames: [1] }, { usernames: [''] }, { usernames: { a: 1 } }, ['max'], { names: ['max'] }];
  for (const body of bad) {
    assertError(await admin.post(`${P}/lee/blocks/users`, body), 400, 'illegal_argument', 'usernames must be a non-empty array of usernames');
  }
  const many = Array.from({ length: 101 }, () => 'cat');
  assertError(await admin.post(`${P}/lee/blocks/users`, { usernames: many }), 400, 'illegal_argument', 'at most 100 usernames can be blocked in one request');
  assertNotFound(await admin.post(`${P}/lee/blocks/users`, { usernames: ['cat', 'ghost'] }));
  assertError(await admin.post(`${P}/lee/blocks/users`, { usernames: ['cat', 'Lee'] }), 400, 'illegal_argument', 'a user cannot block itself');
  assertNotFound(await admin.post(`${P}/ghost/blocks/users`, { usernames: ['cat'] }));
  assertNotFound(await admin.get(`${P}/ghost/blocks/users`));
  assert.deepEqual(await blocksOf('lee'), before);
  // 100 names are fine.
  assert.equal((await admin.post(`${P}/lee/blocks/users`, { usernames: Array.from({ length: 100 }, () => 'cat') })).status, 200);
  assert.deepEqual(await blocksOf('lee'), [...before, 'cat']);
});

test('unblocking answers entities: [unblocked user]; unknown users are 404, oneself 400, not blocked 200', async () => {
  const r = await admin.delete(`${P}/lee/blocks/users/NED`);
  assertOk(r, [...ENVELOPE, 'entities']);
  assert.equal(r.body.action, 'delete');
  assert.equal(r.body.path, '/users/lee/blocks/users/NED');
  assert.deepEqual(r.body.entities, [users.get('ned')]);
  assert.equal((await blocksOf('lee')).includes('ned'), false);
  const again = await admin.delete(`${P}/lee/blocks/users/ned`);
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.body.entities, [users.get('ned')]);
  assertNotFound(await admin.delete(`${P}/lee/blocks/users/ghost`));
  assertNotFound(await admin.delete(`${P}/ghost/blocks/users/ned`));
  assertError(await admin.delete(`${P}/lee/blocks/users/lee`), 400, 'illegal_argument', 'a user cannot unblock itself');
});

test('blocking a friend keeps the friendship; contacts and blocks are separate lists', async () => {
  assert.equal((await admin.post(`${P}/cat/contacts/users/dan`)).status, 200);
  assert.equal((await admin.post(`${P}/cat/blocks/users`, { usernames: ['dan'] })).status, 200);
  assert.deepEqual(await contactsOf('cat'), ['eve', 'dan']);
  assert.deepEqual(await blocksOf('cat'), ['dan']);
  assert.equal((await admin.delete(`${P}/cat/contacts/users/dan`)).status, 200);
  assert.deepEqual(await blocksOf('cat'), ['dan']);
});

test('a deleted user leaves every contact list and block list', async () => {
  const r = await admin.post('/demo/chat/users', [{ username: 'tmp1', password: 'pw' }, { username: 'tmp2', password: 'pw' }]);
  assert.equal(r.status, 200, r.text);
  assert.equal((await admin.post(`${P}/tmp1/contacts/users/ann`)).status, 200);
  assert.equal((await admin.post(`${P}/tmp1/blocks/users`, { usernames: ['tmp2'] })).status, 200);
  assert.equal((await admin.post(`${P}/ann/blocks/users`, { usernames: ['tmp1'] })).status, 200);
  assert.deepEqual(await contactsOf('ann'), ['ben', 'tmp1']);
  assert.equal((await admin.delete(`${P}/tmp1`)).status, 200);
  assert.deepEqual(await contactsOf('ann'), ['ben']);
  assert.deepEqual(await blocksOf('ann'), []);
  // A new user of the same name starts with empty lists.
  assert.equal((await admin.post('/demo/chat/users', { username: 'tmp1', password: 'pw' })).status, 200);
  assert.deepEqual(await contactsOf('tmp1'), []);
  assert.deepEqual(await blocksOf('tmp1'), []);
});

test('an IM user reads and manages its own contacts and blocks, and nobody else\'s', async () => {
  const me = await d.userApi('kim');
  assert.equal((await me.post(`${P}/kim/contacts/users/max`)).status, 200);
  assert.deepEqual((await me.get(`${P}/kim/contacts/users`)).body.data, ['ivy', 'max']);
  assert.deepEqual(await contactsOf('max'), ['kim']);
  assert.equal((await me.delete(`${P}/KIM/contacts/users/max`)).status, 200);
  assert.deepEqual((await me.post(`${P}/kim/blocks/users`, { usernames: ['max'] })).body.data, ['max']);
  assert.deepEqual((await me.get(`${P}/kim/blocks/users`)).body.data, ['max']);
  assert.equal((await me.delete(`${P}/kim/blocks/users/max`)).status, 200);
  assert.deepEqual((await me.get(`${P}/${String(users.get('kim')!.uuid)}/blocks/users`)).body.data, []);

  const calls: [string, () => ReturnType<Api['get']>][] = [
    ['get', () => me.get(`${P}/ann/contacts/users`)],
    ['post', () => me.post(`${P}/ann/contacts/users/kim`)],
    ['delete', () => me.delete(`${P}/ann/contacts/users/ben`)],
    ['get', () => me.get(`${P}/ann/blocks/users`)],
    ['post', () => me.post(`${P}/ann/blocks/users`, { usernames: ['kim'] })],
    ['delete', () => me.delete(`${P}/lee/blocks/users/max`)],
  ];
  for (const [verb, call] of calls) assertNoPermission(await call(), verb, appUuid);
  assert.deepEqual(await contactsOf('ann'), ['ben']);
  assert.deepEqual(await blocksOf('ann'), []);
});

test('no token, or a token of another app (admin or IM user), is 401 and changes nothing', async () => {
  const other = await createApp(s, 'elsewhere', 'chat');
  const otherAdmin = new Api(s.url, other.token);
  assert.equal((await otherAdmin.post('/elsewhere/chat/users', { username: 'ann', password: 'pw-ann' })).status, 200);
  const otherUser = await d.userApi('ann', 'elsewhere', 'chat');
  for (const caller of [anon, otherAdmin, otherUser]) {
    assertNoPermission(await caller.get(`${P}/ann/contacts/users`), 'get', appUuid);
    assertNoPermission(await caller.post(`${P}/ann/contacts/users/cat`), 'post', appUuid);
    assertNoPermission(await caller.delete(`${P}/ann/contacts/users/ben`), 'delete', appUuid);
    assertNoPermission(await caller.get(`${P}/ann/blocks/users`), 'get', appUuid);
    assertNoPermission(await caller.post(`${P}/ann/blocks/users`, { usernames: ['cat'] }), 'post', appUuid);
    assertNoPermission(await caller.delete(`${P}/lee/blocks/users/max`), 'delete', appUuid);
  }
  assert.deepEqual(await contactsOf('ann'), ['ben']);
  assert.deepEqual(await blocksOf('ann'), []);
  assert.deepEqual(await blocksOf('lee'), ['max', 'Gus', 'kim', 'cat']);
  // The other app's ann has a list of her own.
  assert.deepEqual((await otherAdmin.get('/elsewhere/chat/users/ann/contacts/users')).body.data, []);
});
