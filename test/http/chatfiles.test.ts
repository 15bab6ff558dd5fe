import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.js';
import { Api, createApp, demoToken, req, startTestServer, type TestServer } from '../helpers.js';
import { countStoredRows, storedBlobs } from '../store-under-test.js';
import { assertApiError, download, multipartBody, noisyPng, smallPng, upload } from './chatfile-helpers.js';

const A = '/demo/chat';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const MB = 1024 * 1024;

let s: TestServer;
let adminToken: string;
let userToken: string;
let appUuid: string;
let other: { token: string; uuid: string };
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
// The bytes the server keeps (files under DATA_DIR/files, or PostgreSQL's blobs) and its chat file rows.
const blobs = () => storedBlobs(s.dataDir);
const storedRows = () => countStoredRows(s.dataDir, 'chat_files');
const fileUrl = (uuid: string, appPath = A) => `${s.url}${appPath}/chatfiles/${uuid}`;

/** Uploads one file part the usual way (filename and type) and returns the entity. */
async function put(data: Buffer, opts: { type?: string; headers?: Record<string, string>; fields?: Record<string, string> } = {}) {
  const fields = Object.entries(opts.fields ?? {}).map(([name, v]) => ({ name, data: v }));
  const body = multipartBody([{ name: 'file', filename: 'f.bin', type: opts.type ?? 'application/octet-stream', data }, ...fields]);
  const r = await upload(s.url, A, body, { ...bearer(adminToken), ...opts.headers });
  assert.equal(r.status, 200, r.text);
  return r.body.entities[0] as { uuid: string; 'share-secret'?: string; 'file-metadata': Record<string, unknown> };
}

before(async () => {
  s = await startTestServer();
  adminToken = await demoToken(s);
  const api = new Api(s.url, adminToken);
  assert.equal((await api.post(`${A}/users`, { username: 'alice', password: 'pw-alice' })).status, 200);
  userToken = (await req(`${s.url}${A}/token`, 'POST', { grant_type: 'password', username: 'alice', password: 'pw-alice' })).body.access_token;
  appUuid = (await s.cv.services.store.getApp('demo', 'chat'))!.uuid;
  other = await createApp(s, 'acme', 'other');
});
after(() => s.close());

describe('upload', () => {
  test('answers the E1 chatfile entity in the envelope; restrict-access adds a 48-character share-secret', async () => {
    const png = await smallPng();
    const r = await upload(s.url, A, multipartBody([{ name: 'file', filename: 'a.png', type: 'image/png', data: png }]), {
      ...bearer(adminToken), 'restrict-access': 'true',
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('content-type'), 'application/json;charset=UTF-8');
    assert.equal(r.body.action, 'post');
    assert.equal(r.body.path, '/chatfiles');
    assert.equal(r.body.uri, `${s.url}${A}/chatfiles`);
    assert.equal(r.body.application, appUuid);
    assert.equal(r.body.organization, 'demo');
    assert.equal(r.body.applicationName, 'chat');
    assert.deepEqual(r.body.params, {});
    const e = r.body.entities[0];
    assert.deepEqual(Object.keys(e).sort(), ['created', 'file-metadata', 'modified', 'share-secret', 'type', 'uuid']);
    assert.match(e.uuid, UUID);
    assert.equal(e.type, 'chatfile');
    assert.equal(typeof e.created, 'number');
    assert.equal(e.modified, e.created);
    assert.deepEqual(e['file-metadata'], { 'content-type': 'image/png', 'last-modified': e.modified, 'content-length': png.length });
    assert.match(e['share-secret'], /^[A-Za-z0-9_-]{48}$/);
  });

  test('a 9 MB file round-trips byte for byte with its type and length', async () => {
    const data = randomBytes(9 * MB);
    const e = await put(data, { type: 'application/zip' });
    assert.equal(e['file-metadata']['content-length'], data.length);
    const d = await download(fileUrl(e.uuid), bearer(adminToken));
    assert.equal(d.status, 200);
    assert.equal(d.headers.get('content-type'), 'application/zip');
    assert.equal(d.headers.get('content-length'), String(data.length));
    assert.ok(d.bytes.equals(data));
  });

  test('an 11 MB file gets 413 and leaves nothing on disk or in the store', async () => {
    const blobsBefore = await blobs();
    const rowsBefore = await storedRows();
    const body = multipartBody([{ name: 'file', filename: 'big.bin', type: 'application/octet-stream', data: randomBytes(11 * MB) }]);
    const r = await upload(s.url, A, body, bearer(adminToken));
    assertApiError(r, 413, 'Request Entity Too Large', 'Request Entity Too Large');
    assert.deepEqual(await blobs(), blobsBefore);
    assert.equal(await storedRows(), rowsBefore);
    // The connection is still good for the next request.
    assert.equal((await upload(s.url, A, multipartBody([{ name: 'file', filename: 'x', data: 'ok' }]), bearer(adminToken))).status, 200);
  });

  test('FILE_MAX_BYTES sets the limit: exactly the limit passes, one byte more is 413', async () => {
    const small = await startTestServer({ FILE_MAX_BYTES: '1000' });
    try {
      const t = await demoToken(small);
      const send = (n: number) => upload(small.url, A, multipartBody([{ name: 'file', filename: 'x', data: randomBytes(n) }]), bearer(t));
      assert.equal((await send(1000)).status, 200);
      assertApiError(await send(1001), 413, 'Request Entity Too Large', 'Request Entity Too Large');
      assert.equal((await storedBlobs(small.dataDir)).length, 1);
    } finally {
      await small.close();
    }
  });

  test('FILE_MAX_BYTES defaults to 10 MB and must be a whole number of bytes', () => {
    assert.equal(loadConfig({}).fileMaxBytes, 10 * MB);
    for (const bad of ['abc', '0', '-1']) {
      assert.throws(() => loadConfig({ FILE_MAX_BYTES: bad }), (e: unknown) => e instanceof ConfigError && e.setting === 'FILE_MAX_BYTES');
    }
  });

  test('an IM user of the app may upload; no token, or a token of another app, gets 401', async () => {
    const body = multipartBody([{ name: 'file', filename: 'u.txt', type: 'text/plain', data: 'from alice' }]);
    assert.equal((await upload(s.url, A, body, bearer(userToken))).status, 200);
    const denied = `Subject does not have permission [applications:post:${appUuid}:/chatfiles]`;
    assertApiError(await upload(s.url, A, body), 401, 'unauthorized', denied);
    assertApiError(await upload(s.url, A, body, bearer(other.token)), 401, 'unauthorized', denied);
  });

  test('a body without a part named file, a non-multipart body, a cut-off body and a bad thumbnail size get 400', async () => {
    const blobsBefore = await blobs();
    const rowsBefore = await storedRows();
    const h = bearer(adminToken);
    assertApiError(await upload(s.url, A, multipartBody([{ name: 'hack', data: 'X' }]), h), 400, 'illegal_argument', 'the multipart body has no part named file');
    assertApiError(await upload(s.url, A, multipartBody([{ name: 'other', filename: 'o.bin', data: 'x' }]), h), 400, 'illegal_argument', 'the multipart body has no part named file');
    const json = await req(`${s.url}${A}/chatfiles`, 'POST', { file: 'x' }, h);
    assertApiError(json, 400, 'illegal_argument', 'a chat file is uploaded as multipart/form-data, the file in a part named file');
    const cut = multipartBody([{ name: 'file', filename: 'c.bin', data: randomBytes(50000) }], undefined, false).subarray(0, 30000);
    assertApiError(await upload(s.url, A, cut, h), 400, 'illegal_argument', /^the multipart body is malformed or was cut short/);
    assertApiError(await upload(s.url, A, Buffer.from('--x\r\n'), { ...h, 'content-type': 'multipart/form-data' }), 400, 'illegal_argument', /^the multipart body could not be read/);
    const badThumb = multipartBody([{ name: 'file', filename: 'p.png', data: 'x' }, { name: 'thumbnail-width', data: 'wide' }]);
    assertApiError(await upload(s.url, A, badThumb, h), 400, 'illegal_argument', "thumbnail-width must be a whole number of pixels from 1 to 2048, got 'wide'");
    assert.deepEqual(await blobs(), blobsBefore);
    assert.equal(await storedRows(), rowsBefore);
  });
});

describe('the client variants of spec §6.1', () => {
  test('PHP: the file as a plain form field without filename or Content-Type', async () => {
    const r = await upload(s.url, A, multipartBody([{ name: 'file', data: 'plain field content' }]), bearer(adminToken));
    assert.equal(r.status, 200, r.text);
    const e = r.body.entities[0];
    assert.equal(e['share-secret'], undefined);
    assert.deepEqual(e['file-metadata'], { 'content-type': 'text/plain', 'last-modified': e.modified, 'content-length': 19 });
    const d = await download(fileUrl(e.uuid), bearer(adminToken));
    assert.equal(d.bytes.toString('utf8'), 'plain field content');
  });

  test('PHP with image bytes: the type is read from the bytes', async () => {
    const png = await smallPng();
    const r = await upload(s.url, A, multipartBody([{ name: 'file', data: png }]), bearer(adminToken));
    assert.equal(r.body.entities[0]['file-metadata']['content-type'], 'image/png');
    const d = await download(fileUrl(r.body.entities[0].uuid), bearer(adminToken));
    assert.equal(d.headers.get('content-type'), 'image/png');
    assert.ok(d.bytes.equals(png));
  });

  test('Ruby: an extra form field hack=X and a title-cased Restrict-Access header', async () => {
    const body = multipartBody([{ name: 'hack', data: 'X' }, { name: 'file', filename: 'r.txt', type: 'text/plain', data: 'ruby' }]);
    const r = await upload(s.url, A, body, { Authorization: `Bearer ${adminToken}`, 'Restrict-Access': 'true' });
    assert.equal(r.status, 200, r.text);
    assert.match(r.body.entities[0]['share-secret'], /^[A-Za-z0-9_-]{48}$/);
  });

  test('Node: no restrict-access header at all → no share-secret; a browser FormData upload works too', async () => {
    const form = new FormData();
    form.append('file', new Blob([Buffer.from('node client')], { type: 'text/plain' }), 'n.txt');
    const r = await fetch(`${s.url}${A}/chatfiles`, { method: 'POST', headers: bearer(adminToken), body: form });
    const body = (await r.json()) as { entities: { 'share-secret'?: string; uuid: string }[] };
    assert.equal(r.status, 200);
    assert.equal(body.entities[0]!['share-secret'], undefined);
    assert.equal((await download(fileUrl(body.entities[0]!.uuid), bearer(adminToken))).bytes.toString(), 'node client');
  });

  test('restrict-access: any value restricts (E1/E2 checked presence) except false (E4)', async () => {
    assert.equal((await put(Buffer.from('x'), { headers: { 'restrict-access': 'false' } }))['share-secret'], undefined);
    assert.equal((await put(Buffer.from('x'), { headers: { 'restrict-access': 'FALSE' } }))['share-secret'], undefined);
    assert.match((await put(Buffer.from('x'), { headers: { 'restrict-access': 'yes' } }))['share-secret']!, /^[A-Za-z0-9_-]{48}$/);
  });
});

describe('download', () => {
  let restricted: { uuid: string; secret: string };
  const bytes = Buffer.from('secret bytes');
  before(async () => {
    const e = await put(bytes, { type: 'text/plain', headers: { 'restrict-access': 'true' } });
    restricted = { uuid: e.uuid, secret: e['share-secret']! };
  });

  test('a restricted file needs its secret: missing or wrong → 401, header (any case) or query parameter → 200', async () => {
    const h = bearer(adminToken);
    const missing = await download(fileUrl(restricted.uuid), h);
    assertApiError(missing, 401, 'unauthorized', 'this file is restricted: send its share-secret (header share-secret or query parameter ?share-secret=)');
    const wrong = await download(fileUrl(restricted.uuid), { ...h, 'share-secret': restricted.secret.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) });
    assertApiError(wrong, 401, 'unauthorized', 'the share-secret does not match this file');
    assertApiError(await download(`${fileUrl(restricted.uuid)}?share-secret=short`, h), 401, 'unauthorized', 'the share-secret does not match this file');
    for (const d of [
      await download(fileUrl(restricted.uuid), { ...h, 'share-secret': restricted.secret }),
      await download(fileUrl(restricted.uuid), { ...h, 'Share-Secret': ` ${restricted.secret} ` }),
      await download(`${fileUrl(restricted.uuid)}?share-secret=${restricted.secret}`, h),
    ]) {
      assert.equal(d.status, 200);
      assert.ok(d.bytes.equals(bytes));
    }
  });

  test('without a token only the right secret opens a file', async () => {
    const ok = await download(`${fileUrl(restricted.uuid)}?share-secret=${restricted.secret}`);
    assert.equal(ok.status, 200);
    assert.ok(ok.bytes.equals(bytes));
    assertApiError(await download(fileUrl(restricted.uuid), { 'share-secret': 'nope' }), 401, 'unauthorized', 'the share-secret does not match this file');
    const denied = `Subject does not have permission [applications:get:${appUuid}:/chatfiles]`;
    assertApiError(await download(fileUrl(restricted.uuid)), 401, 'unauthorized', denied);
    const open = await put(Buffer.from('open file'));
    assertApiError(await download(fileUrl(open.uuid)), 401, 'unauthorized', denied);
    assertApiError(await download(fileUrl(open.uuid), { 'share-secret': 'anything' }), 401, 'unauthorized', denied);
    const byUser = await download(fileUrl(open.uuid), bearer(userToken));
    assert.equal(byUser.bytes.toString(), 'open file');
  });

  test('unknown or malformed uuid → 404; a bad token → 401', async () => {
    const h = bearer(adminToken);
    assertApiError(await download(fileUrl('0c0f5f3a-e66b-11e3-8863-f1c202c2b3ae'), h), 404, 'service_resource_not_found', 'Service resource not found');
    assertApiError(await download(fileUrl('not-a-uuid'), h), 404, 'service_resource_not_found', 'Service resource not found');
    const bad = await download(fileUrl(restricted.uuid), { authorization: 'Bearer YWMtgarbage', 'share-secret': restricted.secret });
    assert.equal(bad.status, 401);
  });

  test("app A's file through app B's path → 404, even with B's token and the right secret; B's token on A's path → 401", async () => {
    const viaB = await download(fileUrl(restricted.uuid, '/acme/other'), { ...bearer(other.token), 'share-secret': restricted.secret });
    assertApiError(viaB, 404, 'service_resource_not_found', 'Service resource not found');
    const noTokenViaB = await download(`${fileUrl(restricted.uuid, '/acme/other')}?share-secret=${restricted.secret}`);
    assertApiError(noTokenViaB, 404, 'service_resource_not_found', 'Service resource not found');
    const bOnA = await download(fileUrl(restricted.uuid), { ...bearer(other.token), 'share-secret': restricted.secret });
    assertApiError(bOnA, 401, 'unauthorized', `Subject does not have permission [applications:get:${appUuid}:/chatfiles]`);
  });
});

describe('thumbnails', () => {
  test('a PNG over 10 KB gets a smaller valid PNG within 170 px, made once and kept next to the file', async () => {
    const png = await noisyPng(400, 300);
    assert.ok(png.length > 10 * 1024);
    const e = await put(png, { type: 'image/png' });
    const before = await blobs();
    const t = await download(fileUrl(e.uuid), { ...bearer(adminToken), thumbnail: 'true' });
    assert.equal(t.status, 200);
    assert.equal(t.headers.get('content-type'), 'image/png');
    assert.equal(t.headers.get('content-length'), String(t.bytes.length));
    assert.ok(!t.bytes.equals(png));
    assert.ok(t.bytes.length < png.length);
    const meta = await sharp(t.bytes).metadata();
    assert.equal(meta.format, 'png');
    assert.ok(meta.width <= 170 && meta.height <= 170, `${meta.width}x${meta.height}`);
    assert.equal(meta.width, 170);
    // One blob more, a variant of one that was there: on disk, a file in the image's own folder.
    const made = (await blobs()).filter((b) => !before.includes(b));
    assert.equal(made.length, 1, `new blobs: ${made.join(', ')}`);
    assert.ok(before.some((b) => made[0]!.startsWith(`${b}.`)), `${made[0]} is kept next to its image`);
    const again = await download(fileUrl(e.uuid), { ...bearer(adminToken), Thumbnail: 'TRUE' });
    assert.ok(again.bytes.equals(t.bytes));
    assert.deepEqual(await blobs(), [...before, made[0]!].sort());
    for (const h of [{}, { thumbnail: 'false' }] as Record<string, string>[]) {
      assert.ok((await download(fileUrl(e.uuid), { ...bearer(adminToken), ...h })).bytes.equals(png));
    }
  });

  test('thumbnail-width / thumbnail-height sent after the file are remembered for it', async () => {
    const png = await noisyPng(400, 300);
    const e = await put(png, { type: 'image/png', fields: { 'thumbnail-width': '50', 'thumbnail-height': '40' } });
    const t = await download(fileUrl(e.uuid), { ...bearer(adminToken), thumbnail: 'true' });
    const meta = await sharp(t.bytes).metadata();
    assert.deepEqual([meta.width, meta.height], [50, 38]);
  });

  test('a JPEG thumbnail stays a JPEG', async () => {
    const jpeg = await sharp(await noisyPng(600, 200)).jpeg({ quality: 95 }).toBuffer();
    const e = await put(jpeg, { type: 'image/jpeg' });
    const t = await download(fileUrl(e.uuid), { ...bearer(adminToken), thumbnail: 'true' });
    assert.equal(t.headers.get('content-type'), 'image/jpeg');
    const meta = await sharp(t.bytes).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 170, 57]);
  });

  test('an image of at most 10 KB is its own thumbnail', async () => {
    const png = await smallPng();
    assert.ok(png.length <= 10 * 1024);
    const e = await put(png, { type: 'image/png' });
    const t = await download(fileUrl(e.uuid), { ...bearer(adminToken), thumbnail: 'true' });
    assert.equal(t.headers.get('content-type'), 'image/png');
    assert.ok(t.bytes.equals(png));
  });

  test('a file that is no image (or an image type with other bytes) comes back as it is', async () => {
    const data = randomBytes(20000);
    for (const type of ['application/pdf', 'image/png']) {
      const e = await put(data, { type });
      const t = await download(fileUrl(e.uuid), { ...bearer(adminToken), thumbnail: 'true' });
      assert.equal(t.status, 200);
      assert.equal(t.headers.get('content-type'), type);
      assert.ok(t.bytes.equals(data));
    }
  });
});
