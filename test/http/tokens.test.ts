import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Api, demoToken, req, startTestServer, tempDir, type Res, type TestServer } from '../helpers.js';

const JSON_CT = 'application/json;charset=UTF-8';
const SECURITY = 'org.apache.usergrid.rest.exceptions.SecurityException';
const SHIRO = 'org.apache.shiro.authz.UnauthorizedException';

/** The OAuth error of the token endpoints: exactly `error` and `error_description`. */
function assertGrantError(r: Res, description: string, error = 'invalid_grant'): void {
  assert.equal(r.status, 400, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.deepEqual(r.body, { error, error_description: description });
}

/** A 401 of token validation, with the Usergrid error envelope. */
function assert401(r: Res, error: string, description: string, exception: string): void {
  assert.equal(r.status, 401, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.equal(r.body.error, error);
  assert.equal(r.body.error_description, description);
  assert.equal(r.body.exception, exception);
  assert.equal(typeof r.body.timestamp, 'number');
  assert.equal(typeof r.body.duration, 'number');
}

let s: TestServer;
let appUuid: string;
let admin: Api;
before(async () => {
  s = await startTestServer();
  admin = new Api(s.url, await demoToken(s));
  appUuid = (await s.cv.services.store.getApp('demo', 'chat'))!.uuid;
  const r = await admin.post('/demo/chat/users', { username: 'Alice', password: 'alice-pw', nickname: 'Al' });
  assert.equal(r.status, 200, r.text);
});
after(() => s.close());

const tokenUrl = () => `${s.url}/demo/chat/token`;
const clientGrant = (extra: Record<string, unknown> = {}) =>
  req(tokenUrl(), 'POST', { grant_type: 'client_credentials', client_id: s.demo.clientId, client_secret: s.demo.clientSecret, ...extra });
const listUsers = (token?: string) => new Api(s.url, token).get('/demo/chat/users');

test('client_credentials grant returns exactly access_token, expires_in and application', async () => {
  const r = await clientGrant();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.deepEqual(Object.keys(r.body).sort(), ['access_token', 'application', 'expires_in']);
  assert.match(r.body.access_token, /^YWMt[A-Za-z0-9_-]{40,}$/);
  assert.equal(r.body.expires_in, 5184000);
  assert.equal(r.body.application, appUuid);
  assert.equal((await listUsers(r.body.access_token)).status, 200);
  // The app segment may be the app's uuid (Usergrid heritage).
  const byUuid = await req(`${s.url}/demo/${appUuid}/token`, 'POST', { grant_type: 'client_credentials', client_id: s.demo.clientId, client_secret: s.demo.clientSecret });
  assert.equal(byUuid.status, 200, byUuid.text);
  assert.equal(byUuid.body.application, appUuid);
});

test('ttl may be a number or a numeric string; 0 means the token never expires', async () => {
  assert.equal((await clientGrant({ ttl: 3600 })).body.expires_in, 3600);
  assert.equal((await clientGrant({ ttl: '7200' })).body.expires_in, 7200);
  assert.equal((await clientGrant({ ttl: null })).body.expires_in, 5184000);
  const forever = await clientGrant({ ttl: 0 });
  assert.equal(forever.status, 200, forever.text);
  assert.equal(forever.body.expires_in, 0);
  const claims = s.cv.services.tokens.decode(forever.body.access_token);
  assert.equal(claims.expires, 0);
  assert.equal((await listUsers(forever.body.access_token)).status, 200);
});

test('a bad ttl is 400 illegal_argument', async () => {
  for (const ttl of [-1, 'abc', 1.5, '12s', true, [5], { s: 1 }, 10 * 365 * 86400 + 1]) {
    const r = await clientGrant({ ttl });
    assert.equal(r.status, 400, `${JSON.stringify(ttl)}: ${r.text}`);
    assert.equal(r.body.error, 'illegal_argument');
    assert.equal(r.body.error_description, 'ttl must be a whole number of seconds (0 = never expires)');
  }
});

test('wrong client_id or client_secret is 400 invalid_grant with only error and error_description', async () => {
  assertGrantError(await clientGrant({ client_id: 'YXA6wrong' }), 'client_id does not match');
  assertGrantError(await clientGrant({ client_id: undefined }), 'client_id does not match');
  assertGrantError(await clientGrant({ client_secret: 'YXA6wrong' }), 'client_secret does not match');
  assertGrantError(await clientGrant({ client_secret: '' }), 'client_secret does not match');
  assert.equal((await clientGrant({ client_id: s.demo.clientId.toLowerCase() })).status, 400);
});

test('an unknown org or app is 404 organization_application_not_found naming the URI', async () => {
  for (const [org, app] of [['demo', 'nope'], ['nope', 'chat']] as const) {
    const r = await req(`${s.url}/${org}/${app}/token`, 'POST', { grant_type: 'client_credentials', client_id: s.demo.clientId, client_secret: s.demo.clientSecret });
    assert.equal(r.status, 404, r.text);
    assert.equal(r.headers.get('content-type'), JSON_CT);
    assert.equal(r.body.error, 'organization_application_not_found');
    assert.equal(r.body.error_description, `Could not find application for ${org}/${app} from URI: ${org}/${app}/token`);
  }
});

test('password grant gives an IM user token with the user entity and never the password', async () => {
  const r = await req(tokenUrl(), 'POST', { grant_type: 'password', username: 'Alice', password: 'alice-pw' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.deepEqual(Object.keys(r.body).sort(), ['access_token', 'expires_in', 'user']);
  assert.match(r.body.access_token, /^YWMt/);
  assert.equal(r.body.expires_in, 5184000);
  const u = r.body.user;
  assert.equal(u.username, 'Alice');
  assert.equal(u.type, 'user');
  assert.equal(u.activated, true);
  assert.equal(u.nickname, 'Al');
  assert.match(u.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-/);
  assert.equal(typeof u.created, 'number');
  assert.equal(typeof u.modified, 'number');
  assert.doesNotMatch(r.text, /alice-pw|password|scrypt/);
  // Usernames are case-insensitive at login too.
  const upper = await req(tokenUrl(), 'POST', { grant_type: 'password', username: 'ALICE', password: 'alice-pw', ttl: 60 });
  assert.equal(upper.status, 200, upper.text);
  assert.equal(upper.body.expires_in, 60);
  // The user token reads its own user.
  assert.equal((await new Api(s.url, r.body.access_token).get('/demo/chat/users/alice')).status, 200);
});

test('password grant with a wrong password, unknown user or missing field is 400 invalid username or password', async () => {
  const bad = 'invalid username or password';
  assertGrantError(await req(tokenUrl(), 'POST', { grant_type: 'password', username: 'Alice', password: 'nope' }), bad);
  assertGrantError(await req(tokenUrl(), 'POST', { grant_type: 'password', username: 'ghost', password: 'alice-pw' }), bad);
  assertGrantError(await req(tokenUrl(), 'POST', { grant_type: 'password', username: 'Alice' }), bad);
  assertGrantError(await req(tokenUrl(), 'POST', { grant_type: 'password', password: 'alice-pw' }), bad);
  // An admin user's password grant does not work on an app.
  assertGrantError(await req(tokenUrl(), 'POST', { grant_type: 'password', username: 'root', password: 'root-pass-1' }), bad);
});

test('an unknown or missing grant_type is 400 unsupported_grant_type', async () => {
  assertGrantError(await req(tokenUrl(), 'POST', { grant_type: 'authorization_code', code: 'x' }), 'grant_type "authorization_code" is not supported', 'unsupported_grant_type');
  assertGrantError(await req(tokenUrl(), 'POST', { client_id: s.demo.clientId, client_secret: s.demo.clientSecret }), 'grant_type must be provided', 'unsupported_grant_type');
  assertGrantError(await req(tokenUrl(), 'POST'), 'grant_type must be provided', 'unsupported_grant_type');
  const arr = await req(tokenUrl(), 'POST', [{ grant_type: 'client_credentials' }]);
  assert.equal(arr.status, 400, arr.text);
  assert.equal(arr.body.error, 'illegal_argument');
});

test('form-encoded token requests work, and so does JSON sent as form-urlencoded or text/plain', async () => {
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: s.demo.clientId, client_secret: s.demo.clientSecret, ttl: '120' });
  const r = await req(tokenUrl(), 'POST', form.toString(), { 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.application, appUuid);
  assert.equal(r.body.expires_in, 120);
  assert.equal((await listUsers(r.body.access_token)).status, 200);

  const json = JSON.stringify({ grant_type: 'client_credentials', client_id: s.demo.clientId, client_secret: s.demo.clientSecret });
  for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'application/json; charset=UTF-8']) {
    const j = await req(tokenUrl(), 'POST', json, { 'content-type': type });
    assert.equal(j.status, 200, `${type}: ${j.text}`);
    assert.equal(j.body.application, appUuid);
  }
  const userForm = new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'alice-pw' });
  const u = await req(tokenUrl(), 'POST', userForm.toString(), { 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(u.status, 200, u.text);
  assert.equal(u.body.user.username, 'Alice');
  const wrong = new URLSearchParams({ grant_type: 'client_credentials', client_id: s.demo.clientId, client_secret: 'x' });
  assertGrantError(await req(tokenUrl(), 'POST', wrong.toString(), { 'content-type': 'application/x-www-form-urlencoded' }), 'client_secret does not match');
});

test('HTTP Basic client credentials are accepted', async () => {
  const basic = Buffer.from(`${s.demo.clientId}:${s.demo.clientSecret}`).toString('base64');
  const r = await req(tokenUrl(), 'POST', undefined, { authorization: `Basic ${basic}` });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.application, appUuid);
  const bad = Buffer.from(`${s.demo.clientId}:nope`).toString('base64');
  assertGrantError(await req(tokenUrl(), 'POST', undefined, { authorization: `Basic ${bad}` }), 'client_secret does not match');
});

test('no token on an admin endpoint is 401 unauthorized naming the permission', async () => {
  assert401(await listUsers(), 'unauthorized', `Subject does not have permission [applications:get:${appUuid}:/users]`, SHIRO);
  assert401(await new Api(s.url).delete('/demo/chat/users/alice'), 'unauthorized', `Subject does not have permission [applications:delete:${appUuid}:/users]`, SHIRO);
  assert401(await new Api(s.url).put('/demo/chat/users/alice', { nickname: 'x' }), 'unauthorized', `Subject does not have permission [applications:put:${appUuid}:/users]`, SHIRO);
  assert.equal((await admin.get('/demo/chat/users/alice')).body.entities[0].nickname, 'Al');
});

test('a garbage token is 401 auth_bad_access_token (corrupt)', async () => {
  const corrupt = 'Unable to authenticate due to corrupt access token';
  for (const t of ['garbage', 'YWMt', 'YWMtabc', 'YWMt!!!!', `YWMt${'A'.repeat(59)}`, 'Bearer']) {
    assert401(await listUsers(t), 'auth_bad_access_token', corrupt, SECURITY);
  }
  const good = (await clientGrant()).body.access_token as string;
  assert401(await listUsers(good + 'AAAA'), 'auth_bad_access_token', corrupt, SECURITY);
  assert401(await listUsers(good.slice(0, -4)), 'auth_bad_access_token', corrupt, SECURITY);
});

test('a well-formed token this server did not sign is 401 auth_bad_access_token "Unable to authenticate"', async () => {
  const good = (await clientGrant()).body.access_token as string;
  // Flip one character in the middle (the token's random part): the signature no longer matches.
  const i = Math.floor(good.length / 2);
  const flipped = good.slice(0, i) + (good[i] === 'A' ? 'B' : 'A') + good.slice(i + 1);
  assert401(await listUsers(flipped), 'auth_bad_access_token', 'Unable to authenticate', SECURITY);
  // A valid token of another server (another signing key).
  const other = await startTestServer({}, tempDir());
  try {
    const foreign = await demoToken(other);
    assert.equal((await new Api(other.url, foreign).get('/demo/chat/users')).status, 200);
    assert401(await listUsers(foreign), 'auth_bad_access_token', 'Unable to authenticate', SECURITY);
  } finally {
    await other.close();
  }
});

test('an expired token is 401 expired_token', async () => {
  const app = (await s.cv.services.store.getApp('demo', 'chat'))!;
  const stale = s.cv.services.tokens.issue('app', app.id, app.credGen, -10);
  const expired = 'Unable to authenticate due to expired access token';
  assert401(await listUsers(stale), 'expired_token', expired, SECURITY);
  // Through the API: a one-second token works, then expires.
  const short = await clientGrant({ ttl: 1 });
  assert.equal(short.body.expires_in, 1);
  await sleep(1100);
  assert401(await listUsers(short.body.access_token), 'expired_token', expired, SECURITY);
});

test('a user token stops working once its password is reset, and the new password logs in', async () => {
  await admin.post('/demo/chat/users', { username: 'bob', password: 'bob-pw' });
  const t = await req(tokenUrl(), 'POST', { grant_type: 'password', username: 'bob', password: 'bob-pw' });
  const bob = new Api(s.url, t.body.access_token);
  assert.equal((await bob.get('/demo/chat/users/bob')).status, 200);
  const reset = await admin.put('/demo/chat/users/bob/password', { newpassword: 'bob-pw-2' });
  assert.equal(reset.status, 200, reset.text);
  assert401(await bob.get('/demo/chat/users/bob'), 'auth_bad_access_token', 'Unable to authenticate', SECURITY);
  assertGrantError(await req(tokenUrl(), 'POST', { grant_type: 'password', username: 'bob', password: 'bob-pw' }), 'invalid username or password');
  const again = await req(tokenUrl(), 'POST', { grant_type: 'password', username: 'bob', password: 'bob-pw-2' });
  assert.equal(again.status, 200, again.text);
  assert.equal((await new Api(s.url, again.body.access_token).get('/demo/chat/users/bob')).status, 200);
  // A deleted user's token dies with it.
  assert.equal((await admin.delete('/demo/chat/users/bob')).status, 200);
  assert401(await new Api(s.url, again.body.access_token).get('/demo/chat/users/bob'), 'auth_bad_access_token', 'Unable to authenticate', SECURITY);
});

test('a user token is 401 on admin endpoints and on other users', async () => {
  const t = await req(tokenUrl(), 'POST', { grant_type: 'password', username: 'alice', password: 'alice-pw', ttl: 0 });
  const alice = new Api(s.url, t.body.access_token);
  assert.equal((await alice.get('/demo/chat/users/Alice')).status, 200);
  assert401(await alice.get('/demo/chat/users'), 'unauthorized', `Subject does not have permission [applications:get:${appUuid}:/users]`, SHIRO);
  assert.equal((await alice.post('/demo/chat/users', { username: 'carol', password: 'pw' })).status, 401);
  assert.equal((await alice.post('/demo/chat/messages', { target_type: 'users', target: ['alice'], msg: { type: 'txt', msg: 'hi' } })).status, 401);
  assert.equal((await alice.get('/demo/chat')).status, 401);
  assert.equal((await alice.get('/management/orgs/demo/apps')).status, 401);
  assert.equal(await s.cv.services.store.getUser((await s.cv.services.store.getApp('demo', 'chat'))!.id, 'carol'), null);
});

test('tokens survive a server restart on the same data folder', async () => {
  const dir = tempDir();
  const first = await startTestServer({}, dir);
  const t = await demoToken(first);
  await first.close();
  const second = await startTestServer({}, dir);
  try {
    assert.equal((await new Api(second.url, t).get('/demo/chat/users')).status, 200);
  } finally {
    await second.close();
  }
});
