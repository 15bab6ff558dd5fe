import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Api, demoToken, startTestServer, type TestServer } from '../helpers.js';
import { download, multipartBody, noisyPng, upload } from './chatfile-helpers.js';

/** Media messages (issue 4 point 7): bodies kept as sent, and their urls download from this server. */

const A = '/demo/chat';
let s: TestServer;
let api: Api;

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
});
after(() => s.close());

/** Uploads a file (restricted) and returns the url a client builds for it and its secret. */
async function uploadFile(data: Buffer, filename: string, type: string): Promise<{ url: string; secret: string }> {
  const r = await upload(s.url, A, multipartBody([{ name: 'file', filename, type, data }]), {
    authorization: `Bearer ${api.token}`, 'restrict-access': 'true',
  });
  assert.equal(r.status, 200, r.text);
  const e = r.body.entities[0];
  // Clients build the message url from the server they talk to, the app path and the uuid.
  return { url: `${s.cv.services.config.publicUrl}${A}/chatfiles/${e.uuid}`, secret: e['share-secret'] };
}

test('img, audio, video and file bodies are exported as sent, and their urls download with the exported secrets', async () => {
  const image = await noisyPng(320, 240);
  const voice = randomBytes(30000);
  const movie = randomBytes(200000);
  const poster = await noisyPng(200, 100);
  const doc = randomBytes(5000);
  const img = await uploadFile(image, 'cat.png', 'image/png');
  const amr = await uploadFile(voice, 'hello.amr', 'audio/amr');
  const mp4 = await uploadFile(movie, 'clip.mp4', 'video/mp4');
  const thumb = await uploadFile(poster, 'clip.png', 'image/png');
  const pdf = await uploadFile(doc, 'report.pdf', 'application/pdf');

  const bodies = [
    { type: 'img', url: img.url, filename: 'cat.png', secret: img.secret, size: { width: 320, height: 240 } },
    { type: 'audio', url: amr.url, filename: 'hello.amr', length: 3, secret: amr.secret },
    {
      type: 'video', url: mp4.url, filename: 'clip.mp4', thumb: thumb.url, length: 10, file_length: movie.length,
      secret: mp4.secret, thumb_secret: thumb.secret,
    },
    { type: 'file', url: pdf.url, filename: 'report.pdf', secret: pdf.secret, file_length: doc.length },
  ];
  for (const msg of bodies) {
    const r = await api.post(`${A}/messages`, { target_type: 'users', target: ['bob'], msg, from: 'media-sender' });
    assert.equal(r.status, 200, r.text);
  }
  // The top-level `size` some clients send next to msg ends up in the img body.
  const { size, ...imgWithoutSize } = bodies[0]!;
  const r0 = await api.post(`${A}/messages`, { target_type: 'users', target: ['bob'], msg: imgWithoutSize, size, from: 'media-sender' });
  assert.equal(r0.status, 200, r0.text);

  const ql = encodeURIComponent("select * where from = 'media-sender' order by timestamp asc");
  const exported = await api.get(`${A}/chatmessages?ql=${ql}&limit=10`);
  assert.equal(exported.status, 200, exported.text);
  const got = (exported.body.entities as { payload: { bodies: Record<string, unknown>[] } }[]).map((e) => e.payload.bodies);
  assert.deepEqual(got, [...bodies, bodies[0]].map((b) => [b]));

  // A person opening an exported link has no token: the exported secret opens it.
  const files = new Map([[img.url, image], [amr.url, voice], [mp4.url, movie], [thumb.url, poster], [pdf.url, doc]]);
  for (const [body] of got) {
    const pairs: [unknown, unknown][] = [[body!.url, body!.secret]];
    if (body!.thumb !== undefined) pairs.push([body!.thumb, body!.thumb_secret]);
    for (const [url, secret] of pairs) {
      assert.ok(typeof url === 'string' && url.startsWith(s.url), String(url));
      const d = await download(url, { 'share-secret': String(secret) });
      assert.equal(d.status, 200, String(url));
      assert.ok(d.bytes.equals(files.get(url)!), String(url));
      const q = await download(`${url}?share-secret=${String(secret)}`);
      assert.ok(q.bytes.equals(files.get(url)!));
    }
  }

  // The image's thumbnail from the exported link, as a client shows it in a chat list.
  const t = await download(img.url, { 'share-secret': img.secret, thumbnail: 'true' });
  assert.equal(t.status, 200);
  assert.equal(t.headers.get('content-type'), 'image/png');
  assert.ok(t.bytes.length < image.length);
});
