'use strict';
// An independent client against a real server: the Apache Usergrid Node.js SDK (npm
// usergrid@2.0.0-rc.2) talks to chatvault over HTTP. It checks the shapes the SDK relies on:
// the token call, entities with a string `type`, `params` echoed as arrays, a top-level `path`,
// `cursor` only while more remains, and error bodies with `error`/`error_description`.
//
// Plain CommonJS on purpose: the SDK reads require.main.filename when it is loaded (it crashes
// under an ES module entry), and it walks this folder for config.json/usergrid.json, so keep
// neither here and keep this file as the test's entry point.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

// The SDK's modules require each other in a circle, and Node warns about it once per property
// while they load (harmless, spec §6). NODE_NO_WARNINGS=1 set here would be read too late, so
// drop just those warnings during the require and keep every other warning.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  if (/inside circular dependency/.test(String(warning && warning.message ? warning.message : warning))) return;
  return emitWarning.call(process, warning, ...rest);
};
let UsergridClient, UsergridQuery, UsergridAuth, UsergridEntity, UsergridUser;
try {
  UsergridClient = require('usergrid/lib/client');
  UsergridQuery = require('usergrid/lib/query');
  UsergridAuth = require('usergrid/lib/auth');
  UsergridEntity = require('usergrid/lib/entity');
  UsergridUser = require('usergrid/lib/user');
} finally {
  process.emitWarning = emitWarning;
}

const DIST = path.resolve(__dirname, '../../dist/src');
const ORG = 'demo';
const APP = 'chat';
const USERS = ['sdk-alice', 'sdk-bob', 'sdk-carol', 'sdk-dave', 'sdk-erin', 'sdk-frank', 'sdk-grace'];
const MESSAGES = 25;

let server;
let dataDir;
let baseUrl;
let demo;
let client;
/** msg_ids of the messages sent after `since`, in send order. */
const sent = [];
let since;

/** Calls an SDK method with a trailing callback; resolves with { error, response, body }. */
function call(fn) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the SDK never called back')), 10000);
    try {
      fn((error, response, body) => {
        clearTimeout(timer);
        resolve({ error, response, body });
      });
    } catch (e) {
      clearTimeout(timer);
      reject(e);
    }
  });
}

/** Like call(), but fails the test when the SDK reports an error. */
async function ok(fn) {
  const r = await call(fn);
  if (r.error) throw new Error(`SDK error: ${JSON.stringify(r.error)} (HTTP ${r.response && r.response.statusCode})`);
  assert.equal(r.response.ok, true);
  return r;
}

/** Follows loadNextPage while the SDK says there is a next page; returns every response. */
async function allPages(first) {
  const pages = [first];
  let cur = first;
  while (cur.hasNextPage) {
    assert.ok(pages.length < 20, 'paging does not end');
    const next = await ok((cb) => cur.loadNextPage(client, cb));
    cur = next.response;
    pages.push(cur);
  }
  return pages;
}

async function sendText(token, from, to, text) {
  const r = await fetch(`${baseUrl}/${ORG}/${APP}/messages?useMsgId=true`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ target_type: 'users', target: [to], msg: { type: 'txt', msg: text }, from }),
  });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return body.data[to];
}

/** Waits until the clock has moved past `ms`. */
async function tickPast(ms) {
  while (Date.now() <= ms) await new Promise((r) => setTimeout(r, 2));
}

before(async () => {
  const { startChatvault } = await import(pathToFileURL(path.join(DIST, 'chatvault.js')).href);
  const { loadConfig } = await import(pathToFileURL(path.join(DIST, 'config.js')).href);
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cv-sdk-'));
  const config = loadConfig({
    PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'silent', CHATVAULT_ADMIN: 'root:root-pass-1',
  });
  let announced = [];
  server = await startChatvault(config, (lines) => (announced = lines));
  const field = (name) => {
    const line = announced.find((l) => l.includes(name));
    assert.ok(line, `the first start announces ${name}`);
    return line.trim().split(/\s+/)[1];
  };
  demo = { clientId: field('client_id'), clientSecret: field('client_secret') };
  baseUrl = `http://127.0.0.1:${server.port}`;
});

after(async () => {
  if (server) await server.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test('authenticateApp gets an app token through POST /{org}/{app}/token', async () => {
  client = new UsergridClient({
    orgId: ORG, appId: APP, baseUrl, clientId: demo.clientId, clientSecret: demo.clientSecret, authMode: UsergridAuth.AUTH_MODE_APP,
  });
  assert.equal(client.authMode, 'APP');
  const { response, body: token } = await ok((cb) => client.authenticateApp(cb));
  assert.equal(response.statusCode, 200);
  assert.equal(typeof token, 'string');
  assert.ok(token.length > 20);
  assert.equal(client.appAuth.token, token);
  assert.equal(client.appAuth.isValid, true);
  assert.ok(client.appAuth.tokenTtl > 0, 'expires_in is read');
});

test('users are created through the SDK (one, then a batch)', async () => {
  const one = await ok((cb) => client.POST('users', { username: USERS[0], password: 'pw-0', nickname: 'Alice' }, cb));
  assert.equal(one.response.statusCode, 200);
  assert.ok(one.response.user instanceof UsergridUser, 'path /users gives response.user');
  assert.equal(one.response.user.username, USERS[0]);
  assert.equal(one.response.user.type, 'user');
  assert.equal(one.response.user.nickname, 'Alice');
  assert.match(one.response.user.uuid, /^[0-9a-f-]{36}$/);

  const rest = USERS.slice(1).map((u, i) => ({ username: u, password: `pw-${i + 1}` }));
  // The SDK flattens its arguments, so a batch (an array body) goes in the options form.
  const batch = await ok((cb) => client.POST({ type: 'users', body: rest }, cb));
  assert.deepEqual(batch.response.users.map((u) => u.username), USERS.slice(1));
  for (const u of batch.response.users) assert.ok(u instanceof UsergridUser);
});

test('users list through the SDK: GET by type, one user by name, and loadNextPage oldest first', async () => {
  const all = await ok((cb) => client.GET('users', cb));
  assert.deepEqual(all.response.users.map((u) => u.username), USERS);
  assert.equal(all.response.hasNextPage, false, 'fewer than the default limit: no cursor');
  assert.equal(all.response.metadata.count, USERS.length);

  const single = await ok((cb) => client.GET('users', USERS[2], cb));
  assert.equal(single.response.user.username, USERS[2]);
  assert.ok(single.body instanceof UsergridUser);

  const first = await ok((cb) => client.GET(new UsergridQuery('users').limit(3), cb));
  assert.deepEqual(first.response.metadata.params.limit, ['3']);
  const pages = await allPages(first.response);
  assert.deepEqual(pages.map((p) => p.entities.length), [3, 3, 1]);
  assert.deepEqual(pages.flatMap((p) => p.users.map((u) => u.username)), USERS);
  assert.equal(pages[2].metadata.cursor, undefined);
  for (const p of pages.slice(0, 2)) assert.equal(typeof p.metadata.cursor, 'string');
});

test('chat messages sent with the app token', async () => {
  const token = client.appAuth.token;
  // A few messages before `since`, which the timestamp filter must leave out.
  let last = 0;
  for (let i = 0; i < 3; i++) {
    await sendText(token, USERS[6], USERS[5], `early ${i}`);
    last = Date.now();
  }
  await tickPast(last);
  since = Date.now();
  await tickPast(since);
  for (let i = 0; i < MESSAGES; i++) {
    const from = USERS[i % 3];
    const to = USERS[(i % 3) + 1];
    const msgId = await sendText(token, from, to, `hello ${i}`);
    assert.match(msgId, /^\d+$/);
    sent.push(msgId);
  }
  assert.equal(new Set(sent).size, MESSAGES);
});

/** Checks a walk of the 25 messages newest first in pages of 10. */
function checkNewestFirst(pages) {
  assert.deepEqual(pages.map((p) => p.entities.length), [10, 10, 5]);
  assert.deepEqual(pages.map((p) => p.hasNextPage), [true, true, false]);
  assert.equal(pages[2].metadata.cursor, undefined, 'the last page has no cursor');
  assert.notEqual(pages[0].metadata.cursor, pages[1].metadata.cursor);
  const entities = pages.flatMap((p) => p.entities);
  for (const e of entities) {
    assert.ok(e instanceof UsergridEntity, 'entities are wrapped as UsergridEntity');
    assert.equal(e.isUser, false);
    assert.equal(e.type, 'chatmessage');
    assert.ok(e.timestamp > since);
  }
  const ids = entities.map((e) => e.msg_id);
  assert.equal(new Set(ids).size, MESSAGES, 'every message exactly once');
  assert.deepEqual(ids, [...sent].reverse(), 'newest first, in send order reversed');
  for (let i = 1; i < entities.length; i++) assert.ok(entities[i - 1].timestamp >= entities[i].timestamp);
  const texts = entities.map((e) => e.payload.bodies[0].msg);
  assert.deepEqual(texts, Array.from({ length: MESSAGES }, (_, i) => `hello ${MESSAGES - 1 - i}`));
  for (const p of pages) {
    assert.equal(p.metadata.path, '/chatmessages');
    assert.equal(p.metadata.count, p.entities.length);
  }
}

test('chatmessages: UsergridQuery builder .gt().desc().limit(10), paged with loadNextPage', async () => {
  const query = new UsergridQuery('chatmessages').gt('timestamp', since).desc('timestamp').limit(10);
  assert.equal(query._ql, `select * where timestamp > ${since}  order by timestamp desc`);
  const first = await ok((cb) => client.GET(query, cb));
  assert.deepEqual(first.response.metadata.params.ql, [query._ql]);
  assert.deepEqual(first.response.metadata.params.limit, ['10']);
  const pages = await allPages(first.response);
  checkNewestFirst(pages);
  // loadNextPage rebuilt the same ql and limit from the echoed params.
  for (const p of pages) {
    assert.deepEqual(p.metadata.params.ql, [query._ql]);
    assert.deepEqual(p.metadata.params.limit, ['10']);
  }
  assert.equal(first.body, first.response.first, 'the callback body is the first entity');
});

test('chatmessages: UsergridQuery.fromString(ql), paged with loadNextPage', async () => {
  const ql = `select * where timestamp > ${since} order by timestamp desc`;
  const first = await ok((cb) => client.GET(new UsergridQuery('chatmessages').fromString(ql).limit(10), cb));
  checkNewestFirst(await allPages(first.response));

  // The same walk oldest first, and the early messages come back without the filter.
  const asc = await ok((cb) => client.GET(new UsergridQuery('chatmessages').asc('timestamp').limit(10), cb));
  const ascPages = await allPages(asc.response);
  assert.deepEqual(ascPages.map((p) => p.entities.length), [10, 10, 8]);
  const ids = ascPages.flatMap((p) => p.entities.map((e) => e.msg_id));
  assert.deepEqual(ids.slice(3), sent);
});

test('chatmessages: GET by type with no query, paged with loadNextPage (defaults: limit 10, oldest first)', async () => {
  const first = await ok((cb) => client.GET('chatmessages', cb));
  assert.deepEqual(first.response.metadata.params, {});
  const pages = await allPages(first.response);
  assert.deepEqual(pages.map((p) => p.entities.length), [10, 10, 8]);
  const ids = pages.flatMap((p) => p.entities.map((e) => e.msg_id));
  assert.deepEqual(ids.slice(3), sent);
});

test('chatmessages: builder conditions joined with and / or / not', async () => {
  const byAlice = await ok((cb) => client.GET(new UsergridQuery('chatmessages').eq('from', USERS[0]).and.gt('timestamp', since).limit(50), cb));
  const aliceIds = sent.filter((_, i) => i % 3 === 0);
  assert.deepEqual(byAlice.response.entities.map((e) => e.msg_id), aliceIds);
  assert.equal(byAlice.response.hasNextPage, false);

  const q = new UsergridQuery('chatmessages').eq('from', USERS[0]).or.eq('from', USERS[1]).desc('timestamp').limit(5);
  const pages = await allPages((await ok((cb) => client.GET(q, cb))).response);
  const ids = pages.flatMap((p) => p.entities.map((e) => e.msg_id));
  assert.deepEqual(ids, sent.filter((_, i) => i % 3 !== 2).reverse());
  assert.deepEqual(pages.map((p) => p.entities.length), [5, 5, 5, 2]);

  const notEarly = await ok((cb) => client.GET(new UsergridQuery('chatmessages').not.eq('from', USERS[6]).limit(50), cb));
  assert.deepEqual(notEarly.response.entities.map((e) => e.msg_id), sent);
});

test('a query matching nothing: empty entities, no next page', async () => {
  const r = await ok((cb) => client.GET(new UsergridQuery('chatmessages').gt('timestamp', Date.now() + 3600000).limit(10), cb));
  assert.deepEqual(r.response.entities, []);
  assert.equal(r.response.hasNextPage, false);
  assert.equal(r.response.first, undefined);
});

test('a bad ql comes back as the SDK error query_parse (HTTP 400)', async () => {
  const r = await call((cb) => client.GET(new UsergridQuery('chatmessages').fromString('select * where timestamp >').limit(10), cb));
  assert.equal(r.response.statusCode, 400);
  assert.equal(r.response.ok, false);
  assert.ok(r.error, 'the callback gets an error');
  assert.equal(r.error.name, 'query_parse');
  assert.equal(typeof r.error.description, 'string');
  assert.ok(r.error.description.length > 0);
  assert.match(r.error.exception, /QueryParseException$/);
});

test('a bad token comes back as the SDK error auth_bad_access_token (HTTP 401)', async () => {
  const r = await call((cb) => client.usingAuth(new UsergridAuth('not-a-real-token')).GET('users', cb));
  assert.equal(r.response.statusCode, 401);
  assert.equal(r.error.name, 'auth_bad_access_token');
  assert.equal(typeof r.error.description, 'string');
  assert.match(r.error.exception, /SecurityException$/);
  // The temporary auth is used once: the app token works again afterwards.
  await ok((cb) => client.GET('users', cb));

  const q = await call((cb) => client.usingAuth(new UsergridAuth('YWMtgarbage')).GET(new UsergridQuery('chatmessages').limit(5), cb));
  assert.equal(q.response.statusCode, 401);
  assert.equal(q.error.name, 'auth_bad_access_token');
});

test('DELETE with a query purges through the SDK and answers with the deleted entities', async () => {
  const q = new UsergridQuery('chatmessages').lt('timestamp', since).limit(10);
  const r = await ok((cb) => client.DELETE(q, cb));
  assert.equal(r.response.metadata.action, 'delete');
  assert.deepEqual(r.response.entities.map((e) => e.payload.bodies[0].msg), ['early 0', 'early 1', 'early 2']);
  assert.equal(r.response.hasNextPage, false);
  const rest = await ok((cb) => client.GET(new UsergridQuery('chatmessages').limit(100), cb));
  assert.deepEqual(rest.response.entities.map((e) => e.msg_id), sent);
});

// Usergrid resolved a singular type as its collection (`/user/<uuid>` = `/users/<uuid>`), and the
// SDK's entity.save/reload/remove build their URL from `entity.type`, which is singular. chatvault
// has no `/:org/:app/user/...` routes yet, so these answer 404 service_resource_not_found.
test('UsergridUser save / reload / remove (PUT, GET, DELETE /user/<uuid>)', async () => {
  const created = await ok((cb) => client.POST('users', { username: 'sdk-zed', password: 'pw-z' }, cb));
  const user = created.response.user;
  user.nickname = 'Zed';
  await ok((cb) => user.save(client, cb));
  user.nickname = 'local only';
  await ok((cb) => user.reload(client, cb));
  assert.equal(user.nickname, 'Zed');
  await ok((cb) => user.remove(client, cb));
  const gone = await call((cb) => client.GET('users', 'sdk-zed', cb));
  assert.equal(gone.response.statusCode, 404);
});
