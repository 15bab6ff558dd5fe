import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildMessage } from '../../src/domain/messages.js';
import type { AppRow } from '../../src/store/store.js';
import { Api, createApp, demoToken, req, startTestServer, type TestServer } from '../helpers.js';

/* Purge: `DELETE /{org}/{app}/chatmessages?ql=...&limit=N[&cursor=C]` (spec §5.1, the 2016 ops script). */

const T0 = 1403163586000;
let s: TestServer;
let api: Api;
let app: AppRow;
let other: { api: Api; app: AppRow };
let nextId = 0;

interface Spec {
  t: number;
  from: string;
  text?: string;
  loc?: [number, number];
}

/** Stores messages with chosen timestamps into an app; resolves with their msg_ids in order. */
async function seed(a: AppRow, specs: Spec[]): Promise<string[]> {
  const rows = specs.map((x) => buildMessage(a.id, {
    from: x.from, to: 'bob', chatType: 'chat', timestamp: T0 + x.t, msgId: String(7_000_000_000 + nextId++),
    bodies: [x.loc ? { type: 'loc', lat: x.loc[0], lng: x.loc[1], addr: '西城区' } : { type: 'txt', msg: x.text ?? 'plain' }],
  }));
  await s.cv.services.store.insertMessages(rows);
  return rows.map((r) => r.msgId);
}

const url = (ql: string, extra = '', base = '/demo/chat') => `${base}/chatmessages?ql=${encodeURIComponent(ql)}${extra}`;
const ids = (body: { entities: { msg_id: string }[] }) => body.entities.map((e) => e.msg_id);

/** Every msg_id a GET walk of the query returns. */
async function list(a: Api, ql: string, base = '/demo/chat'): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const r = await a.get(url(ql, `&limit=1000${cursor ? `&cursor=${cursor}` : ''}`, base));
    assert.equal(r.status, 200, r.text);
    out.push(...ids(r.body));
    cursor = r.body.cursor;
  } while (cursor);
  return out;
}

/** Purges by following the cursor of each DELETE answer; resolves with each page's msg_ids. */
async function purge(a: Api, ql: string, limits: number[], base = '/demo/chat'): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const limit = limits[pages.length % limits.length]!;
    const r = await a.delete(url(ql, `&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, base));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.action, 'delete');
    assert.equal(r.body.count, r.body.entities.length);
    assert.ok(r.body.entities.length <= limit);
    pages.push(ids(r.body));
    cursor = r.body.cursor;
  } while (cursor);
  return pages;
}

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  app = (await s.cv.services.store.getApp('demo', 'chat'))!;
  const o = await createApp(s, 'purgeorg', 'purgeapp');
  other = { api: new Api(s.url, o.token), app: (await s.cv.services.store.getApp('purgeorg', 'purgeapp'))! };
});
after(() => s.close());

describe('DELETE /chatmessages', () => {
  test('deletes up to limit matching messages per page, with a cursor while more match; the rest stays', async () => {
    const old = await seed(app, Array.from({ length: 17 }, (_, i) => ({ t: i, from: 'pa', text: `purgeword 清理 ${i}` })));
    const keep = await seed(app, [{ t: 5, from: 'pb', text: 'purgeword 清理 keep' }, { t: 500, from: 'pa', text: 'purgeword 清理 new' }]);
    const theirs = await seed(other.app, Array.from({ length: 5 }, (_, i) => ({ t: i, from: 'pa', text: 'purgeword 清理' })));
    const ql = `select * where from = 'pa' and timestamp < ${T0 + 100}`;

    const first = await api.delete(url(ql, '&limit=7'));
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.action, 'delete');
    assert.equal(first.body.path, '/chatmessages');
    assert.deepEqual(ids(first.body), old.slice(0, 7));
    assert.equal(first.body.entities[0].type, 'chatmessage');
    assert.equal(first.body.entities[0].payload.bodies[0].msg, 'purgeword 清理 0');
    assert.equal(first.body.count, 7);
    assert.equal(typeof first.body.cursor, 'string');
    assert.equal(typeof first.body.watermark, 'string');
    assert.deepEqual(await list(api, ql), old.slice(7), 'the first page is gone, the rest is still there');

    const rest: string[] = [];
    let cursor: string | undefined = first.body.cursor;
    let pages = 0;
    while (cursor) {
      const r = await api.delete(url(ql, `&limit=${4 + pages}&cursor=${cursor}`));
      assert.equal(r.status, 200, r.text);
      rest.push(...ids(r.body));
      cursor = r.body.cursor;
      pages++;
    }
    assert.deepEqual(rest, old.slice(7), 'following the cursor deletes the rest, each once');
    assert.equal(pages, 3);

    assert.deepEqual(await list(api, ql), []);
    assert.deepEqual(await list(api, "from = 'pa' or from = 'pb'"), keep, 'non-matching messages stay');
    assert.deepEqual(await list(api, "payload.bodies.msg contains 'purgeword'"), keep, 'full text no longer finds them');
    assert.deepEqual(await list(api, "payload.bodies.msg contains '清理'"), keep);
    assert.deepEqual(await list(api, "payload.bodies.msg contains '理'"), keep);
    assert.deepEqual(await list(other.api, 'select *', '/purgeorg/purgeapp'), theirs, "another app's messages are untouched");
    const again = await api.delete(url(ql, '&limit=7'));
    assert.equal(again.status, 200);
    assert.equal(again.body.count, 0);
    assert.equal(again.body.cursor, undefined);
  });

  test('location within no longer finds purged loc messages; order by desc purges the newest first', async () => {
    const locs = await seed(app, [
      { t: 1000, from: 'pl', loc: [39.9053, 116.36302] },
      { t: 1001, from: 'pl', loc: [39.906, 116.363] },
      { t: 1002, from: 'pl', loc: [39.907, 116.364] },
      { t: 1003, from: 'pm', loc: [39.908, 116.365] },
    ]);
    const within = 'location within 5000 of 39.9053, 116.36302 order by timestamp';
    assert.deepEqual(await list(api, within), locs);
    const r = await api.delete(url("from = 'pl' order by timestamp desc", '&limit=2'));
    assert.deepEqual(ids(r.body), [locs[2], locs[1]]);
    assert.deepEqual(await list(api, within), [locs[0], locs[3]]);
    const r2 = await api.delete(url("from = 'pl' order by timestamp desc", `&limit=2&cursor=${r.body.cursor}`));
    assert.deepEqual(ids(r2.body), [locs[0]]);
    assert.equal(r2.body.cursor, undefined);
    assert.deepEqual(await list(api, within), [locs[3]]);
  });

  test('messages committed after a purge began survive it; a new purge takes them', async () => {
    const early = await seed(app, Array.from({ length: 6 }, (_, i) => ({ t: 2000 + i, from: 'pn' })));
    const pages = [await api.delete(url("from = 'pn'", '&limit=2'))];
    const late = await seed(app, [{ t: 2000, from: 'pn' }, { t: 2010, from: 'pn' }]);
    let cursor: string | undefined = pages[0]!.body.cursor;
    while (cursor) {
      const r = await api.delete(url("from = 'pn'", `&limit=2&cursor=${cursor}`));
      pages.push(r);
      cursor = r.body.cursor;
    }
    assert.deepEqual(pages.flatMap((p) => ids(p.body)), early);
    assert.deepEqual(await list(api, "from = 'pn'"), late);
    assert.deepEqual((await purge(api, "from = 'pn'", [5])).flat(), late);
    assert.deepEqual(await list(api, "from = 'pn'"), []);
  });

  test('select a, b with DELETE still answers entities', async () => {
    const mine = await seed(app, [{ t: 3000, from: 'ps', text: 'one' }, { t: 3001, from: 'ps', text: 'two' }, { t: 3002, from: 'ps' }]);
    const r = await api.delete(url("select from, payload.bodies.msg where from = 'ps'", '&limit=2'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.list, undefined);
    assert.deepEqual(ids(r.body), mine.slice(0, 2));
    assert.equal(r.body.entities[1].payload.bodies[0].msg, 'two');
    const r2 = await api.delete(url("select {who: from} where from = 'ps' limit 5"));
    assert.deepEqual(ids(r2.body), mine.slice(2));
    assert.deepEqual(await list(api, "from = 'ps'"), []);
  });

  test('IM-user, other-app and missing tokens get 401 and delete nothing', async () => {
    const mine = await seed(app, [{ t: 4000, from: 'pu' }, { t: 4001, from: 'pu' }]);
    const theirs = await seed(other.app, [{ t: 4000, from: 'pu' }]);
    assert.equal((await api.post('/demo/chat/users', { username: 'purger', password: 'pw' })).status, 200);
    const t = await req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'password', username: 'purger', password: 'pw' });
    assert.equal(t.status, 200, t.text);
    const attempts = [
      await new Api(s.url, t.body.access_token).delete(url("from = 'pu'")),
      await req(`${s.url}${url("from = 'pu'")}`, 'DELETE'),
      await other.api.delete(url("from = 'pu'")),
      await api.delete(url("from = 'pu'", '', '/purgeorg/purgeapp')),
    ];
    for (const r of attempts) {
      assert.equal(r.status, 401, r.text);
      assert.equal(r.body.error, 'unauthorized');
    }
    assert.deepEqual(await list(api, "from = 'pu'"), mine);
    assert.deepEqual(await list(other.api, "from = 'pu'", '/purgeorg/purgeapp'), theirs);
  });

  test('bad ql and foreign cursors are refused before anything is deleted', async () => {
    const mine = await seed(app, [{ t: 5000, from: 'pq' }, { t: 5001, from: 'pq' }, { t: 5002, from: 'pq' }]);
    const bad = await api.delete(url("from = 'pq' garbage"));
    assert.equal(bad.status, 400);
    const getCursor = (await api.get(url("from = 'pq' order by timestamp desc", '&limit=1'))).body.cursor as string;
    const foreign = await api.delete(url("from = 'pq'", `&limit=1&cursor=${getCursor}`));
    assert.equal(foreign.status, 400);
    assert.equal(foreign.body.error, 'illegal_argument');
    assert.deepEqual(await list(api, "from = 'pq'"), mine);
  });

  test('a purge between two pages of a bulk walk: the next page (read ahead) brings no purged message back', async () => {
    const mine = await seed(app, Array.from({ length: 450 }, (_, i) => ({ t: 7000 + i, from: 'pz' })));
    const ql = "from = 'pz'";
    const p1 = await api.get(url(ql, '&limit=200'));
    assert.deepEqual(ids(p1.body), mine.slice(0, 200));
    // Give the engine its chance to read page 2 ahead before the purge.
    await new Promise((ok) => setTimeout(ok, 20));
    const gone = (await purge(api, `from = 'pz' and timestamp >= ${T0 + 7250} and timestamp < ${T0 + 7300}`, [1000])).flat();
    assert.deepEqual(gone, mine.slice(250, 300));
    const p2 = await api.get(url(ql, `&limit=200&cursor=${p1.body.cursor}`));
    assert.equal(p2.status, 200, p2.text);
    assert.deepEqual(ids(p2.body), [...mine.slice(200, 250), ...mine.slice(300)]);
    assert.equal(p2.body.cursor, undefined);
    // A bulk purge walk (pages of 200, read ahead between them) reports each message once.
    const pages = await purge(api, ql, [200]);
    assert.deepEqual(pages.map((p) => p.length), [200, 200]);
    assert.deepEqual(pages.flat(), [...mine.slice(0, 250), ...mine.slice(300)]);
    assert.deepEqual(await list(api, ql), []);
  });

  test('purges running at the same time never report one message twice', async () => {
    const mine = await seed(app, Array.from({ length: 40 }, (_, i) => ({ t: 6000 + i, from: 'pr' })));
    const runs = await Promise.all([purge(api, "from = 'pr'", [3, 5]), purge(api, "from = 'pr'", [4]), purge(api, "from = 'pr'", [7, 2])]);
    const reported = runs.flat(2);
    assert.deepEqual([...reported].sort(), [...mine].sort(), 'every message reported deleted exactly once');
    assert.deepEqual(await list(api, "from = 'pr'"), []);
  });
});
