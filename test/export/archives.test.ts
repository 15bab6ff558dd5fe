import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { buildMessage } from '../../src/domain/messages.js';
import type { AppRow } from '../../src/store/store.js';
import { Api, demoToken, req, startTestServer, type TestServer } from '../helpers.js';

let s: TestServer;
let api: Api;
let app: AppRow;
const H = Date.UTC(2025, 0, 1, 10); // 2025010110 in UTC, 2025010118 in +08:00
let next = 1;

async function put(ts: number, msg: string): Promise<string> {
  const id = String(7000000000 + next++);
  await s.cv.services.store.insertMessages([buildMessage(app.id, { from: 'a', to: 'b', chatType: 'chat', bodies: [{ type: 'txt', msg }], timestamp: ts, msgId: id, ext: { k: msg } })]);
  return id;
}

async function download(url: string): Promise<{ status: number; body: Buffer; json?: Record<string, unknown> }> {
  const r = await fetch(url);
  const body = Buffer.from(await r.arrayBuffer());
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: r.status, body, json };
}

function records(gz: Buffer): Record<string, unknown>[] {
  return gunzipSync(gz).toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  app = (await s.cv.services.store.getApp('demo', 'chat'))!;
  await put(H - 1, 'last of the previous hour');
  await put(H + 1800_000, 'middle');
  await put(H, 'exactly on the hour');
  await put(H + 3600_000 - 1, 'last millisecond');
  await put(H + 3600_000, 'first of the next hour');
});
after(() => s.close());

describe('hourly archives', () => {
  test('a closed hour: a signed link to a gzip of §5.2 records, every message of the hour once, by timestamp', async () => {
    const r = await api.get('/demo/chat/chatmessages/2025010110');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.data.length, 1);
    const item = r.body.data[0];
    assert.equal(item.count, 3);
    assert.match(item.url, /\/demo\/chat\/chatmessages\/archives\/2025010110\.gz\?tz=%2B00%3A00&Expires=\d+&Signature=/);
    const exp = Number(new URL(item.url).searchParams.get('Expires'));
    assert.ok(Math.abs(exp - (Math.floor(Date.now() / 1000) + 1800)) <= 5);
    const d = await download(item.url);
    assert.equal(d.status, 200);
    assert.equal(d.body.length, item.size);
    assert.equal(createHash('sha256').update(d.body).digest('hex'), item.sha256);
    const recs = records(d.body);
    assert.deepEqual(recs.map((x) => (x.payload as { bodies: { msg: string }[] }).bodies[0]!.msg), ['exactly on the hour', 'middle', 'last millisecond']);
    assert.deepEqual(Object.keys(recs[0]!), ['msg_id', 'timestamp', 'direction', 'to', 'from', 'chat_type', 'payload']);
    assert.deepEqual(recs[0]!.payload, { bodies: [{ type: 'txt', msg: 'exactly on the hour' }], ext: { k: 'exactly on the hour' }, from: 'a', to: 'b' });
    assert.equal(recs[0]!.direction, 'outgoing');
  });

  test('the archive equals the paged export of the same hour', async () => {
    const ql = `select * where timestamp >= ${H} and timestamp < ${H + 3600_000} order by timestamp`;
    const paged = await api.get(`/demo/chat/chatmessages?ql=${encodeURIComponent(ql)}&limit=100`);
    const link = await api.get('/demo/chat/chatmessages/2025010110');
    const recs = records((await download(link.body.data[0].url)).body);
    assert.deepEqual(recs.map((x) => x.msg_id), paged.body.entities.map((e: { msg_id: string }) => e.msg_id));
  });

  test('tz=+08:00 reads the hour in Beijing time; a raw + that became a space still works', async () => {
    for (const tz of ['%2B08:00', '+08:00', '%2B0800']) {
      const r = await api.get(`/demo/chat/chatmessages/2025010118?tz=${tz}`);
      assert.equal(r.status, 200, `${tz}: ${r.text}`);
      assert.equal(r.body.data[0].count, 3);
      assert.equal(records((await download(r.body.data[0].url)).body).length, 3);
    }
    const utc = await api.get('/demo/chat/chatmessages/2025010118');
    assert.equal(utc.status, 404);
  });

  test('errors: malformed hour, the current hour, an empty hour, no token', async () => {
    for (const bad of ['20250101', '2025013110x', '2025023012', '2025010124']) {
      const r = await api.get(`/demo/chat/chatmessages/${bad}`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.body.error_description, 'This chatmessage request is not supported');
    }
    const d = new Date();
    const now = `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}${String(d.getUTCHours()).padStart(2, '0')}`;
    const cur = await api.get(`/demo/chat/chatmessages/${now}`);
    assert.equal(cur.status, 400);
    assert.match(cur.body.error_description, /not over yet/);
    const empty = await api.get('/demo/chat/chatmessages/2024010110');
    assert.equal(empty.status, 404);
    assert.equal(empty.body.error, 'storage_object_not_found');
    assert.equal(empty.body.error_description, 'Failed to find chat message history download url for appkey: demo#chat, time: 2024010110');
    const none = await req(`${s.url}/demo/chat/chatmessages/2025010110`, 'GET');
    assert.equal(none.status, 401);
    const badTz = await api.get('/demo/chat/chatmessages/2025010110?tz=Mars');
    assert.equal(badTz.status, 400);
  });

  test('tampered links are refused with 403', async () => {
    const link = (await api.get('/demo/chat/chatmessages/2025010110')).body.data[0].url as string;
    const u = new URL(link);
    const variants = [
      link.replace('2025010110.gz', '2025010111.gz'),
      link.replace(/Expires=(\d+)/, (_m, e: string) => `Expires=${Number(e) + 1000}`),
      link.replace(/Signature=[^&]+/, 'Signature=AAAA'),
      link.replace('tz=%2B00%3A00', 'tz=%2B08%3A00'),
      `${u.origin}${u.pathname}`,
    ];
    for (const v of variants) {
      const d = await download(v);
      assert.equal(d.status, 403, v);
      assert.equal(d.json?.error, 'forbidden');
    }
  });

  test('an expired link is refused with a clear 403', async () => {
    const short = await startTestServer({ ARCHIVE_LINK_TTL: '1' });
    try {
      const a = (await short.cv.services.store.getApp('demo', 'chat'))!;
      await short.cv.services.store.insertMessages([buildMessage(a.id, { from: 'a', to: 'b', chatType: 'chat', bodies: [{ type: 'txt', msg: 'x' }], timestamp: H + 5, msgId: '1' })]);
      const r = await new Api(short.url, await demoToken(short)).get('/demo/chat/chatmessages/2025010110');
      await new Promise((res) => setTimeout(res, 2100));
      const d = await download(r.body.data[0].url);
      assert.equal(d.status, 403);
      assert.match(String(d.json?.error_description), /expired/);
    } finally {
      await short.close();
    }
  });

  test('a purge or an import into the hour rebuilds its archive', async () => {
    const before1 = (await api.get('/demo/chat/chatmessages/2025010110')).body.data[0];
    const added = await put(H + 60_000, 'imported later');
    const after1 = (await api.get('/demo/chat/chatmessages/2025010110')).body.data[0];
    assert.equal(after1.count, before1.count + 1);
    assert.notEqual(after1.sha256, before1.sha256);
    assert.ok(records((await download(after1.url)).body).some((x) => x.msg_id === added));
    const purge = await api.delete(`/demo/chat/chatmessages?ql=${encodeURIComponent(`select * where msg_id = '${added}'`)}`);
    assert.equal(purge.status, 200);
    const after2 = (await api.get('/demo/chat/chatmessages/2025010110')).body.data[0];
    assert.equal(after2.count, before1.count);
    assert.ok(!records((await download(after2.url)).body).some((x) => x.msg_id === added));
  });
});
