import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Api, demoToken, rawHttp, req, startTestServer, type Res, type TestServer } from '../helpers.js';

// Spec §0.2: what real Easemob clients put on the wire, and what the server must make of it.

let s: TestServer;
let token: string;
let api: Api;
let port: number;
before(async () => {
  s = await startTestServer();
  token = await demoToken(s);
  api = new Api(s.url, token);
  port = s.cv.port;
});
after(async () => {
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

const JSON_TYPE = 'application/json;charset=UTF-8';

interface RawRes {
  status: number;
  headers: Record<string, string>;
  text: string;
  body: Record<string, unknown>;
}

/** Splits what a server wrote on one connection into its responses. */
function parseResponses(wire: string): RawRes[] {
  const out: RawRes[] = [];
  let rest = Buffer.from(wire, 'utf8');
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    assert.ok(end > 0, `incomplete response: ${rest.toString().slice(0, 200)}`);
    const [statusLine, ...lines] = rest.subarray(0, end).toString().split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine!);
    assert.ok(m, `not a status line: ${statusLine}`);
    const headers: Record<string, string> = {};
    for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    // chatvault always frames with Content-Length (never chunked), so that is all this reads.
    const len = Number(headers['content-length'] ?? rest.length - end - 4);
    const body = rest.subarray(end + 4, end + 4 + len);
    rest = rest.subarray(end + 4 + len);
    const text = body.toString('utf8');
    out.push({ status: Number(m[1]), headers, text, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) });
  }
  return out;
}

/** One raw exchange: writes the parts (with an optional gap), optionally half-closes, collects the answer. */
function exchange(parts: (string | Buffer)[], opts: { end?: boolean; gapMs?: number; timeoutMs?: number } = {}): Promise<{ wire: string }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ wire: Buffer.concat(chunks).toString('utf8') });
    };
    const timer = setTimeout(done, opts.timeoutMs ?? 5000);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', done);
    sock.on('close', done);
    sock.on('connect', async () => {
      for (const p of parts) {
        if (sock.destroyed) return;
        sock.write(p);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
      if (opts.end && !sock.destroyed) sock.end();
    });
  });
}

/** A single raw request, closed after the answer. */
async function raw(head: string, body = ''): Promise<RawRes> {
  const { wire } = await exchange([`${head}\r\nHost: localhost\r\nConnection: close\r\n\r\n${body}`]);
  const rs = parseResponses(wire);
  assert.equal(rs.length, 1, wire);
  return rs[0]!;
}

function chunked(text: string, size = 7): string {
  let out = '';
  for (let i = 0; i < text.length; i += size) {
    const piece = Buffer.from(text.slice(i, i + size));
    out += `${piece.length.toString(16)}\r\n${piece.toString()}\r\n`;
  }
  return out + '0\r\n\r\n';
}

function assertEasemobError(r: RawRes | Res, status: number, error: string): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.headers instanceof Headers ? r.headers.get('content-type') : r.headers['content-type'], JSON_TYPE);
  const b = r.body as Record<string, unknown>;
  assert.equal(b.error, error, r.text);
  assert.equal(typeof b.timestamp, 'number');
  assert.equal(typeof b.duration, 'number');
  assert.equal(typeof b.error_description, 'string');
}

async function stillServing(): Promise<void> {
  const r = await req(`${s.url}/status`, 'GET');
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'ok');
}

const message = (text: string) => JSON.stringify({ target_type: 'users', target: ['len1'], msg: { type: 'txt', msg: text } });
const auth = () => `Authorization: Bearer ${token}`;

async function lastStoredText(): Promise<unknown> {
  const a = (await s.cv.services.store.getApp('demo', 'chat'))!;
  let at = 0n;
  let last: unknown;
  for (;;) {
    const rows = await s.cv.services.store.messagesAfter(a.id, at, 100);
    if (rows.length === 0) return last;
    last = (JSON.parse(String(rows[rows.length - 1]!.entity)) as { payload: { bodies: { msg: unknown }[] } }).payload.bodies[0]!.msg;
    at = rows[rows.length - 1]!.seq;
  }
}

describe('bodies are JSON whatever the declared Content-Type', () => {
  for (const ct of ['application/x-www-form-urlencoded', 'text/plain', 'application/json; charset=UTF-8', 'APPLICATION/JSON', 'application/octet-stream']) {
    test(`POST /messages with Content-Type: ${ct}`, async () => {
      const r = await api.post('/demo/chat/messages', message(`as ${ct}`), { 'content-type': ct });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.data, { len1: 'success' });
      assert.equal(await lastStoredText(), `as ${ct}`);
    });
  }

  test('token request without any Content-Type (official Node example)', async () => {
    const body = JSON.stringify({ grant_type: 'client_credentials', client_id: s.demo.clientId, client_secret: s.demo.clientSecret });
    const r = await raw(`POST /demo/chat/token HTTP/1.1\r\nContent-Length: ${Buffer.byteLength(body)}`, body);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['content-type'], JSON_TYPE);
    assert.match(String(r.body.access_token), /^YWMt/);
  });

  test('token request as JSON under form-urlencoded, header written Authorization:Bearer (PHP example)', async () => {
    const body = JSON.stringify({ grant_type: 'client_credentials', client_id: s.demo.clientId, client_secret: s.demo.clientSecret });
    const r = await raw(`POST /demo/chat/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}`, body);
    assert.equal(r.status, 200, r.text);
    const m = message('php');
    const sent = await raw(`POST /demo/chat/messages HTTP/1.1\r\nAuthorization:Bearer ${String(r.body.access_token)}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${m.length}`, m);
    assert.equal(sent.status, 200, sent.text);
    assert.deepEqual(sent.body.data, { len1: 'success' });
  });

  test('Transfer-Encoding: chunked without Content-Length (official Node example)', async () => {
    const m = message('chunked 分块');
    const r = await raw(`POST /demo/chat/messages HTTP/1.1\r\n${auth()}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked`, chunked(m));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.data, { len1: 'success' });
    assert.equal(await lastStoredText(), 'chunked 分块');
    const u = JSON.stringify({ username: 'chunky', password: 'p1' });
    const ru = await raw(`POST /demo/chat/users HTTP/1.1\r\n${auth()}\r\nTransfer-Encoding: chunked`, chunked(u, 3));
    assert.equal(ru.status, 200, ru.text);
    assert.equal((ru.body.entities as { username: string }[])[0]!.username, 'chunky');
  });
});

describe('framing', () => {
  test('Expect: 100-continue (curl, for bodies over 1 KB) gets 100 Continue, then the answer', async () => {
    const m = message('c'.repeat(2000));
    const { wire } = await exchange(
      [`POST /demo/chat/messages HTTP/1.1\r\nHost: x\r\n${auth()}\r\nContent-Length: ${m.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`, m],
      { gapMs: 50 },
    );
    assert.match(wire, /^HTTP\/1\.1 100 Continue\r\n\r\n/);
    const [r] = parseResponses(wire.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, ''));
    assert.equal(r!.status, 200, r!.text);
    assert.equal(await lastStoredText(), 'c'.repeat(2000));
  });

  test('an HTTP/1.0 request without Host is answered', async () => {
    const { wire } = await exchange(['GET /status HTTP/1.0\r\n\r\n']);
    const [r] = parseResponses(wire.replace(/^HTTP\/1\.0/, 'HTTP/1.1'));
    assert.equal(r!.status, 200, wire);
    assert.equal(r!.body.status, 'ok');
  });

  test('a UTF-8 byte order mark before the JSON is ignored', async () => {
    const m = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(message('bom'))]);
    const r = await raw(`POST /demo/chat/messages HTTP/1.1\r\n${auth()}\r\nContent-Type: text/plain\r\nContent-Length: ${m.length}`, m.toString('utf8'));
    assert.equal(r.status, 200, r.text);
    assert.equal(await lastStoredText(), 'bom');
  });
});

describe('paths', () => {
  test('a doubled slash and a trailing slash reach the same route', async () => {
    for (const p of ['/demo/chat//users', '/demo/chat/users/', '//demo/chat/users', '/demo/chat//users/']) {
      const r = await api.get(p);
      assert.equal(r.status, 200, `${p}: ${r.text}`);
      assert.equal(r.body.path, '/users');
      assert.ok(Array.isArray(r.body.entities));
    }
    for (const p of ['/demo/chat//messages', '/demo/chat/messages/']) {
      const r = await api.post(p, message(p));
      assert.equal(r.status, 200, `${p}: ${r.text}`);
      assert.equal(await lastStoredText(), p);
    }
  });
});

describe('headers', () => {
  // How clients wrote the header ($T is the token).
  const variants = [
    ['no space after the colon', 'Authorization:Bearer $T'], ['two spaces', 'Authorization:  Bearer $T'],
    ['value with a leading space (Java example)', 'Authorization: \tBearer $T'], ['lower-case scheme, trailing spaces', 'Authorization: bearer $T   '],
    ['lower-case header name', 'authorization: Bearer $T'], ['upper-case header name', 'AUTHORIZATION: BEARER $T'],
  ];
  for (const [name, line] of variants) {
    test(`Authorization ${name}`, async () => {
      const r = await raw(`GET /demo/chat/users HTTP/1.1\r\n${line!.replace('$T', token)}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.action, 'get');
    });
  }

  test('title-cased and upper-cased header names (Ruby client)', async () => {
    const m = message('ruby');
    const r = await raw(
      `POST /demo/chat/messages HTTP/1.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json; charset=UTF-8\r\n` +
        `Accept: application/json\r\nRestrict-Access: true\r\nShare-Secret: abc\r\nThumbnail: true\r\nContent-Length: ${m.length}`, m);
    assert.equal(r.status, 200, r.text);
    const m2 = message('RUBY');
    const r2 = await raw(`POST /demo/chat/messages HTTP/1.1\r\nAUTHORIZATION: Bearer ${token}\r\nCONTENT-TYPE: APPLICATION/JSON\r\nCONTENT-LENGTH: ${m2.length}`, m2);
    assert.equal(r2.status, 200, r2.text);
    assert.equal(await lastStoredText(), 'RUBY');
  });

  test('several requests on one keep-alive connection are all answered, in order', async () => {
    const m = message('keep-alive');
    const { wire } = await exchange([
      `GET /status HTTP/1.1\r\nHost: x\r\n\r\n`,
      `POST /demo/chat/messages HTTP/1.1\r\nHost: x\r\n${auth()}\r\nContent-Length: ${m.length}\r\n\r\n${m}`,
      `GET /demo/chat/users HTTP/1.1\r\nHost: x\r\n${auth()}\r\nConnection: close\r\n\r\n`,
    ]);
    const rs = parseResponses(wire);
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
    assert.equal(rs[0]!.body.status, 'ok');
    assert.deepEqual(rs[1]!.body.data, { len1: 'success' });
    assert.equal(rs[2]!.body.path, '/users');
  });
});

describe('the stray {} after a GET or DELETE (official Node example)', () => {
  test('GET with Connection: close and {} after the headers gets the real answer', async () => {
    for (const gapMs of [0, 30]) {
      const { wire } = await exchange([`GET /demo/chat/users HTTP/1.1\r\nHost: x\r\n${auth()}\r\nConnection: close\r\n\r\n`, '{}'], { gapMs });
      const rs = parseResponses(wire);
      assert.equal(rs[0]!.status, 200, wire);
      assert.equal(rs[0]!.body.action, 'get');
      assert.equal(rs[0]!.headers['content-type'], JSON_TYPE);
    }
  });

  test('DELETE with a stray {} deletes and answers 200', async () => {
    const c = await api.post('/demo/chat/users', { username: 'stray-del', password: 'p' });
    assert.equal(c.status, 200, c.text);
    const { wire } = await exchange([`DELETE /demo/chat/users/stray-del HTTP/1.1\r\nHost: x\r\n${auth()}\r\nConnection: close\r\n\r\n{}`]);
    const rs = parseResponses(wire);
    assert.equal(rs[0]!.status, 200, wire);
    assert.equal(rs[0]!.body.action, 'delete');
    assert.equal((rs[0]!.body.entities as { username: string }[])[0]!.username, 'stray-del');
    assert.equal((await api.get('/demo/chat/users/stray-del')).status, 404);
  });
});

describe('bad input gets an Easemob error, never a 500', () => {
  test('invalid JSON is 400 json_parse with the Easemob body, whatever the Content-Type', async () => {
    for (const ct of ['application/json', 'application/x-www-form-urlencoded', 'text/plain']) {
      for (const [p, body] of [['/demo/chat/messages', '{"target_type":"users",}'], ['/demo/chat/users', '{"username":'], ['/demo/chat/token', '[{']]) {
        const r = await api.post(p!, body!, { 'content-type': ct });
        assertEasemobError(r, 400, 'json_parse');
        assert.equal(r.body.exception, 'org.codehaus.jackson.JsonParseException');
      }
    }
  });

  test('a JSON string, number, array, null or boolean where an object is expected is 400', async () => {
    const c = await api.post('/demo/chat/users', { username: 'shape', password: 'p' });
    assert.equal(c.status, 200, c.text);
    const targets: [string, string][] = [
      ['POST', '/demo/chat/messages'], ['POST', '/demo/chat/token'], ['POST', '/management/token'],
      ['POST', '/demo/chat/users/shape/messages'], ['PUT', '/demo/chat/users/shape'], ['PUT', '/demo/chat/users/shape/password'],
    ];
    for (const body of ['"hello"', '42', '[1,2]', 'null', 'true', '[]']) {
      for (const [method, p] of targets) {
        const r = await api.call(method, p, body);
        assert.equal(r.status, 400, `${method} ${p} ${body}: ${r.text}`);
        assert.equal(r.headers.get('content-type'), JSON_TYPE);
        assert.equal(typeof r.body.error, 'string');
      }
      const reg = await api.post('/demo/chat/users', body === '[]' ? '[1]' : body);
      assert.equal(reg.status, 400, `register ${body}: ${reg.text}`);
    }
  });

  test('JSON nested deeper than 1000 levels is 400 json_parse, not a stack overflow', async () => {
    const nest = (n: number) => '['.repeat(n) + ']'.repeat(n);
    for (const [p, body] of [
      ['/demo/chat/users', `{"username":"deep","password":"p","deep":${nest(200000)}}`],
      ['/demo/chat/token', `{"grant_type":${nest(100000)}}`],
      ['/management/token', nest(300000)],
      ['/demo/chat/messages', `{"target_type":"users","target":["u1"],"msg":{"type":"txt","msg":"x"},"ext":{"a":${nest(1500)}}}`],
    ]) {
      const r = await api.post(p!, body!);
      assertEasemobError(r, 400, 'json_parse');
      assert.match(r.body.error_description, /nesting depth/);
    }
    // 1000 levels (the object and 999 arrays) still parse; brackets inside strings do not count.
    const r = await api.post('/demo/chat/token', `{"grant_type":${nest(999)},"s":"${'['.repeat(2000)}"}`);
    assert.equal(r.status, 400, r.text);
    assert.notEqual(r.body.error, 'json_parse', r.text);
    await stillServing();
  });

  test('binary garbage gets a 400 or a closed connection, and the server keeps serving', async () => {
    const garbage = [
      Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]), // a TLS ClientHello
      Buffer.from('\x00\x01\x02\x03\xff\xfe\r\n\r\n', 'latin1'),
      randomBytes(4096),
      Buffer.from('GET / HTTP/9.9\r\n\r\n'),
      Buffer.from('POST /demo/chat/messages HTTP/1.1\r\nContent-Length: -5\r\n\r\n'),
      Buffer.from('POST /demo/chat/messages HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'),
    ];
    for (const g of garbage) {
      const { wire } = await exchange([g], { end: true });
      if (wire !== '') {
        const [r] = parseResponses(wire);
        assert.equal(r!.status, 400, wire);
        assert.equal(r!.headers['content-type'], JSON_TYPE);
        assert.equal(r!.body.error, 'illegal_argument');
      }
      await stillServing();
    }
  });

  test('a truncated request line: 400 on half-close; an idle connection does not block others', async () => {
    const { wire } = await exchange(['GET /sta'], { end: true });
    const [r] = parseResponses(wire);
    assertEasemobError(r!, 400, 'illegal_argument');
    const idle = exchange(['POST /demo/chat/mess'], { timeoutMs: 300 });
    await stillServing();
    assert.equal((await idle).wire, '');
    await stillServing();
  });

  test('an oversize body is 413, by Content-Length, chunked, or as sent by fetch', async () => {
    const big = JSON.stringify({ username: 'big', password: 'p', note: 'x'.repeat(1100 * 1024) });
    const byLength = await raw(`POST /demo/chat/users HTTP/1.1\r\n${auth()}\r\nContent-Length: ${big.length}`, big);
    assertEasemobError(byLength, 413, 'Request Entity Too Large');
    const m = message('y'.repeat(6000));
    const byChunks = await raw(`POST /demo/chat/messages HTTP/1.1\r\n${auth()}\r\nTransfer-Encoding: chunked`, chunked(m, 1000));
    assertEasemobError(byChunks, 413, 'Request Entity Too Large');
    const viaFetch = await api.post('/demo/chat/messages', m);
    assertEasemobError(viaFetch, 413, 'Request Entity Too Large');
    assert.notEqual(await lastStoredText(), 'y'.repeat(6000));
    await stillServing();
  });

  test('a header over 1 MB is refused (431, 400 or a closed connection) without a crash', async () => {
    const wire = await rawHttp(port, `GET /status HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(1100 * 1024)}\r\nConnection: close\r\n\r\n`).catch(() => '');
    if (wire !== '') {
      const [r] = parseResponses(wire);
      assert.ok(r!.status === 431 || r!.status === 400, wire.slice(0, 200));
      assert.equal(r!.headers['content-type'], JSON_TYPE);
    }
    await stillServing();
  });
});

test('every response, success or error, has Content-Type application/json;charset=UTF-8', async () => {
  const rs: Res[] = [
    await req(`${s.url}/status`, 'GET'),
    await api.get('/demo/chat/users'),
    await api.post('/demo/chat/messages', message('ct')),
    await api.post('/demo/chat/messages', '{bad'),
    await api.post('/demo/chat/messages', '{}'),
    await api.with(undefined).get('/demo/chat/users'),
    await api.with('garbage-token').get('/demo/chat/users'),
    await api.get('/demo/chat/users/nobody-here'),
    await api.get('/nope/nope/users'),
    await req(`${s.url}/`, 'GET'),
    await api.post('/demo/chat/messages', 'x'.repeat(6000)),
    await api.post('/demo/chat/messages', '--x--', { 'content-type': 'multipart/form-data; boundary=x' }),
    await req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'client_credentials', client_id: 'x', client_secret: 'y' }),
    await api.call('PATCH', '/demo/chat/users', {}),
    // Bad percent-encoding and over-long path segments fail inside the router, before any hook.
    await api.get('/demo/chat/users/%zz'),
    await api.get('/%E0%A4%A/chat/users'),
    await api.get(`/demo/chat/users/${'a'.repeat(2000)}`),
  ];
  for (const r of rs) {
    assert.equal(r.headers.get('content-type'), JSON_TYPE, `${r.status} ${r.text}`);
    assert.equal(typeof r.body, 'object', r.text);
    assert.ok(r.status < 500, r.text);
    // Token errors carry only error + error_description (spec §0.4); the others the full body.
    if (r.status >= 400) assert.ok(typeof r.body.error === 'string' && typeof r.body.error_description === 'string', r.text);
  }
  assert.deepEqual([...new Set(rs.map((r) => r.status))].sort(), [200, 400, 401, 404, 413, 415].sort());
});
