import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Api, createApp, startTestServer, type Res, type TestServer } from '../helpers.js';

const JSON_CT = 'application/json;charset=UTF-8';

let s: TestServer;
let api: Api;
let appUuid: string;
const base = '/pages/list/users';
before(async () => {
  s = await startTestServer();
  const a = await createApp(s, 'pages', 'list');
  api = new Api(s.url, a.token);
  appUuid = a.uuid;
});
after(() => s.close());

const names = (r: Res): string[] => r.body.entities.map((e: { username: string }) => e.username);

function assertBadCursor(r: Res, description: string | RegExp): void {
  assert.equal(r.status, 400, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.equal(r.body.error, 'illegal_argument');
  assert.equal(r.body.exception, 'java.lang.IllegalArgumentException');
  if (description instanceof RegExp) assert.match(r.body.error_description, description);
  else assert.equal(r.body.error_description, description);
}

test('an empty app lists no users, count 0 and no cursor', async () => {
  const r = await api.get(base);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.equal(r.body.action, 'get');
  assert.equal(r.body.application, appUuid);
  assert.equal(r.body.path, '/users');
  assert.equal(r.body.uri, `${s.url}/pages/list/users`);
  assert.equal(r.body.organization, 'pages');
  assert.equal(r.body.applicationName, 'list');
  assert.deepEqual(r.body.params, {});
  assert.deepEqual(r.body.entities, []);
  assert.equal(r.body.count, 0);
  assert.equal('cursor' in r.body, false);
});

test('the documented recipe: u, u1..u10; limit=3 gives u,u1,u2 and the next page with limit=4 gives u3..u6', async () => {
  for (const n of ['u', ...Array.from({ length: 10 }, (_, i) => `u${i + 1}`)]) {
    const r = await api.post(base, { username: n, password: 'pw' });
    assert.equal(r.status, 200, r.text);
  }
  const p1 = await api.get(`${base}?limit=3`);
  assert.equal(p1.status, 200, p1.text);
  assert.deepEqual(names(p1), ['u', 'u1', 'u2']);
  assert.equal(p1.body.count, 3);
  assert.deepEqual(p1.body.params, { limit: ['3'] });
  assert.equal(typeof p1.body.cursor, 'string');
  assert.match(p1.body.cursor, /^[A-Za-z0-9_-]+$/);

  const p2 = await api.get(`${base}?limit=4&cursor=${p1.body.cursor}`);
  assert.equal(p2.status, 200, p2.text);
  assert.deepEqual(names(p2), ['u3', 'u4', 'u5', 'u6']);
  assert.equal(p2.body.count, 4);
  assert.deepEqual(p2.body.params, { limit: ['4'], cursor: [p1.body.cursor] });
  assert.equal(typeof p2.body.cursor, 'string');

  // The last page carries no cursor, also when it is exactly full.
  const p3 = await api.get(`${base}?limit=4&cursor=${p2.body.cursor}`);
  assert.deepEqual(names(p3), ['u7', 'u8', 'u9', 'u10']);
  assert.equal('cursor' in p3.body, false);
  // The same cursor gives the same page again.
  assert.deepEqual(names(await api.get(`${base}?limit=4&cursor=${p1.body.cursor}`)), ['u3', 'u4', 'u5', 'u6']);
});

test('the list is oldest first; default 10; limit=abc, 0, -1 and empty fall back to 10', async () => {
  const all = await api.get(`${base}?limit=100`);
  assert.equal(all.body.count, 11);
  assert.equal('cursor' in all.body, false);
  const created = all.body.entities.map((e: { created: number }) => e.created);
  assert.deepEqual(created, [...created].sort((a, b) => a - b));
  for (const q of ['', '?limit=abc', '?limit=0', '?limit=-1', '?limit=', '?limit=1.5x']) {
    const r = await api.get(base + q);
    assert.equal(r.status, 200, `${q}: ${r.text}`);
    assert.equal(r.body.count, 10, q);
    assert.deepEqual(names(r), names(all).slice(0, 10));
    assert.equal(typeof r.body.cursor, 'string', q);
  }
  const rest = await api.get(`${base}?cursor=${(await api.get(base)).body.cursor}`);
  assert.deepEqual(names(rest), ['u10']);
  assert.equal('cursor' in rest.body, false);
});

test('users registered in one batch list in the order given', async () => {
  const r = await api.post(base, [{ username: 'zeta', password: 'pw' }, { username: 'alpha', password: 'pw' }, { username: 'mid', password: 'pw' }]);
  assert.equal(r.status, 200, r.text);
  const all = await api.get(`${base}?limit=100`);
  assert.deepEqual(names(all).slice(-3), ['zeta', 'alpha', 'mid']);
});

test('a garbage cursor or a cursor from another app is 400', async () => {
  assertBadCursor(await api.get(`${base}?cursor=garbage`), /is not a valid cursor$/);
  assertBadCursor(await api.get(`${base}?cursor=${'!'.repeat(10)}`), /is not a valid cursor$/);
  const other = await createApp(s, 'pages', 'other');
  const otherApi = new Api(s.url, other.token);
  await otherApi.post('/pages/other/users', [{ username: 'o1', password: 'pw' }, { username: 'o2', password: 'pw' }]);
  const foreign = await otherApi.get('/pages/other/users?limit=1');
  assert.equal(typeof foreign.body.cursor, 'string');
  assertBadCursor(await api.get(`${base}?limit=1&cursor=${foreign.body.cursor}`),
    'cursor does not belong to this query: it was made by another query, app or server');
  // And the other way round.
  const mine = await api.get(`${base}?limit=1`);
  assertBadCursor(await otherApi.get(`/pages/other/users?cursor=${mine.body.cursor}`), /another query, app or server/);
  // Tampering with a real cursor is caught too.
  const c = mine.body.cursor as string;
  const i = Math.floor(c.length / 2);
  const tampered = c.slice(0, i) + (c[i] === 'A' ? 'B' : 'A') + c.slice(i + 1);
  assert.equal((await api.get(`${base}?cursor=${tampered}`)).status, 400);
});

test('limit above 100 is clamped to 100', async () => {
  const many = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ username: `${prefix}${i}`, password: 'pw' }));
  assert.equal((await api.post(base, many('bulk-a', 60))).status, 200);
  assert.equal((await api.post(base, many('bulk-b', 40))).status, 200);
  const total = 11 + 3 + 100;
  const r = await api.get(`${base}?limit=1000`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.count, 100);
  assert.equal(r.body.entities.length, 100);
  assert.deepEqual(r.body.params, { limit: ['1000'] });
  assert.equal(typeof r.body.cursor, 'string');
  const next = await api.get(`${base}?limit=1000&cursor=${r.body.cursor}`);
  assert.equal(next.body.count, total - 100);
  assert.equal('cursor' in next.body, false);
  // Every user exactly once across the pages.
  assert.equal(new Set([...names(r), ...names(next)]).size, total);
});

test('DELETE /users?limit=N deletes the N oldest users and returns them', async () => {
  const d = await api.delete(`${base}?limit=3`);
  assert.equal(d.status, 200, d.text);
  assert.equal(d.headers.get('content-type'), JSON_CT);
  assert.equal(d.body.action, 'delete');
  assert.equal(d.body.path, '/users');
  assert.equal(d.body.application, appUuid);
  assert.deepEqual(names(d), ['u', 'u1', 'u2']);
  assert.equal(d.body.count, 3);
  assert.deepEqual(d.body.params, { limit: ['3'] });
  assert.equal(typeof d.body.cursor, 'string');
  assert.doesNotMatch(d.text, /"password"\s*:|scrypt\$/);
  assert.deepEqual(names(await api.get(`${base}?limit=2`)), ['u3', 'u4']);
  assert.equal((await api.get(`${base}/u1`)).status, 404);

  // Without a limit, 10 go.
  const ten = await api.delete(base);
  assert.equal(ten.body.count, 10);
  assert.deepEqual(names(ten).slice(0, 2), ['u3', 'u4']);

  // A wipe as a client test suite does it: every remaining user, then an empty list.
  let left = (await api.get(`${base}?limit=100`)).body.count as number;
  while (left > 0) {
    const w = await api.delete(`${base}?limit=100`);
    assert.equal(w.status, 200, w.text);
    left = (await api.get(`${base}?limit=100`)).body.count;
  }
  const empty = await api.delete(`${base}?limit=100`);
  assert.equal(empty.status, 200, empty.text);
  assert.deepEqual(empty.body.entities, []);
  assert.equal('cursor' in empty.body, false);
  // The other app of the org kept its users.
  const other = await s.cv.services.store.getApp('pages', 'other');
  assert.notEqual(await s.cv.services.store.getUser(other!.id, 'o1'), null);
});
