import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildMessage, type MessageSpec } from '../../src/domain/messages.js';
import type { AppRow } from '../../src/store/store.js';
import { Api, createApp, demoToken, req, startTestServer, type TestServer } from '../helpers.js';

let s: TestServer;
let api: Api;
let app: AppRow;
const T0 = 1403163586000;

type Spec = Omit<MessageSpec, 'msgId' | 'timestamp'> & { t: number };

/** Seeds messages with chosen timestamps straight into the real store (as an import would). */
async function seed(specs: Spec[]): Promise<void> {
  const rows = specs.map((x, i) => buildMessage(app.id, { ...x, timestamp: T0 + x.t, msgId: String(9000000000 + x.t * 10 + (i % 10)) }));
  await s.cv.services.store.insertMessages(rows);
}

const txt = (msg: string) => [{ type: 'txt', msg }];

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  app = (await s.cv.services.store.getApp('demo', 'chat'))!;
  await seed([
    { t: 0, from: 'alice', to: 'bob', chatType: 'chat', bodies: txt('Hello world') },
    { t: 1000, from: 'bob', to: 'alice', chatType: 'chat', bodies: txt('hello again, Alice') },
    { t: 2000, from: 'alice', to: '1411527886490154', chatType: 'groupchat', bodies: txt('你好，世界') },
    { t: 3000, from: 'carol', to: 'alice', chatType: 'chat', bodies: [{ type: 'loc', lat: 39.9053, lng: 116.36302, addr: '西城区西便门桥' }] },
    { t: 4000, from: 'Dave', to: 'room1', chatType: 'chatroom', bodies: [{ type: 'img', url: 'http://x/chatfiles/1', filename: 'Cat.JPG', secret: 's' }], ext: { priority: 5, tag: 'Urgent' } },
    { t: 5000, from: 'alice', to: 'bob', chatType: 'chat', bodies: [{ type: 'loc', lat: 39.98, lng: 116.30, addr: 'Haidian' }] },
    { t: 6000, from: 'bob', to: 'alice', chatType: 'chat', bodies: [{ type: 'cmd', action: 'run' }], ext: { priority: 1, tag: 'low' } },
    { t: 6000, from: 'bob', to: 'carol', chatType: 'chat', bodies: txt('same millisecond, later insert') },
    { t: 7000, from: 'erin', to: 'bob', chatType: 'chat', bodies: txt('カタカナとひらがな 한국어 텍스트') },
  ]);
});
after(() => s.close());

const q = (ql: string, extra = '') => `/demo/chat/chatmessages?ql=${encodeURIComponent(ql)}${extra}`;
const msgs = (r: { body: { entities: { payload: { bodies: { msg?: string; type: string }[] }; timestamp: number }[] } }) =>
  r.body.entities.map((e) => e.timestamp - T0);

describe('the documented examples', () => {
  test('order by timestamp desc with limit', async () => {
    const r = await api.get(q('order by timestamp desc', '&limit=3'));
    assert.equal(r.status, 200);
    assert.deepEqual(msgs(r), [7000, 6000, 6000]);
    assert.equal(r.body.action, 'get');
    assert.equal(r.body.path, '/chatmessages');
    assert.equal(r.body.count, 3);
    assert.deepEqual(r.body.params, { ql: ['order by timestamp desc'], limit: ['3'] });
    assert.equal(r.body.organization, 'demo');
    assert.equal(r.body.applicationName, 'chat');
    assert.equal(r.body.application, app.uuid);
    assert.match(r.body.cursor, /^MTYxOTcyOTYyND/);
    assert.equal(typeof r.body.watermark, 'string');
    assert.equal(r.headers.get('content-type'), 'application/json;charset=UTF-8');
  });

  test('a time range with and, ordered desc', async () => {
    const ql = `select * where timestamp<${T0 + 5000} and timestamp>${T0 + 1000} order by timestamp desc`;
    const r = await api.get(q(ql));
    assert.deepEqual(msgs(r), [4000, 3000, 2000]);
    assert.equal(r.body.cursor, undefined);
  });

  test('paging with the cursor of the previous page, to the end', async () => {
    const seen: number[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await api.get(q('select * order by timestamp desc', `&limit=4${cursor ? `&cursor=${cursor}` : ''}`));
      assert.equal(r.status, 200, r.text);
      seen.push(...msgs(r));
      cursor = r.body.cursor;
      pages++;
    } while (cursor);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [7000, 6000, 6000, 5000, 4000, 3000, 2000, 1000, 0]);
  });

  test('timestamp in seconds compares numerically and matches everything', async () => {
    const r = await api.get(q(`select * where timestamp>${Math.floor(T0 / 1000) - 30}`, '&limit=100'));
    assert.equal(r.body.count, 9);
  });
});

describe('results and limits', () => {
  test('default order is timestamp then insertion', async () => {
    const r = await api.get('/demo/chat/chatmessages?limit=100');
    assert.deepEqual(msgs(r), [0, 1000, 2000, 3000, 4000, 5000, 6000, 6000, 7000]);
    assert.equal(r.body.entities[6].payload.bodies[0].type, 'cmd');
    assert.equal(r.body.entities[7].payload.bodies[0].msg, 'same millisecond, later insert');
  });

  for (const [limit, expected] of [['', 9], ['abc', 9], ['0', 9], ['-5', 9], ['2', 2], ['5000', 9]] as const) {
    test(`limit=${limit || '(none)'} gives ${expected === 9 ? 'the default (10)' : expected}`, async () => {
      const r = await api.get(`/demo/chat/chatmessages${limit ? `?limit=${limit}` : ''}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.count, expected);
    });
  }

  test('a trailing limit inside the ql is the limit', async () => {
    const r = await api.get(q('select * order by timestamp limit 2'));
    assert.equal(r.body.count, 2);
    assert.ok(r.body.cursor);
  });

  test('the cursor is absent exactly when nothing more matches', async () => {
    const r = await api.get(q('select *', '&limit=9'));
    assert.equal(r.body.count, 9);
    assert.equal(r.body.cursor, undefined);
    const e = await api.get(q("select * where from = 'nobody'"));
    assert.deepEqual(e.body.entities, []);
    assert.equal(e.body.count, 0);
    assert.equal(e.body.cursor, undefined);
  });
});

describe('operators and fields', () => {
  const count = async (ql: string) => {
    const r = await api.get(q(ql, '&limit=100'));
    assert.equal(r.status, 200, `${ql}: ${r.text}`);
    return msgs(r);
  };

  test('equality on from/to is case-insensitive; eq and = agree', async () => {
    assert.deepEqual(await count("from = 'ALICE'"), [0, 2000, 5000]);
    assert.deepEqual(await count("from eq 'alice'"), [0, 2000, 5000]);
    assert.deepEqual(await count("from = 'dave'"), [4000]);
    assert.deepEqual(await count("to = 'Alice' and from = 'bob'"), [1000, 6000]);
  });

  test('range operators and their word forms', async () => {
    assert.deepEqual(await count(`timestamp lt ${T0 + 1000}`), [0]);
    assert.deepEqual(await count(`timestamp <= ${T0 + 1000}`), [0, 1000]);
    assert.deepEqual(await count(`timestamp gte ${T0 + 7000}`), [7000]);
    assert.deepEqual(await count(`timestamp gt ${T0 + 6000}`), [7000]);
    assert.deepEqual(await count(`timestamp > ${T0 + 6999.5}`), [7000]);
  });

  test('or, not and parentheses, with not > and > or', async () => {
    assert.deepEqual(await count("from = 'carol' or from = 'erin'"), [3000, 7000]);
    assert.deepEqual(await count("from = 'carol' || from = 'erin' && to = 'nobody'"), [3000]);
    assert.deepEqual(await count("(from = 'carol' or from = 'erin') and to = 'bob'"), [7000]);
    assert.deepEqual(await count("not from = 'bob' and chat_type = 'chat'"), [0, 3000, 5000, 7000]);
  });

  test('chat_type, payload.bodies.type and ext fields', async () => {
    assert.deepEqual(await count("chat_type = 'groupchat'"), [2000]);
    assert.deepEqual(await count("payload.bodies.type = 'loc'"), [3000, 5000]);
    assert.deepEqual(await count('payload.ext.priority > 2'), [4000]);
    assert.deepEqual(await count("payload.ext.tag = 'urgent'"), [4000]);
    assert.deepEqual(await count("payload.bodies.filename = 'cat.jpg'"), [4000]);
    assert.deepEqual(await count("payload.bodies.filename = 'ca*'"), [4000]);
  });

  test('an unknown field matches nothing, and not of it matches everything', async () => {
    assert.deepEqual(await count("colour = 'red'"), []);
    assert.equal((await count("not colour = 'red'")).length, 9);
  });

  test('contains: English words and phrases, case-insensitive', async () => {
    assert.deepEqual(await count("payload.bodies.msg contains 'hello'"), [0, 1000]);
    assert.deepEqual(await count("payload.bodies.msg contains 'HELLO WORLD'"), [0]);
    assert.deepEqual(await count("payload.bodies.msg contains 'hel*'"), [0, 1000]);
    assert.deepEqual(await count("payload.bodies.msg contains 'hell'"), []);
  });

  test('contains: Chinese, Japanese and Korean without spaces', async () => {
    assert.deepEqual(await count("payload.bodies.msg contains '你好'"), [2000]);
    assert.deepEqual(await count("payload.bodies.msg contains '世界'"), [2000]);
    assert.deepEqual(await count("payload.bodies.msg contains '世'"), [2000]);
    assert.deepEqual(await count("payload.bodies.msg contains '好世'"), []);
    assert.deepEqual(await count("payload.bodies.msg contains 'ひらがな'"), [7000]);
    assert.deepEqual(await count("payload.bodies.msg contains '한국'"), [7000]);
  });

  test('within finds loc messages, nearest first', async () => {
    assert.deepEqual(await count('location within 1000 of 39.98, 116.30'), [5000]);
    assert.deepEqual(await count('location within 20000 of 39.98, 116.30'), [5000, 3000]);
    assert.deepEqual(await count('location within 20000 of 39.9053, 116.36302'), [3000, 5000]);
    assert.deepEqual(await count('location within 20000 of 39.98, 116.30 order by timestamp desc'), [5000, 3000]);
    assert.deepEqual(await count('location within 10 of 0, 0'), []);
  });

  test('order by several keys, desc', async () => {
    assert.deepEqual(await count("chat_type = 'chat' order by from asc, timestamp desc"), [5000, 0, 6000, 6000, 1000, 3000, 7000]);
  });
});

describe('projections', () => {
  test('select fields answers list rows and pages with a cursor', async () => {
    const r = await api.get(q("select from, to, payload.bodies.msg where chat_type = 'chat'", '&limit=2'));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.list, [['alice', 'bob', 'Hello world'], ['bob', 'alice', 'hello again, Alice']]);
    assert.equal(r.body.entities, undefined);
    assert.equal(r.body.count, 2);
    const next = await api.get(q("select from, to, payload.bodies.msg where chat_type = 'chat'", `&limit=2&cursor=${r.body.cursor}`));
    assert.deepEqual(next.body.list[0], ['carol', 'alice', null]);
  });

  test('select with aliases answers objects', async () => {
    const r = await api.get(q("select {who: from, t: timestamp} where from = 'erin'"));
    assert.deepEqual(r.body.list, [{ who: 'erin', t: T0 + 7000 }]);
  });
});

describe('cursors', () => {
  test('changing only the limit between pages is allowed', async () => {
    const r1 = await api.get(q('select *', '&limit=2'));
    const r2 = await api.get(q('select *', `&limit=5&cursor=${r1.body.cursor}`));
    assert.equal(r2.status, 200);
    assert.deepEqual(msgs(r2), [2000, 3000, 4000, 5000, 6000]);
  });

  test('a cursor used with another query is refused', async () => {
    const r1 = await api.get(q('select *', '&limit=2'));
    const r2 = await api.get(q("select * where from = 'alice'", `&limit=2&cursor=${r1.body.cursor}`));
    assert.equal(r2.status, 400);
    assert.equal(r2.body.error, 'illegal_argument');
    assert.match(r2.body.error_description, /cursor/);
  });

  test('a cursor from another app or org is refused', async () => {
    const other = await createApp(s, 'otherorg', 'otherapp');
    const r1 = await api.get(q('select *', '&limit=2'));
    const r2 = await new Api(s.url, other.token).get(`/otherorg/otherapp/chatmessages?ql=select%20*&limit=2&cursor=${r1.body.cursor}`);
    assert.equal(r2.status, 400);
    assert.match(r2.body.error_description, /cursor/);
  });

  test('tampered and garbage cursors are refused', async () => {
    const r1 = await api.get(q('select *', '&limit=2'));
    const c: string = r1.body.cursor;
    const flipped = c.slice(0, 20) + (c[20] === 'A' ? 'B' : 'A') + c.slice(21);
    for (const bad of [flipped, 'garbage', 'LTU2ODc0MzQz', '%%%']) {
      const r = await api.get(q('select *', `&limit=2&cursor=${encodeURIComponent(bad)}`));
      assert.equal(r.status, 400, bad);
      assert.equal(r.body.error, 'illegal_argument');
    }
  });
});

describe('ql errors', () => {
  for (const [ql, code] of [
    ['select * where name =', 'query_parse'],
    ["select * where from = 'x' garbage", 'query_parse'],
    ['select * where a ! 1', 'query_token'],
    ['where from = "x"', 'query_token'],
    ['order by timestamp desc, timestamp asc', 'query_parse'],
    ['where timestamp > 99999999999999999999', 'number_format'],
  ] as const) {
    test(`${ql} → 400 ${code}`, async () => {
      const r = await api.get(q(ql));
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.error, code);
      assert.match(r.body.error_description, /column \d+|more than once/);
    });
  }
});

describe('who may read', () => {
  test('no token, an IM-user token and a corrupt token are refused', async () => {
    const none = await req(`${s.url}/demo/chat/chatmessages`, 'GET');
    assert.equal(none.status, 401);
    assert.equal(none.body.error, 'unauthorized');
    await api.post('/demo/chat/users', { username: 'reader', password: 'pw' });
    const t = await req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'password', username: 'reader', password: 'pw' });
    const asUser = await new Api(s.url, t.body.access_token).get('/demo/chat/chatmessages');
    assert.equal(asUser.status, 401);
    const corrupt = await new Api(s.url, 'YWMtnot-a-token').get('/demo/chat/chatmessages');
    assert.equal(corrupt.status, 401);
    assert.equal(corrupt.body.error, 'auth_bad_access_token');
  });
});
