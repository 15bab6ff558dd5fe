import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildMessage, type ChatType } from '../../src/domain/messages.js';
import type { AppRow } from '../../src/store/store.js';
import { Api, createApp, demoToken, startTestServer, sysadminToken, tempDir, type TestServer } from '../helpers.js';

/* Incremental export: `since=<watermark>` continues exactly where an earlier walk's snapshot ended. */

const T0 = 1403163586000;
let s: TestServer;
let api: Api;
let app: AppRow;
let nextId = 0;

/** Stores messages with chosen timestamps straight into the store; resolves with their msg_ids. */
async function seed(server: TestServer, a: AppRow, specs: { t: number; chatType?: ChatType; from?: string }[]): Promise<string[]> {
  const rows = specs.map((x) => buildMessage(a.id, {
    from: x.from ?? 'alice', to: x.chatType === 'groupchat' ? '1411527886490154' : 'bob', chatType: x.chatType ?? 'chat',
    bodies: [{ type: 'txt', msg: `message ${nextId}` }], timestamp: T0 + x.t, msgId: String(8_000_000_000 + nextId++),
  }));
  await server.cv.services.store.insertMessages(rows);
  return rows.map((r) => r.msgId);
}

/** Sends one message over HTTP (stamped now by the server); resolves with its msg_id. */
async function send(a: Api, base: string, to: string, text: string): Promise<string> {
  const r = await a.post(`${base}/messages?useMsgId=true`, { target_type: 'users', target: [to], from: 'carol', msg: { type: 'txt', msg: text } });
  assert.equal(r.status, 200, r.text);
  return r.body.data[to] as string;
}

interface Walk {
  ids: string[];
  watermarks: string[];
  cursors: string[];
}

const path = (base: string, ql: string, limit: number, since?: string, cursor?: string) =>
  `${base}/chatmessages?ql=${encodeURIComponent(ql)}&limit=${limit}${since ? `&since=${since}` : ''}${cursor ? `&cursor=${cursor}` : ''}`;

/** Walks every page; `between` runs after each page (to write while the walk is under way). */
async function walk(a: Api, base: string, ql: string, limit: number, since?: string, between?: () => Promise<unknown>): Promise<Walk> {
  const w: Walk = { ids: [], watermarks: [], cursors: [] };
  let cursor: string | undefined;
  do {
    const r = await a.get(path(base, ql, limit, since, cursor));
    assert.equal(r.status, 200, r.text);
    assert.equal(typeof r.body.watermark, 'string', 'every page has a watermark');
    w.watermarks.push(r.body.watermark);
    w.ids.push(...(r.body.entities as { msg_id: string }[]).map((e) => e.msg_id));
    cursor = r.body.cursor;
    if (cursor) w.cursors.push(cursor);
    await between?.();
  } while (cursor);
  assert.equal(new Set(w.ids).size, w.ids.length, 'no message twice in one walk');
  assert.equal(new Set(w.watermarks).size, 1, 'one watermark for the whole walk');
  return w;
}

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  app = (await s.cv.services.store.getApp('demo', 'chat'))!;
});
after(() => s.close());

describe('tailing with since=', () => {
  test('several rounds with writes in between (and during) never miss or repeat a message', async () => {
    const ql = "select * where chat_type = 'chat' order by timestamp desc";
    const base = '/demo/chat';
    const matching: string[] = [];
    matching.push(...(await seed(s, app, Array.from({ length: 25 }, (_, i) => ({ t: 1000 + i * 10 })))));
    await seed(s, app, [{ t: 1005, chatType: 'groupchat' }]);
    let during: string[] = [];
    // Messages written while a walk runs belong to the next round, not to this one.
    const writeDuring = async () => {
      during.push(...(await seed(s, app, [{ t: 1001 }])));
      await seed(s, app, [{ t: 1002, chatType: 'groupchat' }]);
    };
    let w = await walk(api, base, ql, 7, undefined, writeDuring);
    assert.deepEqual(w.ids, [...matching].reverse());
    const exported = [...w.ids];
    for (let round = 1; round <= 5; round++) {
      const prevDuring = during;
      during = [];
      const fresh: string[] = [];
      if (round !== 3) {
        // Late arrivals (older timestamps than anything exported), same-millisecond ties and HTTP sends.
        fresh.push(...(await seed(s, app, [{ t: 10 * round }, { t: 1000 }, { t: 1000 }])));
        fresh.push(await send(api, base, 'bob', `round ${round}`));
        await seed(s, app, [{ t: 20 * round, chatType: 'groupchat' }]);
        fresh.push(...(await seed(s, app, [{ t: 5000 + round, from: 'Dave' }])));
      }
      const prev = w.watermarks[0]!;
      w = await walk(api, base, ql, round, prev, writeDuring);
      const newOnes = [...prevDuring, ...fresh];
      assert.deepEqual([...w.ids].sort(), [...newOnes].sort(), `round ${round}: exactly what was written since the watermark`);
      for (const id of w.ids) assert.ok(!exported.includes(id), `round ${round}: ${id} was exported before`);
      exported.push(...w.ids);
    }
    // A last round with nothing new: the final watermark gives nothing.
    const rest = await walk(api, base, ql, 10, w.watermarks[0]!);
    assert.deepEqual(rest.ids.sort(), [...during].sort());
    exported.push(...rest.ids);
    const everything = await walk(api, base, ql, 1000);
    assert.deepEqual([...exported].sort(), [...everything.ids].sort(), 'the rounds together are the whole history, once');
  });

  test('a since walk keeps the query order, with ties in insertion order', async () => {
    const w0 = await walk(api, '/demo/chat', 'order by timestamp desc', 50);
    const ids = await seed(s, app, [{ t: 7 }, { t: 7 }, { t: 9 }, { t: 7 }]);
    const w1 = await walk(api, '/demo/chat', 'order by timestamp desc', 2, w0.watermarks[0]);
    assert.deepEqual(w1.ids, [ids[2], ids[3], ids[1], ids[0]]);
    const w2 = await walk(api, '/demo/chat', 'order by timestamp asc', 3, w0.watermarks[0]);
    assert.deepEqual(w2.ids, [ids[0], ids[1], ids[3], ids[2]]);
  });
});

describe('watermarks and cursors of since walks', () => {
  test('every page of a walk carries the same watermark, also with writes between pages and for projections', async () => {
    await seed(s, app, Array.from({ length: 9 }, (_, i) => ({ t: 2000 + i })));
    const w = await walk(api, '/demo/chat', 'select * order by from', 2, undefined, () => seed(s, app, [{ t: 2001 }]));
    assert.ok(w.watermarks.length > 3);
    const p = await api.get(path('/demo/chat', 'select from, to', 3));
    assert.equal(p.status, 200);
    assert.ok(Array.isArray(p.body.list));
    assert.equal(typeof p.body.watermark, 'string');
    const empty = await api.get(path('/demo/chat', "from = 'nobody'", 3));
    assert.equal(empty.body.count, 0);
    assert.equal(typeof empty.body.watermark, 'string');
  });

  test('a since walk pages with its own cursors; a cursor of another since, or of none, is refused', async () => {
    const ql = 'select * order by timestamp';
    const w0 = await walk(api, '/demo/chat', ql, 1000);
    const firstBatch = await seed(s, app, Array.from({ length: 7 }, (_, i) => ({ t: 3000 + i })));
    const w1 = await walk(api, '/demo/chat', ql, 1000);
    const secondBatch = await seed(s, app, Array.from({ length: 5 }, (_, i) => ({ t: 3100 + i })));
    const since0 = w0.watermarks[0]!;
    const since1 = w1.watermarks[0]!;
    assert.notEqual(since0, since1);

    const paged = await walk(api, '/demo/chat', ql, 3, since0);
    assert.deepEqual(paged.ids, [...firstBatch, ...secondBatch]);
    assert.equal(paged.cursors.length, 3);
    const c = paged.cursors[0]!;
    const ok = await api.get(path('/demo/chat', ql, 3, since0, c));
    assert.deepEqual(ok.body.entities.map((e: { msg_id: string }) => e.msg_id), firstBatch.slice(3, 6));

    const plainCursor = (await api.get(path('/demo/chat', ql, 3))).body.cursor as string;
    for (const [what, p] of [
      ['a cursor of another since', path('/demo/chat', ql, 3, since1, c)],
      ['a since cursor without since', path('/demo/chat', ql, 3, undefined, c)],
      ['a cursor of a walk without since', path('/demo/chat', ql, 3, since0, plainCursor)],
      ['a since cursor with another query', path('/demo/chat', 'select * order by timestamp desc', 3, since0, c)],
    ] as const) {
      const r = await api.get(p);
      assert.equal(r.status, 400, what);
      assert.equal(r.body.error, 'illegal_argument', what);
      assert.match(r.body.error_description, /cursor/, what);
    }
  });

  test('a watermark of another app is refused, both ways', async () => {
    const other = await createApp(s, 'incorg', 'incapp');
    const otherApi = new Api(s.url, other.token);
    const mine = (await api.get(path('/demo/chat', 'select *', 1))).body.watermark as string;
    const theirs = (await otherApi.get(path('/incorg/incapp', 'select *', 1))).body.watermark as string;
    for (const r of [await api.get(path('/demo/chat', 'select *', 5, theirs)), await otherApi.get(path('/incorg/incapp', 'select *', 5, mine))]) {
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.error, 'illegal_argument');
      assert.match(r.body.error_description, /since/);
    }
  });

  test('garbage, tampered and cursor-shaped since values are refused', async () => {
    const r0 = await api.get(path('/demo/chat', 'select *', 1));
    const wm = r0.body.watermark as string;
    const flipped = wm.slice(0, 20) + (wm[20] === 'A' ? 'B' : 'A') + wm.slice(21);
    for (const bad of ['garbage', '%%%', '12345', wm.slice(0, -4), flipped, r0.body.cursor as string, 'LTU2ODc0MzQz']) {
      const r = await api.get(`/demo/chat/chatmessages?ql=select%20*&since=${encodeURIComponent(bad)}`);
      assert.equal(r.status, 400, `${bad}: ${r.text}`);
      assert.equal(r.body.error, 'illegal_argument');
    }
    const asCursor = await api.get(path('/demo/chat', 'select *', 1, undefined, wm));
    assert.equal(asCursor.status, 400, 'a watermark is no cursor');
  });
});

describe('after a restart on the same data folder', () => {
  test('cursors and watermarks keep working', async () => {
    const dir = tempDir();
    const s1 = await startTestServer({}, dir);
    const app1 = (await s1.cv.services.store.getApp('demo', 'chat'))!;
    const api1 = new Api(s1.url, await demoToken(s1));
    const ql = "select * where from = 'alice' order by timestamp desc";
    const originals = await seed(s1, app1, Array.from({ length: 12 }, (_, i) => ({ t: i * 3 })));
    await seed(s1, app1, [{ t: 4, from: 'bob' }]);
    const page1 = await api1.get(path('/demo/chat', ql, 5));
    assert.equal(page1.status, 200);
    const cursor = page1.body.cursor as string;
    const watermark = page1.body.watermark as string;
    const later = await seed(s1, app1, [{ t: 1 }, { t: 100 }]);
    await s1.close();

    const s2 = await startTestServer({}, dir);
    try {
      const api2 = new Api(s2.url, await sysadminToken(s2));
      const ids = page1.body.entities.map((e: { msg_id: string }) => e.msg_id) as string[];
      let c: string | undefined = cursor;
      while (c) {
        const r = await api2.get(path('/demo/chat', ql, 4, undefined, c));
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.watermark, watermark, 'the walk keeps its watermark across the restart');
        ids.push(...r.body.entities.map((e: { msg_id: string }) => e.msg_id));
        c = r.body.cursor;
      }
      assert.deepEqual(ids, [...originals].reverse(), 'the walk resumed after the restart, exactly once');
      const tail = await walk(api2, '/demo/chat', ql, 1, watermark);
      assert.deepEqual(tail.ids, [later[1], later[0]]);
      const newer = await seed(s2, (await s2.cv.services.store.getApp('demo', 'chat'))!, [{ t: 50 }]);
      assert.deepEqual((await walk(api2, '/demo/chat', ql, 10, tail.watermarks[0])).ids, newer);
    } finally {
      await s2.close();
    }
  });
});
