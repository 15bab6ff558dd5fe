import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Api, demoToken, startTestServer, type Res, type TestServer } from '../helpers.js';

let s: TestServer;
let api: Api;
let appId: number;
let appUuid: string;

let groupIds: [string, string];
let roomIds: [string, string];

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  const a = await s.cv.services.store.getApp('demo', 'chat');
  assert.ok(a);
  appId = a.id;
  appUuid = a.uuid;
  // Messages to groups and rooms need them to exist (users need not).
  const owner = await api.post('/demo/chat/users', { username: 'owner1', password: 'p' });
  assert.equal(owner.status, 200, owner.text);
  const make = async (kind: 'group' | 'room', name: string) =>
    (await s.cv.services.groups.create(a, kind, { groupname: name, name, desc: name, owner: 'owner1' })).groupId;
  groupIds = [await make('group', 'g1'), await make('group', 'g2')];
  roomIds = [await make('room', 'r1'), await make('room', 'r2')];
});
after(async () => {
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

const JSON_TYPE = 'application/json;charset=UTF-8';
const UUID_V1 = /^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Stored {
  seq: bigint;
  entity: Record<string, unknown>;
}

/** Every message of the demo app stored after `afterSeq`, in insertion order, entity parsed. */
async function storedAfter(afterSeq: bigint): Promise<Stored[]> {
  const out: Stored[] = [];
  let at = afterSeq;
  for (;;) {
    const rows = await s.cv.services.store.messagesAfter(appId, at, 100);
    for (const r of rows) out.push({ seq: r.seq, entity: JSON.parse(String(r.entity)) as Record<string, unknown> });
    if (rows.length < 100) return out;
    at = rows[rows.length - 1]!.seq;
  }
}

/** The seq of the last stored message (0 when none). */
async function mark(): Promise<bigint> {
  const all = await storedAfter(0n);
  return all.length === 0 ? 0n : all[all.length - 1]!.seq;
}

/** Sends, then returns the response and the messages that send stored. */
async function send(body: unknown, query = ''): Promise<{ r: Res; stored: Stored[] }> {
  const m = await mark();
  const r = await api.post(`/demo/chat/messages${query}`, body);
  return { r, stored: await storedAfter(m) };
}

function assertError(r: Res, status: number, error: string, description?: string): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.headers.get('content-type'), JSON_TYPE);
  assert.equal(r.body.error, error, r.text);
  if (description !== undefined) assert.equal(r.body.error_description, description);
  assert.equal(typeof r.body.timestamp, 'number');
  assert.equal(typeof r.body.duration, 'number');
  if (error === 'illegal_argument') assert.equal(r.body.exception, 'java.lang.IllegalArgumentException');
}

/** Sends a body that must be refused, and checks that nothing was stored. */
async function refused(body: unknown, status: number, error: string, description?: string): Promise<Res> {
  const { r, stored } = await send(body);
  assertError(r, status, error, description);
  assert.equal(stored.length, 0, 'a refused send stores nothing');
  return r;
}

const FILE_URL = 'https://a1.easemob.com/demo/chat/chatfiles/7f90f7ca-bb24-11e2-b2d0-6d8e359945e4';
const BODIES: Record<string, Record<string, unknown>> = {
  txt: { type: 'txt', msg: 'hello from rest 你好' },
  img: { type: 'img', url: FILE_URL, filename: 'a.jpg', secret: 'DRGM8OZrEeO1vafuJSo2IjHBeKlIhDp0GCnFu54xOF3M6KLr', size: { width: 480, height: 720 } },
  loc: { type: 'loc', lat: 39.966, lng: 116.322, addr: '中国北京市海淀区中关村' },
  audio: { type: 'audio', url: FILE_URL, filename: 'a.amr', length: 10, secret: 's1' },
  video: { type: 'video', url: FILE_URL, filename: 'v.mp4', thumb: FILE_URL, length: 10, file_length: 58103, secret: 's', thumb_secret: 't' },
  cmd: { type: 'cmd', action: 'action1' },
  file: { type: 'file', url: FILE_URL, filename: 'doc.pdf', secret: 's', file_length: 1024 },
  custom: { type: 'custom', customEvent: 'gift/rose_1.0', customExts: { count: '3', color: 'red' } },
};

describe('POST /{org}/{app}/messages: every message type', () => {
  for (const [type, msg] of Object.entries(BODIES)) {
    test(`${type} to two users: one stored chat message per target`, async () => {
      const { r, stored } = await send({ target_type: 'users', target: ['u1', 'u2'], msg, from: 'jma2' });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('content-type'), JSON_TYPE);
      assert.equal(r.body.action, 'post');
      assert.equal(r.body.path, '/messages');
      assert.equal(r.body.application, appUuid);
      assert.equal(r.body.uri, `${s.url}/demo/chat/messages`);
      assert.equal(r.body.organization, 'demo');
      assert.equal(r.body.applicationName, 'chat');
      assert.deepEqual(r.body.params, {});
      assert.deepEqual(r.body.entities, []);
      assert.deepEqual(r.body.data, { u1: 'success', u2: 'success' });
      assert.equal(typeof r.body.timestamp, 'number');
      assert.equal(stored.length, 2);
      assert.deepEqual(stored.map((m) => m.entity.to), ['u1', 'u2']);
      for (const { entity: e } of stored) {
        assert.match(String(e.uuid), UUID_V1);
        assert.equal(e.type, 'chatmessage');
        assert.equal(e.from, 'jma2');
        assert.equal(e.chat_type, 'chat');
        assert.match(String(e.msg_id), /^\d+$/);
        for (const k of ['created', 'modified', 'timestamp']) {
          assert.equal(typeof e[k], 'number');
          assert.ok(Number.isSafeInteger(e[k]) && (e[k] as number) > 1.6e12, `${k} is epoch ms`);
        }
        assert.deepEqual(e.payload, { bodies: [msg] }, 'no ext key when ext was not sent');
      }
      assert.notEqual(stored[0]!.entity.uuid, stored[1]!.entity.uuid);
      assert.notEqual(stored[0]!.entity.msg_id, stored[1]!.entity.msg_id);
    });
  }

  test('img with size at top level next to msg stores the size inside the body', async () => {
    const { size, ...noSize } = BODIES.img!;
    const { r, stored } = await send({ target_type: 'users', target: ['u1'], msg: noSize, size });
    assert.equal(r.status, 200, r.text);
    assert.equal(stored.length, 1);
    assert.deepEqual(stored[0]!.entity.payload, { bodies: [{ ...noSize, size: { width: 480, height: 720 } }] });
  });

  test('chat_type follows target_type: chatgroups → groupchat, chatrooms → chatroom', async () => {
    for (const [tt, ct, ids] of [['chatgroups', 'groupchat', groupIds], ['chatrooms', 'chatroom', roomIds], ['users', 'chat', ['u5', 'u6']]] as const) {
      const { r, stored } = await send({ target_type: tt, target: ids, msg: BODIES.txt });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.data, { [ids[0]]: 'success', [ids[1]]: 'success' });
      assert.deepEqual(stored.map((m) => [m.entity.to, m.entity.chat_type]), [[ids[0], ct], [ids[1], ct]]);
    }
  });

  test('from defaults to admin; ext is stored as payload.ext', async () => {
    const ext = { attr1: 'v1', attr2: 2, attr3: true };
    const { r, stored } = await send({ target_type: 'users', target: ['u9'], msg: BODIES.txt, ext });
    assert.equal(r.status, 200, r.text);
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.entity.from, 'admin');
    assert.deepEqual(stored[0]!.entity.payload, { bodies: [BODIES.txt], ext });
  });

  test('type "text" is stored as txt', async () => {
    const { r, stored } = await send({ target_type: 'users', target: ['u1'], msg: { type: 'text', msg: 'old spelling' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(stored[0]!.entity.payload, { bodies: [{ type: 'txt', msg: 'old spelling' }] });
  });

  test('?useMsgId=true answers each target with the msg_id that was stored', async () => {
    const { r, stored } = await send({ target_type: 'users', target: ['a', 'b', 'c'], msg: BODIES.txt }, '?useMsgId=true');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.params, { useMsgId: ['true'] });
    assert.deepEqual(Object.keys(r.body.data), ['a', 'b', 'c']);
    assert.deepEqual(r.body.data, Object.fromEntries(stored.map((m) => [m.entity.to, m.entity.msg_id])));
    for (const v of Object.values(r.body.data)) assert.match(String(v), /^\d{15,20}$/);
  });

  test('a duplicated target does not hide a stored message from the answer', async () => {
    const { r, stored } = await send({ target_type: 'users', target: ['dup', 'other', 'dup', 'DUP'], msg: BODIES.txt }, '?useMsgId=true');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body.data), ['dup', 'other']);
    // Every stored message must be named in the answer, so a client can account for each one.
    assert.deepEqual(new Set(stored.map((m) => m.entity.msg_id)), new Set(Object.values(r.body.data)));
    assert.deepEqual(stored.map((m) => m.entity.to), ['dup', 'other']);
  });

  test('msg_ids are unique numeric strings that grow with insertion order', async () => {
    const all = await storedAfter(0n);
    assert.ok(all.length > 20);
    const ids = all.map((m) => BigInt(String(m.entity.msg_id)));
    assert.equal(new Set(ids).size, ids.length);
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, `msg_id ${ids[i]} after ${ids[i - 1]}`);
    const uuids = all.map((m) => m.entity.uuid);
    assert.equal(new Set(uuids).size, uuids.length);
  });
});

describe('POST /{org}/{app}/messages: validation (spec §4.1)', () => {
  const ok = { target_type: 'users', target: ['u1'], msg: BODIES.txt };

  test('target_type missing, empty or unknown', async () => {
    const { target_type: _omit, ...noType } = ok;
    await refused(noType, 400, 'illegal_argument', 'target_type must be provided');
    await refused({ ...ok, target_type: '' }, 400, 'illegal_argument', 'target_type must be provided');
    for (const tt of ['user', 'groups', 'USERS', 42, ['users']]) {
      await refused({ ...ok, target_type: tt }, 400, 'illegal_argument', "target_type can only be 'users' or 'chatgroups' or 'chatrooms'");
    }
  });

  test('from "" is refused; from that is not a string is refused', async () => {
    await refused({ ...ok, from: '' }, 400, 'illegal_argument', "from can't be empty");
    await refused({ ...ok, from: 12 }, 400, 'illegal_argument');
    await refused({ ...ok, from: 'x'.repeat(65) }, 400, 'illegal_argument');
  });

  test('ext null, ext not an object', async () => {
    for (const ext of [null, 'x', 3, ['a']]) await refused({ ...ok, ext }, 400, 'illegal_argument');
  });

  test('msg missing or not an object; msg.type missing or unknown', async () => {
    const { msg: _omit, ...noMsg } = ok;
    await refused(noMsg, 400, 'illegal_argument');
    for (const msg of [null, 'hello', 7, [BODIES.txt], {}, { msg: 'no type' }, { type: 'sticker', msg: 'x' }, { type: 5 }]) {
      await refused({ ...ok, msg }, 400, 'illegal_argument');
    }
  });

  test('a msg.type that names an Object.prototype member is an unknown type, not a crash', async () => {
    for (const type of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      await refused({ ...ok, msg: { type, msg: 'x' } }, 400, 'illegal_argument');
    }
  });

  test('required fields per type', async () => {
    const bad: Record<string, unknown>[] = [
      { type: 'txt' }, { type: 'txt', msg: 5 },
      { type: 'img', filename: 'a.jpg' }, { type: 'img', url: FILE_URL, size: 'big' },
      { type: 'loc', lat: 1 }, { type: 'loc', lng: 1 }, { type: 'loc', lat: 'north', lng: 1 },
      { type: 'audio', filename: 'a' }, { type: 'audio', url: FILE_URL, length: 'long' },
      { type: 'video', filename: 'v' }, { type: 'video', url: FILE_URL, file_length: 'x' },
      { type: 'cmd' }, { type: 'cmd', action: 1 },
      { type: 'file', filename: 'f' },
      { type: 'custom' }, { type: 'custom', customEvent: 'has space' }, { type: 'custom', customEvent: 'x'.repeat(33) },
      { type: 'custom', customEvent: 'e', customExts: { a: 1 } },
      { type: 'custom', customEvent: 'e', customExts: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) },
    ];
    for (const msg of bad) await refused({ ...ok, msg }, 400, 'illegal_argument');
  });

  test('target not an array of names, empty, or more than 600', async () => {
    for (const target of [undefined, null, 5, { u1: true }, [], [''], [5], ['x'.repeat(65)]]) {
      await refused({ ...ok, target }, 400, 'illegal_argument');
    }
    const r = await refused({ ...ok, target: Array.from({ length: 601 }, (_, i) => `${i}`) }, 400, 'illegal_argument');
    assert.match(r.body.error_description, /600/);
  });

  test('600 targets (the maximum) are all stored', async () => {
    const target = Array.from({ length: 600 }, (_, i) => `${i}`);
    const { r, stored } = await send({ ...ok, target });
    assert.equal(r.status, 200, r.text);
    assert.equal(Object.keys(r.body.data).length, 600);
    assert.deepEqual(stored.map((m) => m.entity.to), target);
  });

  test('a body over 5 KB is 413 Request Entity Too Large', async () => {
    const r = await refused({ ...ok, msg: { type: 'txt', msg: 'x'.repeat(5200) } }, 413, 'Request Entity Too Large', 'Request Entity Too Large');
    assert.equal(r.body.exception, undefined);
  });

  test('msg + ext over 4 KB is 400 "message is too large"', async () => {
    await refused({ ...ok, msg: { type: 'txt', msg: 'x'.repeat(4200) } }, 400, 'illegal_argument', 'message is too large');
    await refused({ ...ok, msg: { type: 'txt', msg: 'x'.repeat(2100) }, ext: { a: 'y'.repeat(2100) } }, 400, 'illegal_argument', 'message is too large');
    // Multi-byte text counts in bytes: 1400 CJK characters are 4200 bytes.
    await refused({ ...ok, msg: { type: 'txt', msg: '你'.repeat(1400) } }, 400, 'illegal_argument', 'message is too large');
    const { r } = await send({ ...ok, msg: { type: 'txt', msg: 'x'.repeat(3900) } });
    assert.equal(r.status, 200, r.text);
  });

  test('malformed JSON is 400 json_parse', async () => {
    const m = await mark();
    const r = await api.post('/demo/chat/messages', '{"target_type":"users","target":["u1"],}');
    assertError(r, 400, 'json_parse');
    assert.equal(r.body.exception, 'org.codehaus.jackson.JsonParseException');
    assert.match(r.body.error_description, /Unexpected character/);
    assert.equal((await storedAfter(m)).length, 0);
  });

  test('a body that is not an object is 400', async () => {
    for (const body of ['"hello"', '42', '[1,2]', 'null', 'true']) {
      const r = await api.post('/demo/chat/messages', body);
      assertError(r, 400, 'illegal_argument');
    }
    assertError(await api.post('/demo/chat/messages'), 400, 'illegal_argument');
  });

  test('a group or room that does not exist is 404, and nothing is sent to the others', async () => {
    await refused({ ...ok, target_type: 'chatgroups', target: [groupIds[0], '99999999999999'] }, 404, 'service_resource_not_found');
    await refused({ ...ok, target_type: 'chatrooms', target: [groupIds[0]] }, 404, 'service_resource_not_found');
  });

  test('no token, a bad token, unknown app', async () => {
    let r = await api.with(undefined).post('/demo/chat/messages', ok);
    assertError(r, 401, 'unauthorized', `Subject does not have permission [applications:post:${appUuid}:/messages]`);
    r = await api.with('YWMtnot-a-token').post('/demo/chat/messages', ok);
    assert.equal(r.status, 401, r.text);
    r = await api.post('/demo/nosuchapp/messages', ok);
    assertError(r, 404, 'organization_application_not_found');
  });
});

describe('pre-2014 routes (spec §4.2)', () => {
  for (const [kind, chatType] of [['users', 'chat'], ['groups', 'groupchat']] as const) {
    for (const body of [{ msg: { type: 'text', msg: '你好' } }, { type: 'text', msg: '你好' }]) {
      test(`POST /${kind}/{id}/messages with ${JSON.stringify(body)}`, async () => {
        const to = kind === 'users' ? 'u7' : groupIds[0];
        const route = `${kind}/${to}`;
        const m = await mark();
        const r = await api.post(`/demo/chat/${route}/messages`, body);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers.get('content-type'), JSON_TYPE);
        assert.equal(r.body.action, 'post');
        assert.deepEqual(r.body.data, [{ result_code: 200, result_content: { result: 'ok' } }]);
        const stored = await storedAfter(m);
        assert.equal(stored.length, 1);
        const e = stored[0]!.entity;
        assert.equal(e.to, to);
        assert.equal(e.from, 'admin');
        assert.equal(e.chat_type, chatType);
        assert.deepEqual(e.payload, { bodies: [{ type: 'txt', msg: '你好' }] });
      });
    }
  }

  test('legacy routes refuse bad bodies and missing tokens', async () => {
    const m = await mark();
    assertError(await api.post('/demo/chat/users/u7/messages', { msg: { type: 'nope' } }), 400, 'illegal_argument');
    assertError(await api.post('/demo/chat/users/u7/messages', '[1]'), 400, 'illegal_argument');
    assertError(await api.post('/demo/chat/groups/1/messages', '{bad'), 400, 'json_parse');
    assertError(await api.with(undefined).post('/demo/chat/users/u7/messages', { type: 'text', msg: 'x' }), 401, 'unauthorized');
    assert.equal((await storedAfter(m)).length, 0);
  });
});

test('200 sends in parallel are all stored exactly once with distinct msg_ids', async () => {
  const m = await mark();
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      api.post('/demo/chat/messages?useMsgId=true', { target_type: 'users', target: [`p${i}`], msg: { type: 'txt', msg: `n${i}` } })),
  );
  const acked = new Map<string, string>();
  results.forEach((r, i) => {
    assert.equal(r.status, 200, r.text);
    acked.set(String(r.body.data[`p${i}`]), `n${i}`);
  });
  assert.equal(acked.size, 200, 'distinct msg_ids');
  const stored = await storedAfter(m);
  assert.equal(stored.length, 200);
  // Insertion order (seq) and msg_id order agree even when sends share a group commit.
  const ids = stored.map((e) => BigInt(String(e.entity.msg_id)));
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, `msg_id ${ids[i]} stored after ${ids[i - 1]}`);
  for (const { entity: e } of stored) {
    const text = acked.get(String(e.msg_id));
    assert.ok(text !== undefined, `stored msg_id ${e.msg_id} was acknowledged`);
    assert.deepEqual(e.payload, { bodies: [{ type: 'txt', msg: text }] });
    assert.equal(e.to, `p${text.slice(1)}`);
  }
});
