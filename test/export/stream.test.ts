import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { buildMessage } from '../../src/domain/messages.js';
import type { AppRow } from '../../src/store/store.js';
import { Api, demoToken, startTestServer, type TestServer } from '../helpers.js';

let s: TestServer;
let api: Api;
let app: AppRow;
const N = 5000;

interface RawRes {
  status: number;
  headers: http.IncomingHttpHeaders;
  trailers: NodeJS.Dict<string>;
  body: Buffer;
}

/** A GET that also returns HTTP trailers (fetch cannot see them). */
function rawGet(path: string, opts: { abortAfterBytes?: number } = {}): Promise<RawRes> {
  return new Promise((resolve, reject) => {
    const r = http.get(`${s.url}${path}`, { headers: { authorization: `Bearer ${api.token}` } }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (opts.abortAfterBytes !== undefined && n >= opts.abortAfterBytes) {
          r.destroy();
          resolve({ status: res.statusCode!, headers: res.headers, trailers: {}, body: Buffer.concat(chunks) });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    r.on('error', (e) => (opts.abortAfterBytes !== undefined ? undefined : reject(e)));
  });
}

function lines(b: Buffer): Record<string, unknown>[] {
  return b.toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  app = (await s.cv.services.store.getApp('demo', 'chat'))!;
  const t0 = Date.UTC(2026, 0, 1);
  const rows = Array.from({ length: N }, (_, i) =>
    buildMessage(app.id, {
      from: `u${i % 7}`, to: `u${(i + 1) % 7}`, chatType: 'chat',
      bodies: [{ type: 'txt', msg: i % 3 === 0 ? `line, with "quotes"\nand newline ${i}` : `hello ${i}` }],
      ext: i % 5 === 0 ? { n: i } : undefined,
      // Timestamps out of insertion order on purpose: the stream follows storage order.
      timestamp: t0 + ((i * 7919) % N), msgId: String(5000000000 + i),
    }),
  );
  await s.cv.services.store.insertMessages(rows);
});
after(() => s.close());

describe('streaming export', () => {
  test('ndjson streams every message in storage order, in the paged record shape, then an end line', async () => {
    const r = await rawGet('/demo/chat/chatmessages/export');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /application\/x-ndjson/);
    const recs = lines(r.body);
    const end = recs.pop()!;
    assert.equal(end.type, 'export_end');
    assert.equal(end.count, N);
    assert.equal(typeof end.watermark, 'string');
    assert.equal(recs.length, N);
    assert.deepEqual(recs.map((x) => x.msg_id), Array.from({ length: N }, (_, i) => String(5000000000 + i)));
    const paged = await api.get(`/demo/chat/chatmessages?ql=${encodeURIComponent("select * where msg_id = '5000000003'")}`);
    assert.deepEqual(recs[3], paged.body.entities[0]);
  });

  test('the stream equals the paged walk of the same query (as sets)', async () => {
    const ql = "select * where from = 'u3' or payload.ext.n > 4000";
    const r = await rawGet(`/demo/chat/chatmessages/export?ql=${encodeURIComponent(ql)}`);
    const streamed = lines(r.body).filter((x) => x.type === 'chatmessage').map((x) => x.msg_id as string);
    const walked: string[] = [];
    let cursor: string | undefined;
    do {
      const p = await api.get(`/demo/chat/chatmessages?ql=${encodeURIComponent(ql)}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      walked.push(...(p.body.entities as { msg_id: string }[]).map((e) => e.msg_id));
      cursor = p.body.cursor;
    } while (cursor);
    assert.equal(streamed.length, new Set(streamed).size);
    assert.deepEqual([...streamed].sort(), [...walked].sort());
  });

  test('a stream cut in the middle and resumed with after= gives every message exactly once', async () => {
    const cut = await rawGet('/demo/chat/chatmessages/export', { abortAfterBytes: 200_000 });
    const text = cut.body.toString('utf8');
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    const got = lines(Buffer.from(complete)).map((x) => x.msg_id as string);
    assert.ok(got.length > 0 && got.length < N);
    const rest = await rawGet(`/demo/chat/chatmessages/export?after=${got[got.length - 1]}`);
    const more = lines(rest.body).filter((x) => x.type === 'chatmessage').map((x) => x.msg_id as string);
    const all = [...got, ...more];
    assert.equal(all.length, N);
    assert.equal(new Set(all).size, N);
  });

  test('gzip=true sends a gzip file of the same lines', async () => {
    const r = await rawGet('/demo/chat/chatmessages/export?gzip=true&ql=' + encodeURIComponent("select * where from = 'u1'"));
    assert.equal(r.headers['content-type'], 'application/gzip');
    assert.match(String(r.headers['content-disposition']), /\.ndjson\.gz/);
    const recs = lines(gunzipSync(r.body));
    assert.equal(recs.pop()!.type, 'export_end');
    assert.ok(recs.every((x) => x.from === 'u1'));
  });

  test('csv has the documented columns, RFC 4180 quoting and count/watermark trailers', async () => {
    const r = await rawGet('/demo/chat/chatmessages/export?format=csv&ql=' + encodeURIComponent("select * where msg_id = '5000000000'"));
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /text\/csv/);
    const text = r.body.toString('utf8');
    assert.ok(text.startsWith('msg_id,timestamp,from,to,chat_type,type,msg,url,filename,lat,lng,addr,length,ext\r\n'));
    assert.ok(text.includes('"line, with ""quotes""\nand newline 0"'));
    assert.ok(text.includes('"{""n"":0}"'));
    assert.equal(r.trailers['x-export-count'], '1');
    assert.ok(r.trailers['x-export-watermark']);
  });

  test('since= streams only what was committed after the watermark', async () => {
    const first = lines((await rawGet('/demo/chat/chatmessages/export')).body);
    const wm = first[first.length - 1]!.watermark as string;
    await api.post('/demo/chat/messages', { target_type: 'users', target: ['a', 'b'], msg: { type: 'txt', msg: 'new' } });
    const next = lines((await rawGet(`/demo/chat/chatmessages/export?since=${encodeURIComponent(wm)}`)).body);
    const end = next.pop()!;
    assert.deepEqual(next.map((x) => x.to), ['a', 'b']);
    assert.equal(end.count, 2);
  });

  test('bad requests get Easemob errors', async () => {
    for (const [path, code] of [
      ['/demo/chat/chatmessages/export?format=xml', 400],
      ['/demo/chat/chatmessages/export?after=404404', 400],
      ['/demo/chat/chatmessages/export?after=5000000001&ql=order%20by%20timestamp', 400],
      ['/demo/chat/chatmessages/export?ql=select%20*%20where%20a%20%3D', 400],
      ['/demo/chat/chatmessages/export?since=nonsense', 400],
    ] as const) {
      const r = await api.get(path);
      assert.equal(r.status, code, path);
      assert.equal(typeof r.body.error, 'string');
    }
    const none = await new Api(s.url).get('/demo/chat/chatmessages/export');
    assert.equal(none.status, 401);
  });
});
