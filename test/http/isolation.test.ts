import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Api, createApp, req, startTestServer, type Res, type TestServer } from '../helpers.js';

const JSON_CT = 'application/json;charset=UTF-8';
const SHIRO = 'org.apache.shiro.authz.UnauthorizedException';

interface AppInfo {
  org: string;
  app: string;
  uuid: string;
  id: number;
  clientId: string;
  clientSecret: string;
  api: Api;
}

let s: TestServer;
let a1: AppInfo; // alpha/one
let a2: AppInfo; // alpha/two: same org as a1
let b: AppInfo; // beta/main: another org

async function makeApp(org: string, app: string): Promise<AppInfo> {
  const c = await createApp(s, org, app);
  const row = (await s.cv.services.store.getApp(org, app))!;
  return { org, app, uuid: c.uuid, id: row.id, clientId: c.clientId, clientSecret: c.clientSecret, api: new Api(s.url, c.token) };
}

before(async () => {
  s = await startTestServer();
  a1 = await makeApp('alpha', 'one');
  a2 = await makeApp('alpha', 'two');
  b = await makeApp('beta', 'main');
  for (const x of [a1, a2, b]) {
    const r = await x.api.post(`/${x.org}/${x.app}/users`, [
      { username: 'shared', password: `pw-${x.app}`, nickname: `from ${x.app}` },
      { username: `only-${x.app}`, password: 'pw' },
    ]);
    assert.equal(r.status, 200, r.text);
  }
});
after(() => s.close());

function assert401(r: Res, what: string): void {
  assert.equal(r.status, 401, `${what}: ${r.text}`);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.equal(r.body.error, 'unauthorized', what);
  assert.equal(r.body.exception, SHIRO, what);
  assert.equal(typeof r.body.error_description, 'string');
}

/** Everything of an app that a foreign token could have changed. */
async function snapshot(x: AppInfo): Promise<string> {
  const st = s.cv.services.store;
  const app = (await st.getAppById(x.id))!;
  const users = await st.listUsers(x.id, null, 1000);
  return JSON.stringify({ app, users, messages: await st.countMessages(x.id) });
}

/** Every app-scoped endpoint, called on `target` by `caller`. */
function attempts(caller: Api, t: AppInfo): [string, () => Promise<Res>][] {
  const p = `/${t.org}/${t.app}`;
  const m = `/management/organizations/${t.org}/applications`;
  return [
    ['list users', () => caller.get(`${p}/users`)],
    ['get user', () => caller.get(`${p}/users/shared`)],
    ['create user', () => caller.post(`${p}/users`, { username: 'intruder', password: 'pw' })],
    ['batch create', () => caller.post(`${p}/users`, [{ username: 'intruder2', password: 'pw' }])],
    ['update user', () => caller.put(`${p}/users/shared`, { nickname: 'pwned' })],
    ['reset password', () => caller.put(`${p}/users/shared/password`, { newpassword: 'pwned' })],
    ['user status', () => caller.get(`${p}/users/shared/status`)],
    ['delete user', () => caller.delete(`${p}/users/shared`)],
    ['delete users', () => caller.delete(`${p}/users?limit=100`)],
    ['send message', () => caller.post(`${p}/messages`, { target_type: 'users', target: ['shared'], msg: { type: 'txt', msg: 'hi' }, from: 'admin' })],
    ['get app', () => caller.get(p)],
    ['open registration', () => caller.put(p, { allow_open_registration: true })],
    ['list apps', () => caller.get(m)],
    ['create app', () => caller.post(m, { name: 'injected' })],
    ['get app (management)', () => caller.get(`${m}/${t.app}`)],
    ['get credentials', () => caller.get(`${m}/${t.app}/credentials`)],
    ['regenerate credentials', () => caller.post(`${m}/${t.app}/credentials`)],
  ];
}

test('the same username lives independently in every app', async () => {
  const uuids = new Set<string>();
  for (const x of [a1, a2, b]) {
    const r = await x.api.get(`/${x.org}/${x.app}/users/shared`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.entities[0].nickname, `from ${x.app}`);
    uuids.add(r.body.entities[0].uuid);
    const t = await req(`${s.url}/${x.org}/${x.app}/token`, 'POST', { grant_type: 'password', username: 'shared', password: `pw-${x.app}` });
    assert.equal(t.status, 200, t.text);
    const list = await x.api.get(`/${x.org}/${x.app}/users`);
    assert.deepEqual(list.body.entities.map((e: { username: string }) => e.username), ['shared', `only-${x.app}`]);
  }
  assert.equal(uuids.size, 3);
  // One app's password does not open another app's user of the same name.
  const cross = await req(`${s.url}/beta/main/token`, 'POST', { grant_type: 'password', username: 'shared', password: 'pw-one' });
  assert.deepEqual(cross.body, { error: 'invalid_grant', error_description: 'invalid username or password' });
});

test('an app token gets 401 on every endpoint of another app of its org and of another org, and nothing changes', async () => {
  for (const target of [a2, b]) {
    const before = await snapshot(target);
    for (const [what, call] of attempts(a1.api, target)) assert401(await call(), `${target.org}/${target.app} ${what}`);
    assert.equal(await snapshot(target), before, `${target.org}/${target.app} changed`);
  }
  // The permission message names the target app, not the caller's.
  const r = await a1.api.get('/beta/main/users');
  assert.equal(r.body.error_description, `Subject does not have permission [applications:get:${b.uuid}:/users]`);
  const d = await a1.api.delete('/alpha/two/users/shared');
  assert.equal(d.body.error_description, `Subject does not have permission [applications:delete:${a2.uuid}:/users]`);
  for (const x of [a2, b]) assert.equal(await s.cv.services.store.getApp(x.org, 'injected'), null);
});

test('app uuids and user uuids resolve only inside their own org and app', async () => {
  const bUser = (await b.api.get('/beta/main/users/shared')).body.entities[0].uuid as string;
  const byUuid = await a1.api.get(`/alpha/one/users/${bUser}`);
  assert.equal(byUuid.status, 404, byUuid.text);
  assert.equal(byUuid.body.error, 'service_resource_not_found');
  assert.equal((await a1.api.delete(`/alpha/one/users/${bUser}`)).status, 404);
  // Another org's app uuid under this org's name is not found at all.
  const crossOrg = await a1.api.get(`/beta/${a1.uuid}/users`);
  assert.equal(crossOrg.status, 404, crossOrg.text);
  assert.equal(crossOrg.body.error, 'organization_application_not_found');
  // A sibling app's uuid resolves, and is refused.
  assert401(await a1.api.get(`/alpha/${a2.uuid}/users`), 'sibling by uuid');
  assert.equal((await a1.api.get(`/alpha/${a1.uuid}/users`)).status, 200);
  assert.equal((await b.api.get(`/beta/main/users/${bUser}`)).status, 200);
});

test("an app's client credentials do not grant a token for another app", async () => {
  for (const target of [a2, b]) {
    const r = await req(`${s.url}/${target.org}/${target.app}/token`, 'POST', { grant_type: 'client_credentials', client_id: a1.clientId, client_secret: a1.clientSecret });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(r.body, { error: 'invalid_grant', error_description: 'client_id does not match' });
  }
});

test('an IM user token gets 401 on admin endpoints, including those of its own app', async () => {
  const t = await req(`${s.url}/alpha/one/token`, 'POST', { grant_type: 'password', username: 'shared', password: 'pw-one' });
  assert.equal(t.status, 200, t.text);
  const user = new Api(s.url, t.body.access_token);
  const own = await snapshot(a1);
  for (const [what, call] of attempts(user, a1)) {
    // A user may read and update itself and change its own password (with the old one).
    if (what === 'get user' || what === 'update user' || what === 'reset password') continue;
    assert401(await call(), `own app ${what}`);
  }
  assert.equal(await snapshot(a1), own);
  assert401(await user.post('/management/organizations', { organization: 'userorg', username: 'u-owner', password: 'pw' }), 'create org');
  assert.equal(await s.cv.services.store.getOrgByName('userorg'), null);
  assert401(await user.get('/alpha/one/users/only-one'), 'another user of its app');
  assert401(await user.put('/alpha/one/users/only-one', { nickname: 'x' }), 'update another user');
  // The same username in another app is another user.
  for (const target of [a2, b]) {
    const before = await snapshot(target);
    for (const [what, call] of attempts(user, target)) assert401(await call(), `${target.org}/${target.app} ${what}`);
    assert.equal(await snapshot(target), before);
  }
});

test("an org admin token reaches both apps of its org and nothing of the other org", async () => {
  const owner = await req(`${s.url}/management/token`, 'POST', { grant_type: 'password', username: 'alpha-owner', password: 'owner-pass' });
  assert.equal(owner.status, 200, owner.text);
  const boss = new Api(s.url, owner.body.access_token);
  for (const x of [a1, a2]) assert.equal((await boss.get(`/${x.org}/${x.app}/users`)).status, 200);
  const before = await snapshot(b);
  for (const [what, call] of attempts(boss, b)) assert401(await call(), `beta/main ${what}`);
  assert.equal(await snapshot(b), before);
});

test('the attempted calls are otherwise valid: the right token succeeds with them', async () => {
  // Guards the tests above: their 401s came from authorization, not from a malformed request.
  // Runs last: it changes beta/main (users, a message, open registration, an app, its credentials).
  const owner = await req(`${s.url}/management/token`, 'POST', { grant_type: 'password', username: 'beta-owner', password: 'owner-pass' });
  const boss = new Api(s.url, owner.body.access_token);
  const managementOnly = new Set(['list apps', 'create app', 'get app (management)', 'get credentials', 'regenerate credentials']);
  const appCalls = attempts(b.api, b);
  const bossCalls = new Map(attempts(boss, b));
  for (const [what, call] of appCalls) {
    // Management calls need an org admin: the app's own token is refused there.
    if (managementOnly.has(what)) assert401(await call(), `own app token on ${what}`);
    const r = managementOnly.has(what) ? await bossCalls.get(what)!() : await call();
    assert.equal(r.status, 200, `${what}: ${r.text}`);
  }
  assert.equal(await s.cv.services.store.countMessages(b.id), 1);
  assert.equal((await boss.get('/beta/main/users')).body.count, 0);
});
