import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildMessage } from '../../src/domain/messages.js';
import { Api, createApp, req, type Res, type TestServer } from '../helpers.js';
import { assertError, assertNoPermission, assertNotFound, assertOk, ENVELOPE } from './api-assert.js';
import { startDemoUsers, type DemoUsers } from './demo-users.js';

let d: DemoUsers;
let s: TestServer;
let admin: Api;
let anon: Api;
let appUuid: string;
let appId: number;

before(async () => {
  d = await startDemoUsers(['alice', 'Bob', 'carol', 'dave', 'erin']);
  ({ s, admin, anon, appUuid, appId } = d);
});
after(() => s.close());

const P = '/demo/chat/users';
const send = (from: string, to: string[], msg = 'hi', caller = admin): Promise<Res> =>
  caller.post('/demo/chat/messages?useMsgId=true', { target_type: 'users', target: to, msg: { type: 'txt', msg }, from });

test('deactivate answers "Deactivate user" with the user, activated: false; activate answers "activate user"', async () => {
  const before = (await admin.get(`${P}/alice`)).body.entities[0];
  const r = await admin.post(`${P}/alice/deactivate`);
  assertOk(r, [...ENVELOPE, 'entities']);
  assert.equal(r.body.action, 'Deactivate user');
  assert.equal(r.body.application, appUuid);
  assert.equal(r.body.path, '/users');
  assert.equal(r.body.entities.length, 1);
  const u = r.body.entities[0];
  assert.deepEqual({ ...u, modified: before.modified }, { ...before, activated: false });
  assert.ok(u.modified >= before.modified);
  assert.equal((await admin.get(`${P}/alice`)).body.entities[0].activated, false);
  // Deactivating again changes nothing and answers the same.
  const again = await admin.post(`${P}/ALICE/deactivate`);
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.body.entities, [u]);

  const on = await admin.post(`${P}/alice/activate`, {});
  assertOk(on, ENVELOPE);
  assert.equal(on.body.action, 'activate user');
  assert.equal((await admin.get(`${P}/alice`)).body.entities[0].activated, true);
  assert.equal((await admin.post(`${P}/alice/activate`)).status, 200);
});

test('a deactivated user cannot log in, its tokens get 401, and it cannot send; activation restores all of it', async () => {
  const token = await d.userApi('Bob');
  assert.equal((await token.get(`${P}/bob`)).status, 200);
  assert.equal((await send('bob', ['carol'])).status, 200);
  const sentBefore = await s.cv.services.store.countMessages(appId);

  assert.equal((await admin.post(`${P}/bob/deactivate`)).status, 200);
  // Login: the OAuth error body of the token endpoint. A wrong password still says only that.
  const refused = await d.login('Bob');
  assert.equal(refused.status, 401, refused.text);
  assert.deepEqual(refused.body, { error: 'auth_unactivated_appuser', error_description: 'user Bob is deactivated' });
  const wrong = await req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'password', username: 'bob', password: 'nope' });
  assert.deepEqual(wrong.body, { error: 'invalid_grant', error_description: 'invalid username or password' });
  // The token issued before is suspended.
  assertError(await token.get(`${P}/bob`), 401, 'auth_unactivated_appuser', 'user Bob is deactivated');
  assertError(await token.get(`${P}/bob/contacts/users`), 401, 'auth_unactivated_appuser', 'user Bob is deactivated');
  // Sending as that user, in any case of the name and on the pre-2014 route too, is refused; nothing is stored.
  for (const from of ['bob', 'BOB']) {
    assertError(await send(from, ['carol']), 403, 'forbidden_op', 'user Bob is deactivated and cannot send messages');
  }
  assertError(await admin.post('/demo/chat/users/carol/messages', { from: 'Bob', msg: { type: 'text', msg: 'hi' } }), 403, 'forbidden_op',
    'user Bob is deactivated and cannot send messages');
  assert.equal(await s.cv.services.store.countMessages(appId), sentBefore);
  // Messages to a deactivated user are still stored (they wait for it).
  assert.equal((await send('carol', ['bob'])).status, 200);

  assert.equal((await admin.post(`${P}/bob/activate`)).status, 200);
  assert.equal((await token.get(`${P}/bob`)).status, 200);
  assert.equal((await d.login('Bob')).status, 200);
  const ok = await send('bob', ['carol']);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(await s.cv.services.store.countMessages(appId), sentBefore + 2);
});

test('disconnect answers "Disconnect user" with data: {result: true}', async () => {
  const r = await admin.get(`${P}/carol/disconnect`);
  assertOk(r, [...ENVELOPE, 'data']);
  assert.equal(r.body.action, 'Disconnect user');
  assert.deepEqual(r.body.data, { result: true });
  assertNotFound(await admin.get(`${P}/ghost/disconnect`));
});

test('offline_msg_count counts the messages sent to the user and not yet acked', async () => {
  const count = async (u: string): Promise<Res> => admin.get(`${P}/${u}/offline_msg_count`);
  const zero = await count('dave');
  assertOk(zero, ['action', 'uri', 'entities', 'data', 'timestamp', 'duration']);
  assert.equal(zero.body.action, 'get');
  assert.equal(zero.body.uri, `${s.url}/demo/chat/users/dave/offline_msg_count`);
  assert.deepEqual(zero.body.entities, []);
  assert.deepEqual(zero.body.data, { dave: 0 });

  assert.equal((await send('alice', ['dave', 'erin'])).status, 200);
  assert.equal((await send('admin', ['DAVE'])).status, 200);
  assert.equal((await send('erin', ['dave'])).status, 200);
  assert.equal((await send('dave', ['erin'])).status, 200);
  // A group message whose group id happens to equal the username is not the user's (and stored
  // history without recipients waits for nobody).
  await s.cv.services.store.insertMessages([
    buildMessage(appId, { from: 'alice', to: 'dave', chatType: 'groupchat', bodies: [{ type: 'txt', msg: 'g' }], timestamp: 1, msgId: '1' }),
  ]);
  assert.deepEqual((await count('dave')).body.data, { dave: 3 });
  assert.deepEqual((await count('ERIN')).body.data, { erin: 2 });
  // The stored case of the name is the key.
  assert.deepEqual((await count('bob')).body.data, { Bob: 1 });
  assertNotFound(await count('ghost'));
});

test('offline_msg_status: "undelivered" for a message to the user, 404 for an unknown msg_id', async () => {
  const sent = await send('alice', ['carol', 'erin']);
  assert.equal(sent.status, 200, sent.text);
  const toCarol = sent.body.data.carol as string;
  const r = await admin.get(`${P}/carol/offline_msg_status/${toCarol}`);
  // Shaped like the status answer (spec §2.8): no path, uri of the app.
  assertOk(r, [...ENVELOPE.filter((k) => k !== 'path'), 'entities', 'data']);
  assert.equal(r.body.uri, `${s.url}/demo/chat`);
  assert.equal(r.body.action, 'get');
  assert.deepEqual(r.body.entities, []);
  assert.deepEqual(r.body.data, { [toCarol]: 'undelivered' });
  assert.deepEqual((await admin.get(`${P}/CAROL/offline_msg_status/${toCarol}`)).body.data, { [toCarol]: 'undelivered' });
  assertNotFound(await admin.get(`${P}/carol/offline_msg_status/12345`));
  // A message to someone else, or a group message, is not this user's.
  assertNotFound(await admin.get(`${P}/carol/offline_msg_status/${sent.body.data.erin as string}`));
  assertNotFound(await admin.get(`${P}/dave/offline_msg_status/1`));
  assertNotFound(await admin.get(`${P}/ghost/offline_msg_status/${toCarol}`));
});

test('an ack from a client of the user makes a message "delivered" and takes it off the count; group messages wait for every member', async () => {
  const rt = s.cv.services.realtime;
  const count = async (u: string): Promise<number> => Object.values((await admin.get(`${P}/${u}/offline_msg_count`)).body.data as Record<string, number>)[0]!;
  const before = await count('erin');
  const id = (await send('alice', ['erin'])).body.data.erin as string;
  assert.equal(await count('erin'), before + 1);
  assert.deepEqual((await rt.router.ack(appId, 'ERIN', [id])).map((a) => a.msgId), [id]);
  assert.deepEqual((await admin.get(`${P}/erin/offline_msg_status/${id}`)).body.data, { [id]: 'delivered' });
  assert.equal(await count('erin'), before);

  const g = await admin.post('/demo/chat/chatgroups', { groupname: 'lc', desc: 'lc', public: true, owner: 'alice', members: ['erin', 'carol'] });
  assert.equal(g.status, 200, g.text);
  const gid = g.body.data.groupid as string;
  const before2 = await Promise.all(['alice', 'erin', 'carol'].map(count));
  const r = await admin.post('/demo/chat/messages?useMsgId=true', { target_type: 'chatgroups', target: [gid], from: 'erin', msg: { type: 'txt', msg: 'to all' } });
  assert.equal(r.status, 200, r.text);
  const gm = r.body.data[gid] as string;
  assert.deepEqual(await Promise.all(['alice', 'erin', 'carol'].map(count)), [before2[0]! + 1, before2[1]!, before2[2]! + 1], 'the owner and members wait, the sender does not');
  assert.deepEqual((await admin.get(`${P}/carol/offline_msg_status/${gm}`)).body.data, { [gm]: 'undelivered' });
  assertNotFound(await admin.get(`${P}/erin/offline_msg_status/${gm}`));
});

test('deactivating or activating an unknown user is 404', async () => {
  assertNotFound(await admin.post(`${P}/ghost/deactivate`));
  assertNotFound(await admin.post(`${P}/ghost/activate`));
});

test('lifecycle calls need an admin token of the app: none, an IM user (even itself) or another app is 401', async () => {
  const other = await createApp(s, 'elsewhere', 'chat');
  const otherAdmin = new Api(s.url, other.token);
  assert.equal((await otherAdmin.post('/elsewhere/chat/users', { username: 'erin', password: 'pw-erin' })).status, 200);
  const callers = [anon, await d.userApi('erin'), otherAdmin, await d.userApi('erin', 'elsewhere', 'chat')];
  for (const caller of callers) {
    assertNoPermission(await caller.post(`${P}/erin/deactivate`), 'post', appUuid);
    assertNoPermission(await caller.post(`${P}/erin/activate`), 'post', appUuid);
    assertNoPermission(await caller.get(`${P}/erin/disconnect`), 'get', appUuid);
    assertNoPermission(await caller.get(`${P}/erin/offline_msg_count`), 'get', appUuid);
    assertNoPermission(await caller.get(`${P}/erin/offline_msg_status/1`), 'get', appUuid);
  }
  assert.equal((await admin.get(`${P}/erin`)).body.entities[0].activated, true);
  // Deactivating a user of one app leaves the same name in another app alone.
  assert.equal((await admin.post(`${P}/erin/deactivate`)).status, 200);
  assert.equal((await d.login('erin', 'elsewhere', 'chat')).status, 200);
  assert.equal((await d.login('erin')).status, 401);
  // Messages to erin in the other app do not count here.
  assert.equal((await otherAdmin.post('/elsewhere/chat/messages', { target_type: 'users', target: ['erin'], msg: { type: 'txt', msg: 'x' } })).status, 200);
  assert.deepEqual((await admin.get(`${P}/erin/offline_msg_count`)).body.data, { erin: 3 });
});
