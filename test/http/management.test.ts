import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ADMIN, Api, req, startTestServer, sysadminToken, type Res, type TestServer } from '../helpers.js';
import { assertErrorBody, JSON_CT } from './api-assert.js';


const assertError = assertErrorBody;

/** An OAuth error body: exactly `error` and `error_description`. */
function assertGrantError(r: Res, description: string, error = 'invalid_grant'): void {
  assert.equal(r.status, 400, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.deepEqual(r.body, { error, error_description: description });
}

let s: TestServer;
let sys: Api;
let anon: Api;
before(async () => {
  s = await startTestServer();
  sys = new Api(s.url, await sysadminToken(s));
  anon = new Api(s.url);
});
after(() => s.close());

const mgmtToken = (body: unknown) => req(`${s.url}/management/token`, 'POST', body);

async function ownerApi(username: string, password: string): Promise<Api> {
  const r = await mgmtToken({ grant_type: 'password', username, password });
  assert.equal(r.status, 200, r.text);
  return new Api(s.url, r.body.access_token);
}

test('POST /management/token password grant returns an admin token with the Usergrid admin user', async () => {
  const r = await mgmtToken({ grant_type: 'password', ...ADMIN });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.deepEqual(Object.keys(r.body).sort(), ['access_token', 'expires_in', 'user']);
  assert.match(r.body.access_token, /^YWMt[A-Za-z0-9_-]+$/);
  assert.equal(r.body.expires_in, 5184000);
  const u = r.body.user;
  assert.equal(u.username, ADMIN.username);
  assert.equal(u.adminUser, true);
  assert.equal(u.activated, true);
  assert.equal(u.applicationId, '00000000-0000-0000-0000-000000000001');
  const demoApp = await s.cv.services.store.getApp('demo', 'chat');
  assert.deepEqual(u.organizations.demo.applications, { 'demo/chat': demoApp!.uuid });
  assert.doesNotMatch(r.text, /password|scrypt/i);
  // The token administers the demo app.
  assert.equal((await new Api(s.url, r.body.access_token).get('/demo/chat/users')).status, 200);
});

test('POST /management/token with a wrong password or unknown admin is 400 invalid_grant, error + description only', async () => {
  assertGrantError(await mgmtToken({ grant_type: 'password', username: ADMIN.username, password: 'wrong' }), 'invalid username or password');
  assertGrantError(await mgmtToken({ grant_type: 'password', username: 'nobody', password: 'x' }), 'invalid username or password');
  assertGrantError(await mgmtToken({ grant_type: 'password', username: ADMIN.username }), 'invalid username or password');
});

test('POST /management/token with an unknown or missing grant_type is 400 unsupported_grant_type', async () => {
  assertGrantError(await mgmtToken({ grant_type: 'magic', ...ADMIN }), 'grant_type "magic" is not supported', 'unsupported_grant_type');
  assertGrantError(await mgmtToken({ ...ADMIN }), 'grant_type must be provided', 'unsupported_grant_type');
});

test('POST /management/token client_credentials grant with the org credentials gives an org token', async () => {
  const org = (await s.cv.services.store.getOrgByName('demo'))!;
  const r = await mgmtToken({ grant_type: 'client_credentials', client_id: org.clientId, client_secret: org.clientSecret });
  assert.equal(r.status, 200, r.text);
  assert.match(r.body.access_token, /^YWMt/);
  assert.equal(r.body.expires_in, 5184000);
  assert.equal(r.body.organization.name, 'demo');
  assert.equal(r.body.organization.uuid, org.uuid);
  const orgApi = new Api(s.url, r.body.access_token);
  assert.equal((await orgApi.get('/demo/chat/users')).status, 200);
  assert.equal((await orgApi.get('/management/organizations/demo/applications')).status, 200);

  assertGrantError(await mgmtToken({ grant_type: 'client_credentials', client_id: 'YXA6nope', client_secret: org.clientSecret }), 'client_id does not match');
  assertGrantError(await mgmtToken({ grant_type: 'client_credentials', client_id: org.clientId, client_secret: 'YXA6nope' }), 'client_secret does not match');
  // An app's credentials are not an org's.
  const app = (await s.cv.services.store.getApp('demo', 'chat'))!;
  assertGrantError(await mgmtToken({ grant_type: 'client_credentials', client_id: app.clientId, client_secret: app.clientSecret }), 'client_id does not match');
});

test('the sysadmin creates an organization with its owner; the owner can log in', async () => {
  const r = await sys.post('/management/organizations', { organization: 'acme', username: 'acme-boss', email: 'boss@acme.test', password: 'boss-pass' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.equal(r.body.action, 'new organization');
  assert.equal(r.body.status, 'ok');
  assert.equal(typeof r.body.timestamp, 'number');
  assert.equal(typeof r.body.duration, 'number');
  assert.equal(r.body.data.organization.name, 'acme');
  assert.match(r.body.data.organization.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  const owner = r.body.data.owner;
  assert.equal(owner.username, 'acme-boss');
  assert.equal(owner.email, 'boss@acme.test');
  assert.equal(owner.adminUser, true);
  assert.deepEqual(owner.organizations.acme, { name: 'acme', uuid: r.body.data.organization.uuid, applications: {} });
  assert.doesNotMatch(r.text, /boss-pass|password|scrypt/i);

  const login = await mgmtToken({ grant_type: 'password', username: 'acme-boss', password: 'boss-pass' });
  assert.equal(login.status, 200, login.text);
  assert.deepEqual(Object.keys(login.body.user.organizations), ['acme']);
  // Logging in by e-mail works too.
  assert.equal((await mgmtToken({ grant_type: 'password', username: 'boss@acme.test', password: 'boss-pass' })).status, 200);
});

test('only the sysadmin may create organizations', async () => {
  const body = { organization: 'intruder', username: 'intruder-boss', password: 'pw' };
  const boss = await ownerApi('acme-boss', 'boss-pass');
  assertError(await boss.post('/management/organizations', body), 401, 'unauthorized', 'Only the system administrator may create organizations');
  assertError(await anon.post('/management/organizations', body), 401, 'unauthorized', /^Subject does not have permission \[applications:post:/);
  assertError(await new Api(s.url, 'garbage').post('/management/organizations', body), 401, 'auth_bad_access_token', 'Unable to authenticate due to corrupt access token');
  const demoApp = (await s.cv.services.store.getApp('demo', 'chat'))!;
  const appToken = s.cv.services.tokens.issue('app', demoApp.id, demoApp.credGen, 60);
  assertError(await new Api(s.url, appToken).post('/management/organizations', body), 401, 'unauthorized');
  assert.equal(await s.cv.services.store.getOrgByName('intruder'), null);
  assert.equal(await s.cv.services.store.findAdmin('intruder-boss'), null);
});

test('creating an organization: duplicate, reserved, illegal names and missing fields are 400', async () => {
  const make = (organization: unknown, extra: Record<string, unknown> = {}) =>
    sys.post('/management/organizations', { organization, username: 'acme-boss', password: 'boss-pass', ...extra });
  assertError(await make('acme'), 400, 'duplicate_unique_property_exists', 'Organization acme already exists');
  assertError(await make('ACME'), 400, 'duplicate_unique_property_exists', 'Organization ACME already exists');
  for (const reserved of ['management', 'Management', 'status']) {
    assertError(await make(reserved), 400, 'illegal_argument', `organization name ${reserved} is reserved`);
  }
  for (const bad of ['bad name', 'a#b', '-lead', 'x'.repeat(65), '中文', 'a/b', 'a.b']) {
    assertError(await make(bad), 400, 'illegal_argument', new RegExp(`^organization name \\[${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\] is not legal`));
  }
  assertError(await sys.post('/management/organizations', { username: 'u1', password: 'p' }), 400, 'illegal_argument', 'organization must be provided');
  assertError(await sys.post('/management/organizations', { organization: 'neworg', password: 'p' }), 400, 'illegal_argument', 'username must be provided');
  assertError(await sys.post('/management/organizations', { organization: 'neworg', username: 'new-boss' }), 400, 'illegal_argument', 'password must be provided');
  assertError(await sys.post('/management/organizations', [{ organization: 'neworg' }]), 400, 'illegal_argument');
  // An existing admin named as owner must prove the password.
  assertError(await make('neworg', { password: 'wrong' }), 400, 'duplicate_unique_property_exists', 'Admin user acme-boss already exists');
  assertError(await make('neworg', { username: 'bad user' }), 400, 'illegal_argument', 'username [bad user] is not legal');
  assert.equal(await s.cv.services.store.getOrgByName('neworg'), null);
  assert.equal(await s.cv.services.store.getOrgByName('management'), null);
});

test('an existing admin named with the right password becomes owner of a second org', async () => {
  const r = await sys.post('/management/orgs', { organization: 'acme2', username: 'acme-boss', password: 'boss-pass' });
  assert.equal(r.status, 200, r.text);
  const login = await mgmtToken({ grant_type: 'password', username: 'acme-boss', password: 'boss-pass' });
  assert.deepEqual(Object.keys(login.body.user.organizations).sort(), ['acme', 'acme2']);
});

test('an org admin creates apps, lists them (also through the short aliases) and reads one', async () => {
  const boss = await ownerApi('acme-boss', 'boss-pass');
  const r = await boss.post('/management/organizations/acme/applications', { name: 'app1' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.equal(r.body.action, 'new application for organization');
  const e = r.body.entities[0];
  assert.equal(e.type, 'application');
  assert.equal(e.name, 'acme/app1');
  assert.equal(e.appkey, 'acme#app1');
  assert.equal(e.allow_open_registration, false);
  assert.deepEqual(r.body.data, { 'acme/app1': e.uuid });
  assert.doesNotMatch(r.text, /client_secret/);

  const r2 = await boss.post('/management/orgs/acme/apps', { name: 'app2', allow_open_registration: true });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(r2.body.entities[0].allow_open_registration, true);
  assert.equal((await s.cv.services.store.getApp('acme', 'app2'))!.openRegistration, true);

  for (const p of ['/management/organizations/acme/applications', '/management/orgs/acme/apps', '/management/orgs/acme/applications', '/management/organizations/acme/apps']) {
    const l = await boss.get(p);
    assert.equal(l.status, 200, l.text);
    assert.equal(l.body.action, 'get organization application');
    assert.deepEqual(l.body.data, { 'acme/app1': e.uuid, 'acme/app2': r2.body.entities[0].uuid });
  }
  for (const p of ['/management/organizations/acme/applications/app1', `/management/orgs/acme/apps/${e.uuid}`]) {
    const one = await boss.get(p);
    assert.equal(one.status, 200, one.text);
    assert.equal(one.body.action, 'get');
    assert.equal(one.body.application, e.uuid);
    assert.equal(one.body.organization, 'acme');
    assert.equal(one.body.applicationName, 'app1');
    assert.equal(one.body.entities[0].uuid, e.uuid);
    assert.equal(one.body.uri, `${s.url}/acme/app1`);
  }
});

test('creating an app: duplicate, illegal or missing name is 400; unknown org is 404', async () => {
  const boss = await ownerApi('acme-boss', 'boss-pass');
  assertError(await boss.post('/management/organizations/acme/applications', { name: 'app1' }), 400, 'duplicate_unique_property_exists', 'Application acme/app1 already exists');
  assertError(await boss.post('/management/organizations/acme/applications', { name: 'APP1' }), 400, 'duplicate_unique_property_exists');
  assertError(await boss.post('/management/organizations/acme/applications', { name: 'bad app' }), 400, 'illegal_argument', /^application name \[bad app\] is not legal/);
  assertError(await boss.post('/management/organizations/acme/applications', {}), 400, 'illegal_argument', 'name must be provided');
  assertError(await sys.post('/management/organizations/nosuch/applications', { name: 'x' }), 404, 'organization_application_not_found');
  assertError(await sys.get('/management/organizations/nosuch/applications'), 404, 'organization_application_not_found');
  assertError(await sys.get('/management/organizations/acme/applications/nosuch'), 404, 'organization_application_not_found');
  assert.deepEqual(Object.keys((await boss.get('/management/orgs/acme/apps')).body.data).sort(), ['acme/app1', 'acme/app2']);
});

test('credentials: read, regenerate, and the old app token and secret stop working', async () => {
  const boss = await ownerApi('acme-boss', 'boss-pass');
  const c = await boss.get('/management/organizations/acme/applications/app1/credentials');
  assert.equal(c.status, 200, c.text);
  assert.equal(c.headers.get('content-type'), JSON_CT);
  assert.equal(c.body.action, 'get application client credentials');
  assert.match(c.body.credentials.client_id, /^YXA6[A-Za-z0-9_-]{20,}$/);
  assert.match(c.body.credentials.client_secret, /^YXA6[A-Za-z0-9_-]{20,}$/);
  const alias = await boss.get('/management/orgs/acme/apps/app1/credentials');
  assert.deepEqual(alias.body.credentials, c.body.credentials);

  const grant = (cr: { client_id: string; client_secret: string }) =>
    req(`${s.url}/acme/app1/token`, 'POST', { grant_type: 'client_credentials', ...cr });
  const t = await grant(c.body.credentials);
  assert.equal(t.status, 200, t.text);
  const oldApp = new Api(s.url, t.body.access_token);
  assert.equal((await oldApp.get('/acme/app1/users')).status, 200);

  const g = await boss.post('/management/orgs/acme/apps/app1/credentials');
  assert.equal(g.status, 200, g.text);
  assert.equal(g.body.action, 'generate application client credentials');
  assert.notEqual(g.body.credentials.client_id, c.body.credentials.client_id);
  assert.notEqual(g.body.credentials.client_secret, c.body.credentials.client_secret);

  assertError(await oldApp.get('/acme/app1/users'), 401, 'auth_bad_access_token', 'Unable to authenticate');
  assertGrantError(await grant(c.body.credentials), 'client_id does not match');
  assertGrantError(await grant({ client_id: g.body.credentials.client_id, client_secret: c.body.credentials.client_secret }), 'client_secret does not match');
  const fresh = await grant(g.body.credentials);
  assert.equal(fresh.status, 200, fresh.text);
  assert.equal((await new Api(s.url, fresh.body.access_token).get('/acme/app1/users')).status, 200);
  // The other app of the org was not touched.
  const other = await boss.get('/management/organizations/acme/applications/app2/credentials');
  assert.equal((await grant(other.body.credentials)).status, 400);
  assert.equal((await req(`${s.url}/acme/app2/token`, 'POST', { grant_type: 'client_credentials', ...other.body.credentials })).status, 200);
});

test('an org admin token works on every app of its org and on nothing of another org', async () => {
  const boss = await ownerApi('acme-boss', 'boss-pass');
  for (const a of ['app1', 'app2']) {
    const r = await boss.get(`/acme/${a}/users`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.applicationName, a);
    assert.equal((await boss.get(`/acme/${a}`)).status, 200);
    assert.equal((await boss.post(`/acme/${a}/users`, { username: 'made-by-boss', password: 'pw' })).status, 200);
  }
  const demoApp = (await s.cv.services.store.getApp('demo', 'chat'))!;
  assertError(await boss.get('/demo/chat/users'), 401, 'unauthorized', `Subject does not have permission [applications:get:${demoApp.uuid}:/users]`);
  assertError(await boss.post('/demo/chat/users', { username: 'sneak', password: 'pw' }), 401, 'unauthorized');
  assertError(await boss.get('/demo/chat'), 401, 'unauthorized');
  assertError(await boss.get('/management/organizations/demo/applications'), 401, 'unauthorized', 'No organization access authorized');
  assertError(await boss.post('/management/organizations/demo/applications', { name: 'sneaky' }), 401, 'unauthorized');
  assertError(await boss.get('/management/orgs/demo/apps/chat'), 401, 'unauthorized');
  assertError(await boss.get('/management/orgs/demo/apps/chat/credentials'), 401, 'unauthorized');
  assertError(await boss.post('/management/orgs/demo/apps/chat/credentials'), 401, 'unauthorized');
  const after = (await s.cv.services.store.getApp('demo', 'chat'))!;
  assert.equal(after.clientSecret, demoApp.clientSecret);
  assert.equal(await s.cv.services.store.getUser(demoApp.id, 'sneak'), null);
  assert.equal(await s.cv.services.store.getApp('demo', 'sneaky'), null);
  // The sysadmin sees every org.
  assert.equal((await sys.get('/management/orgs/acme/apps')).status, 200);
  assert.equal((await sys.get('/acme/app1/users')).status, 200);
});

test('an app token may not use the management API, not even for its own org', async () => {
  const boss = await ownerApi('acme-boss', 'boss-pass');
  const creds = (await boss.get('/management/orgs/acme/apps/app1/credentials')).body.credentials;
  const t = await req(`${s.url}/acme/app1/token`, 'POST', { grant_type: 'client_credentials', ...creds });
  const app = new Api(s.url, t.body.access_token);
  assertError(await app.get('/management/orgs/acme/apps'), 401, 'unauthorized');
  assertError(await app.get('/management/orgs/acme/apps/app1/credentials'), 401, 'unauthorized');
  assertError(await app.post('/management/orgs/acme/apps/app1/credentials'), 401, 'unauthorized');
  assertError(await app.post('/management/orgs/acme/apps', { name: 'app3' }), 401, 'unauthorized');
  assert.equal((await app.get('/management/orgs/acme/apps/app1/credentials')).text.includes(creds.client_secret), false);
  assert.equal(await s.cv.services.store.getApp('acme', 'app3'), null);
  assertError(await anon.get('/management/orgs/acme/apps'), 401, 'unauthorized', 'Subject does not have permission [applications:get:*:/management/orgs/acme/apps]');
  const uuid = (await s.cv.services.store.getApp('acme', 'app1'))!.uuid;
  assertError(await anon.get('/management/organizations/acme/applications/app1/credentials?x=1'), 401, 'unauthorized',
    `Subject does not have permission [applications:get:${uuid}:/management/organizations/acme/applications/app1/credentials]`);
});
