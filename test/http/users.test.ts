import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Api, createApp, demoToken, req, startTestServer, type Res, type TestServer } from '../helpers.js';
import { assertErrorBody, JSON_CT } from './api-assert.js';

const USER_KEYS = ['activated', 'created', 'modified', 'type', 'username', 'uuid'];

const assertError = assertErrorBody;

let s: TestServer;
let admin: Api;
let anon: Api;
let appUuid: string;
let appId: number;
before(async () => {
  s = await startTestServer();
  admin = new Api(s.url, await demoToken(s));
  anon = new Api(s.url);
  const a = (await s.cv.services.store.getApp('demo', 'chat'))!;
  appUuid = a.uuid;
  appId = a.id;
});
after(() => s.close());

/** The success envelope of a demo-app user call. */
function assertEnvelope(r: Res, action: string, path: string | null = '/users'): void {
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.equal(r.body.action, action);
  assert.equal(r.body.application, appUuid);
  assert.equal(r.body.organization, 'demo');
  assert.equal(r.body.applicationName, 'chat');
  if (path !== null) {
    assert.equal(r.body.path, path);
    assert.equal(r.body.uri, `${s.url}/demo/chat${path}`);
  }
  assert.equal(typeof r.body.timestamp, 'number');
  assert.equal(typeof r.body.duration, 'number');
  assert.doesNotMatch(r.text, /"password"\s*:|scrypt\$/);
}

const userToken = async (username: string, password: string): Promise<Api> => {
  const r = await req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'password', username, password });
  assert.equal(r.status, 200, r.text);
  return new Api(s.url, r.body.access_token);
};

test('registration needs an app token by default: 401 registration is not open', async () => {
  assertError(await anon.post('/demo/chat/users', { username: 'walkin', password: 'pw' }), 401, 'unauthorized', 'registration is not open, please contact the app admin');
  assert.equal(await s.cv.services.store.getUser(appId, 'walkin'), null);
  const r = await admin.post('/demo/chat/users', { username: 'jliu', password: '123456' });
  assertEnvelope(r, 'post');
  assert.deepEqual(r.body.params, {});
  assert.equal('data' in r.body, false);
  assert.equal(r.body.entities.length, 1);
  const u = r.body.entities[0];
  assert.deepEqual(Object.keys(u).sort(), USER_KEYS);
  assert.equal(u.username, 'jliu');
  assert.equal(u.type, 'user');
  assert.equal(u.activated, true);
  assert.equal(u.created, u.modified);
  assert.match(u.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
});

test('open registration: PUT /{org}/{app} switches it, then no token is needed for a single user', async () => {
  const a = await createApp(s, 'openorg', 'openapp');
  const owner = new Api(s.url, a.token);
  const walk = () => anon.post('/openorg/openapp/users', { username: 'walkin', password: 'pw' });
  assertError(await walk(), 401, 'unauthorized', 'registration is not open, please contact the app admin');
  assertError(await anon.put('/openorg/openapp', { allow_open_registration: true }), 401, 'unauthorized');
  assertError(await owner.put('/openorg/openapp', { allow_open_registration: 'yes' }), 400, 'illegal_argument', 'allow_open_registration must be true or false');

  const on = await owner.put('/openorg/openapp', { allow_open_registration: true });
  assert.equal(on.status, 200, on.text);
  assert.equal(on.body.action, 'put');
  assert.equal(on.body.application, a.uuid);
  assert.equal(on.body.entities[0].allow_open_registration, true);
  assert.equal((await owner.get('/openorg/openapp')).body.entities[0].allow_open_registration, true);

  const r = await walk();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.entities[0].username, 'walkin');
  // Batches always need the admin token.
  assertError(await anon.post('/openorg/openapp/users', [{ username: 'b1', password: 'pw' }]), 401, 'unauthorized', /^Subject does not have permission/);
  assert.equal((await owner.get('/openorg/openapp/users/b1')).status, 404);

  assert.equal((await owner.put('/openorg/openapp', { allow_open_registration: false })).status, 200);
  assertError(await anon.post('/openorg/openapp/users', { username: 'late', password: 'pw' }), 401, 'unauthorized', 'registration is not open, please contact the app admin');
  // The demo app stayed closed.
  assert.equal((await anon.post('/demo/chat/users', { username: 'walkin2', password: 'pw' })).status, 401);
});

test('batch registration creates every user in order, with data: []', async () => {
  const r = await admin.post('/demo/chat/users', [
    { username: 'b1', password: 'pw1' }, { username: 'b2', password: 'pw2', nickname: 'Bee' }, { username: 'b3', password: 'pw3' },
  ]);
  assertEnvelope(r, 'post');
  assert.deepEqual(r.body.entities.map((e: { username: string }) => e.username), ['b1', 'b2', 'b3']);
  assert.equal(r.body.entities[1].nickname, 'Bee');
  assert.deepEqual(r.body.data, []);
  await userToken('b2', 'pw2');
});

test('a batch with a duplicate (existing or inside the batch) creates nothing', async () => {
  const dup = await admin.post('/demo/chat/users', [{ username: 'n1', password: 'pw' }, { username: 'B1', password: 'pw' }, { username: 'n2', password: 'pw' }]);
  assertError(dup, 400, 'duplicate_unique_property_exists', `Application ${appUuid} Entity user requires that property named username be unique, value of B1 exists`);
  const inner = await admin.post('/demo/chat/users', [{ username: 'n1', password: 'pw' }, { username: 'N1', password: 'pw' }]);
  assertError(inner, 400, 'duplicate_unique_property_exists', /value of N1 exists$/);
  const bad = await admin.post('/demo/chat/users', [{ username: 'n1', password: 'pw' }, { username: 'bad name', password: 'pw' }]);
  assertError(bad, 400, 'illegal_argument', 'username [bad name] is not legal');
  for (const n of ['n1', 'n2']) assertError(await admin.get(`/demo/chat/users/${n}`), 404, 'service_resource_not_found');
});

test('a batch holds 1 to 60 users', async () => {
  const many = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => ({ username: `${prefix}${i}`, password: 'pw' }));
  assertError(await admin.post('/demo/chat/users', many(61, 'big')), 400, 'illegal_argument', 'at most 60 users can be registered in one request');
  assert.equal(await s.cv.services.store.getUser(appId, 'big0'), null);
  assertError(await admin.post('/demo/chat/users', []), 400, 'illegal_argument');
  const r = await admin.post('/demo/chat/users', many(60, 'max'));
  assertEnvelope(r, 'post');
  assert.equal(r.body.entities.length, 60);
});

test('usernames are unique case-insensitively, stored with their case, found in any case or by uuid', async () => {
  const r = await admin.post('/demo/chat/users', { username: 'AA', password: 'pw' });
  assertEnvelope(r, 'post');
  const uuid = r.body.entities[0].uuid as string;
  assertError(await admin.post('/demo/chat/users', { username: 'aa', password: 'pw' }), 400, 'duplicate_unique_property_exists',
    `Application ${appUuid} Entity user requires that property named username be unique, value of aa exists`);
  for (const key of ['aa', 'AA', 'aA', uuid, uuid.toUpperCase()]) {
    const g = await admin.get(`/demo/chat/users/${key}`);
    assertEnvelope(g, 'get');
    assert.equal(g.body.count, 1);
    assert.equal(g.body.entities.length, 1);
    assert.equal(g.body.entities[0].username, 'AA');
    assert.equal(g.body.entities[0].uuid, uuid);
  }
  await userToken('aa', 'pw');
});

test('registration without a username or with an illegal one is 400 illegal_argument', async () => {
  for (const body of [{ password: 'pw' }, { username: '', password: 'pw' }, { username: null, password: 'pw' }]) {
    assertError(await admin.post('/demo/chat/users', body), 400, 'illegal_argument', 'Entity user requires a property named username');
  }
  const illegal = ['a@b.com', 'has space', 'a#b', '中文', 'x'.repeat(65), 'slash/x', 'tab\tx', '7f90f7ca-bb24-11e2-b2d0-6d8e359945e4'];
  for (const username of illegal) {
    assertError(await admin.post('/demo/chat/users', { username, password: 'pw' }), 400, 'illegal_argument', `username [${username}] is not legal`);
  }
  assertError(await admin.post('/demo/chat/users', { username: 123, password: 'pw' }), 400, 'illegal_argument', 'username [123] is not legal');
  // The legal alphabet: letters, digits, _ - . up to 64 characters.
  const legal = await admin.post('/demo/chat/users', [{ username: 'a_b-c.D9', password: 'pw' }, { username: 'y'.repeat(64), password: 'pw' }]);
  assertEnvelope(legal, 'post');
});

test('registration without a password, or with an empty one, is 400 "password or pin must provided"', async () => {
  for (const body of [{ username: 'nopw' }, { username: 'nopw', password: '' }, { username: 'nopw', password: 123 }, { username: 'nopw', password: null }]) {
    assertError(await admin.post('/demo/chat/users', body), 400, 'illegal_argument', 'password or pin must provided');
  }
  assertError(await admin.post('/demo/chat/users', { username: 'nopw', password: 'p'.repeat(65) }), 400, 'illegal_argument');
  assert.equal(await s.cv.services.store.getUser(appId, 'nopw'), null);
});

test('getting an unknown user is 404 service_resource_not_found', async () => {
  assertError(await admin.get('/demo/chat/users/ghost'), 404, 'service_resource_not_found', 'Service resource not found');
  assertError(await admin.get('/demo/chat/users/00000000-0000-1000-8000-000000000000'), 404, 'service_resource_not_found');
  assertError(await admin.get('/demo/chat/users/ghost/status'), 404, 'service_resource_not_found');
});

test('deleting a user returns it; it is gone afterwards; an unknown one is 404', async () => {
  const made = await admin.post('/demo/chat/users', [{ username: 'gone1', password: 'pw' }, { username: 'Gone2', password: 'pw' }]);
  const d = await admin.delete('/demo/chat/users/GONE1');
  assertEnvelope(d, 'delete');
  assert.equal(d.body.entities.length, 1);
  assert.deepEqual(d.body.entities[0], made.body.entities[0]);
  assertError(await admin.get('/demo/chat/users/gone1'), 404, 'service_resource_not_found');
  assertError(await admin.delete('/demo/chat/users/gone1'), 404, 'service_resource_not_found', 'Service resource not found');
  const byUuid = await admin.delete(`/demo/chat/users/${made.body.entities[1].uuid}`);
  assert.equal(byUuid.status, 200, byUuid.text);
  assert.equal(byUuid.body.entities[0].username, 'Gone2');
  // The name is free again.
  assert.equal((await admin.post('/demo/chat/users', { username: 'gone1', password: 'pw' })).status, 200);
});

test('an admin resets a password without the old one; the extra oldpassword key is ignored', async () => {
  await admin.post('/demo/chat/users', { username: 'pwuser', password: 'old-pw' });
  const r = await admin.put('/demo/chat/users/pwuser/password', { newpassword: 'new-pw' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.deepEqual(Object.keys(r.body).sort(), ['action', 'duration', 'timestamp']);
  assert.equal(r.body.action, 'set user password');
  await userToken('pwuser', 'new-pw');
  assert.equal((await req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'password', username: 'pwuser', password: 'old-pw' })).status, 400);
  // The Node example sends the old one along; for an admin it does not matter whether it is right.
  const again = await admin.put('/demo/chat/users/PWUSER/password', { oldpassword: 'not-it', newpassword: 'newer-pw' });
  assert.equal(again.status, 200, again.text);
  await userToken('pwuser', 'newer-pw');
});

test('resetting a password: missing newpassword is 400, unknown user 404 entity_not_found', async () => {
  for (const body of [{}, { newpassword: '' }, { oldpassword: 'x' }, { newpassword: 42 }, undefined]) {
    assertError(await admin.put('/demo/chat/users/pwuser/password', body), 400, 'illegal_argument', 'newpassword is required');
  }
  assertError(await admin.put('/demo/chat/users/ghost/password', { newpassword: 'x' }), 404, 'entity_not_found', 'User null not found');
  await userToken('pwuser', 'newer-pw');
});

test("a user changing its own password must give the correct old one; other users' passwords are off limits", async () => {
  await admin.post('/demo/chat/users', [{ username: 'selfie', password: 'mine-1' }, { username: 'other', password: 'theirs' }]);
  const me = await userToken('selfie', 'mine-1');
  assertError(await me.put('/demo/chat/users/selfie/password', { newpassword: 'mine-2' }), 400, 'illegal_argument', 'oldPassword is required');
  assertError(await me.put('/demo/chat/users/selfie/password', { oldpassword: 'wrong', newpassword: 'mine-2' }), 400, 'illegal_argument');
  assertError(await me.put('/demo/chat/users/other/password', { oldpassword: 'theirs', newpassword: 'hacked' }), 401, 'unauthorized');
  await userToken('other', 'theirs');
  const ok = await me.put('/demo/chat/users/selfie/password', { oldpassword: 'mine-1', newpassword: 'mine-2' });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.body.action, 'set user password');
  const camel = await (await userToken('selfie', 'mine-2')).put('/demo/chat/users/selfie/password', { oldPassword: 'mine-2', newpassword: 'mine-3' });
  assert.equal(camel.status, 200, camel.text);
  await userToken('selfie', 'mine-3');
});

test('updating properties: nickname and custom ones, null removes, username and uuid stay', async () => {
  const made = (await admin.post('/demo/chat/users', { username: 'props', password: 'pw' })).body.entities[0];
  const r = await admin.put('/demo/chat/users/props', { nickname: '小明', sex: 'f', age: 7, prefs: { a: [1, 2] } });
  assertEnvelope(r, 'put');
  const u = r.body.entities[0];
  assert.equal(u.nickname, '小明');
  assert.equal(u.sex, 'f');
  assert.equal(u.age, 7);
  assert.deepEqual(u.prefs, { a: [1, 2] });
  assert.ok(u.modified >= made.modified);
  assert.equal((await admin.get('/demo/chat/users/props')).body.entities[0].sex, 'f');

  const removed = await admin.put('/demo/chat/users/props', { sex: null, nickname: 'n'.repeat(100) });
  assert.equal(removed.status, 200, removed.text);
  assert.equal('sex' in removed.body.entities[0], false);
  assert.equal(removed.body.entities[0].nickname, 'n'.repeat(100));

  const fixed = await admin.put('/demo/chat/users/props', { username: 'renamed', uuid: '00000000-0000-1000-8000-000000000000', type: 'admin', created: 1 });
  assert.equal(fixed.status, 200, fixed.text);
  assert.equal(fixed.body.entities[0].username, 'props');
  assert.equal(fixed.body.entities[0].uuid, made.uuid);
  assert.equal(fixed.body.entities[0].type, 'user');
  assert.equal(fixed.body.entities[0].created, made.created);
  assertError(await admin.get('/demo/chat/users/renamed'), 404, 'service_resource_not_found');
});

test('updating properties: invalid values are 400, unknown user 404, a user may update itself', async () => {
  assertError(await admin.put('/demo/chat/users/props', { nickname: 'n'.repeat(101) }), 400, 'illegal_argument', 'nickname is longer than 100 characters');
  assertError(await admin.put('/demo/chat/users/props', { nickname: 5 }), 400, 'illegal_argument', 'nickname must be a string');
  assertError(await admin.put('/demo/chat/users/props', { 'bad key': 1 }), 400, 'illegal_argument', 'property name [bad key] is not legal');
  assertError(await admin.put('/demo/chat/users/props', ['x']), 400, 'illegal_argument');
  assertError(await admin.put('/demo/chat/users/ghost', { nickname: 'x' }), 404, 'service_resource_not_found');
  assert.equal((await admin.get('/demo/chat/users/props')).body.entities[0].nickname, 'n'.repeat(100));
  const self = await userToken('props', 'pw');
  const r = await self.put('/demo/chat/users/props', { nickname: 'me' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.entities[0].nickname, 'me');
  assertError(await self.put('/demo/chat/users/jliu', { nickname: 'me' }), 401, 'unauthorized');
});

test('status answers data: {"<username>": "offline"} with the stored case', async () => {
  const r = await admin.get('/demo/chat/users/aa/status');
  assertEnvelope(r, 'get', null);
  assert.equal(r.body.uri, `${s.url}/demo/chat`);
  assert.deepEqual(r.body.data, { AA: 'offline' });
  assert.deepEqual(r.body.entities, []);
  assertError(await anon.get('/demo/chat/users/aa/status'), 401, 'unauthorized', `Subject does not have permission [applications:get:${appUuid}:/users]`);
});

test('the password never appears in any response', async () => {
  const secret = 'Sup3r-Secret-Pw';
  const texts: string[] = [];
  const keep = (r: Res) => {
    texts.push(r.text);
    return r;
  };
  keep(await admin.post('/demo/chat/users', { username: 'hidden', password: secret, nickname: 'h' }));
  keep(await admin.post('/demo/chat/users', [{ username: 'hidden2', password: secret }]));
  keep(await req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'password', username: 'hidden', password: secret }));
  keep(await admin.get('/demo/chat/users/hidden'));
  keep(await admin.get('/demo/chat/users?limit=100'));
  keep(await admin.put('/demo/chat/users/hidden', { nickname: 'x', password: 'other' }));
  keep(await admin.put('/demo/chat/users/hidden/password', { newpassword: secret }));
  keep(await admin.get('/demo/chat/users/hidden/status'));
  keep(await admin.delete('/demo/chat/users/hidden'));
  keep(await admin.delete('/demo/chat/users/hidden2'));
  for (const t of texts) {
    assert.equal(t.includes(secret), false, t);
    assert.doesNotMatch(t, /"password"\s*:|passwordHash|password_hash|scrypt\$/);
  }
});
