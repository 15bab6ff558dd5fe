import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Api, demoToken, startTestServer, type TestServer } from '../helpers.js';
import { assertError } from './api-assert.js';

/**
 * U+0000 in what a client sends: PostgreSQL's text cannot hold it, so names and addresses with it
 * are refused with 400 on both stores alike, and nothing with it ever reaches a 500.
 */

let s: TestServer;
let api: Api;

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  assert.equal((await api.post('/demo/chat/users', { username: 'owner1', password: 'p' })).status, 200);
});
after(() => s.close());

test('a send whose target or sender holds NUL gets 400; NUL inside the message text is stored', async () => {
  assertError(await api.post('/demo/chat/messages', { target_type: 'users', target: ['a\u0000b'], msg: { type: 'txt', msg: 'x' } }), 400, 'illegal_argument', 'every target must be a non-empty string of at most 64 characters, without NUL');
  assertError(await api.post('/demo/chat/messages', { target_type: 'users', target: ['ab'], msg: { type: 'txt', msg: 'x' }, from: 'q\u0000' }), 400, 'illegal_argument', 'from must not contain the NUL character');
  const ok = await api.post('/demo/chat/messages', { target_type: 'users', target: ['ab'], msg: { type: 'txt', msg: 'x\u0000y' } });
  assert.equal(ok.status, 200, ok.text);
  const r = await api.get(`/demo/chat/chatmessages?ql=${encodeURIComponent("select * where to = 'ab'")}`);
  assert.equal(r.body.entities[0].payload.bodies[0].msg, 'x\u0000y');
});

test('group and room names and descriptions with NUL get 400', async () => {
  assertError(await api.post('/demo/chat/chatgroups', { groupname: 'g\u0000', desc: 'd', owner: 'owner1', public: true, maxusers: 10 }), 400, 'illegal_argument', 'groupname must not contain the NUL character');
  assertError(await api.post('/demo/chat/chatgroups', { groupname: 'g', desc: 'd\u0000', owner: 'owner1', public: true, maxusers: 10 }), 400, 'illegal_argument', 'desc must not contain the NUL character');
  assertError(await api.post('/demo/chat/chatrooms', { name: 'r\u0000', description: 'd', owner: 'owner1', maxusers: 10 }), 400, 'illegal_argument', 'name must not contain the NUL character');
});

test('names with NUL in paths and queries never get a 500', async () => {
  for (const p of ['/demo/chat/users/a%00b', '/demo/chat/users/a%00b/contacts/users/owner1', '/demo/chat/chatgroups/1%00', '/demo/chat/users/owner1/blocks/users']) {
    const r = await api.get(p);
    assert.ok(r.status >= 400 && r.status < 500 || r.status === 200, `${p}: ${r.status} ${r.text}`);
  }
  const q = await api.get(`/demo/chat/chatmessages?ql=${encodeURIComponent("select * where from = 'a\u0000' or payload.bodies.msg contains 'b\u0000'")}`);
  assert.ok(q.status === 200 || q.status === 400, q.text);
  assert.equal((await api.get('/demo/chat/users/owner1')).status, 200, 'the server carries on');
});
