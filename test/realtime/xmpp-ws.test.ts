import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Api, demoToken, rawHttp, startTestServer, type TestServer } from '../helpers.js';
import { APPKEY, FRAMING, plain, userToken as tokenOf, XmppClient } from './xmpp-client.js';

let s: TestServer;
let api: Api;
let appId: number;
const OPEN = `<open xmlns="${FRAMING}" to="easemob.com" version="1.0"/>`;

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  appId = (await s.cv.services.store.getApp('demo', 'chat'))!.id;
  for (const username of ['alice', 'bob', 'carol']) {
    const r = await api.post('/demo/chat/users', { username, password: `${username}-pw` });
    assert.equal(r.status, 200, r.text);
  }
});
after(async () => {
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

const Client = { connect: (path = '/ws/'): Promise<XmppClient> => XmppClient.connect(s.cv.port, path) };
const userToken = (user: string): Promise<string> => tokenOf(s.url, user);

/** Open, SASL PLAIN, restart, bind (with the extra children web 1.4.13+ sends), session, initial presence. */
async function login(user: string, password: string, resource = 'webim'): Promise<XmppClient> {
  const c = await Client.connect();
  c.send(OPEN);
  assert.match(await c.expect(/^<open /), /version="1.0"/);
  assert.match(await c.expect(/stream:features/), /<mechanism>PLAIN<\/mechanism>/);
  c.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${plain(user, password)}</auth>`);
  await c.expect(/^<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"\/>$/);
  c.send(OPEN);
  await c.expect(/^<open /);
  const features = await c.expect(/stream:features/);
  assert.match(features, /<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"\/>/);
  c.send(`<iq type="set" id="_bind_auth_2" xmlns="jabber:client"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>${resource}</resource><os>webim</os><is_manual_login>true</is_manual_login></bind></iq>`);
  const bound = await c.expect(/_bind_auth_2/);
  assert.match(bound, new RegExp(`<jid>${APPKEY}_${user}@easemob.com/${resource}</jid>`));
  c.send('<iq type="set" id="_session_auth_2" xmlns="jabber:client"><session xmlns="urn:ietf:params:xml:ns:xmpp-session"/></iq>');
  assert.match(await c.expect(/_session_auth_2/), /type="result"/);
  // The initial presence: delivery starts (spec §4.5).
  c.send('<presence xmlns="jabber:client"/>');
  return c;
}

function chat(to: string, clientId: string, text: string): string {
  const body = JSON.stringify({ from: 'ignored', to, bodies: [{ type: 'txt', msg: text }], ext: { weichat: { originType: 'webim' } } });
  return `<message type="chat" to="${APPKEY}_${to}@easemob.com" id="${clientId}" xmlns="jabber:client"><body>${body.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</body></message>`;
}

describe('XMPP over WebSocket', () => {
  test('token and password logins; a message reaches the other user live and the ack carries the stored msg_id', async () => {
    const alice = await login('alice', `$t$${await userToken('alice')}`);
    const bob = await login('bob', 'bob-pw');
    assert.equal(s.cv.services.realtime.sessions.isOnline(appId, 'bob'), true);

    alice.send(chat('bob', 'WEBIM_1', 'hello <bob> & co'));
    const ack = await alice.expect(/urn:xmpp:receipts/);
    const mid = /mid="(\d+)"/.exec(ack)?.[1];
    assert.ok(mid, ack);
    assert.match(ack, /^<message xmlns="jabber:client" from="easemob.com" to="demo#chat_alice@easemob.com\/webim"><body>WEBIM_1<\/body><received xmlns="urn:xmpp:receipts" mid="\d+">WEBIM_1<\/received><\/message>$/);

    const incoming = await bob.expect(new RegExp(`<message [^>]*id="${mid}"`));
    assert.match(incoming, new RegExp(`from="demo#chat_alice@easemob.com" to="demo#chat_bob@easemob.com/webim" type="chat" id="${mid}"`));
    const body = /<body>(.*)<\/body>/.exec(incoming)![1]!.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    assert.deepEqual(JSON.parse(body), { bodies: [{ type: 'txt', msg: 'hello <bob> & co' }], ext: { weichat: { originType: 'webim' } }, from: 'alice', to: 'bob' });

    // The same message, with the same id, is what the export returns.
    const r = await api.get('/demo/chat/chatmessages?limit=100');
    assert.equal(r.status, 200, r.text);
    const stored = (r.body.entities as { msg_id: string; from: string; to: string }[]).find((e) => e.msg_id === mid);
    assert.ok(stored, `msg_id ${mid} not exported: ${r.text}`);
    assert.equal(stored.from, 'alice');
    assert.equal(stored.to, 'bob');

    // Ack B clears the pending delivery; a ping is answered.
    assert.equal((await s.cv.services.realtime.delivery.status(appId, 'bob', mid)) === 'undelivered', true);
    bob.send(`<message id="${mid}" to="easemob.com"><received xmlns="urn:xmpp:receipts" id="${mid}"/></message>`);
    bob.send('<iq type="get" id="ping1" to="easemob.com"><ping xmlns="urn:xmpp:ping"/></iq>');
    assert.match(await bob.expect(/ping1/), /type="result"/);
    assert.equal((await s.cv.services.realtime.delivery.status(appId, 'bob', mid)) === 'undelivered', false);

    // An invalid body is refused with a message error, stream still up.
    alice.send(`<message type="chat" to="${APPKEY}_bob@easemob.com" id="bad1"><body>{"bodies":[{"type":"nope"}]}</body></message>`);
    assert.match(await alice.expect(/bad1/), /type="error".*code="400"/);
    alice.send('<iq type="get" id="ping2"><ping xmlns="urn:xmpp:ping"/></iq>');
    await alice.expect(/ping2/);

    alice.send(`<close xmlns="${FRAMING}"/>`);
    await alice.expect(/^<close /);
    await alice.closedBy();
    bob.ws.close();
  });

  test('a group message reaches the members; a non-member may not speak in the group', async () => {
    const g = await api.post('/demo/chat/chatgroups', { groupname: 'xg', desc: 'x', owner: 'alice', members: ['bob'], public: true, maxusers: 10 });
    assert.equal(g.status, 200, g.text);
    const gid = g.body.data.groupid as string;
    const alice = await login('alice', 'alice-pw', 'grp');
    const bob = await login('bob', 'bob-pw', 'grp');
    const carol = await login('carol', 'carol-pw', 'grp');
    const body = JSON.stringify({ bodies: [{ type: 'txt', msg: 'to the group' }] });
    alice.send(`<message type="groupchat" to="${APPKEY}_${gid}@conference.easemob.com" id="G1"><body>${body}</body></message>`);
    const ack = await alice.expect(/urn:xmpp:receipts/);
    const mid = /mid="(\d+)"/.exec(ack)?.[1];
    assert.ok(mid, ack);
    await bob.expect(new RegExp(`<message [^>]*id="${mid}"`));
    carol.send(`<message type="groupchat" to="${APPKEY}_${gid}@conference.easemob.com" id="G2"><body>${body}</body></message>`);
    assert.match(await carol.expect(/G2/), /type="error".*code="403"/);
    const r = await api.get(`/demo/chat/chatmessages?ql=${encodeURIComponent(`select * where to = '${gid}'`)}`);
    assert.deepEqual((r.body.entities as { msg_id: string }[]).map((e) => e.msg_id), [mid], 'only the member\'s message was stored');
    for (const c of [alice, bob, carol]) c.ws.close();
  });

  test('a second login with the same resource kicks the first with conflict', async () => {
    const first = await login('carol', 'carol-pw', 'mobile');
    const second = await login('carol', 'carol-pw', 'mobile');
    assert.match(await first.expect(/stream:error/), /<conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/><text[^>]*>Replaced by new connection<\/text>/);
    await first.closedBy();
    // The new session is the registered one and keeps working.
    second.send('<iq type="get" id="p"><ping xmlns="urn:xmpp:ping"/></iq>');
    await second.expect(/id="p"/);
    assert.deepEqual(s.cv.services.realtime.sessions.resources(appId, 'carol'), ['mobile']);
    second.ws.close();
  });

  test('a bad password or token is not-authorized', async () => {
    for (const pw of ['wrong', '$t$YWMtnotatoken']) {
      const c = await Client.connect('/ws');
      c.send(OPEN);
      await c.expect(/stream:features/);
      c.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${plain('alice', pw)}</auth>`);
      assert.match(await c.expect(/failure/), /<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/><\/failure>/);
      await c.closedBy();
    }
  });

  test('hostile or broken XML ends only that stream', async () => {
    const bystander = await login('bob', 'bob-pw', 'other');
    const cases: [string, RegExp][] = [
      ['<!DOCTYPE lol [<!ENTITY a "aaaa">]><message>&a;</message>', /restricted-xml/],
      ['<message><body>unclosed', /not-well-formed/],
      [`<message><body>${'x'.repeat(70 * 1024)}</body></message>`, /policy-violation/],
    ];
    for (const [frame, condition] of cases) {
      const c = await login('alice', 'alice-pw', 'hostile');
      c.send(frame);
      assert.match(await c.expect(/stream:error/), condition);
      await c.closedBy();
      bystander.send('<iq type="get" id="alive"><ping xmlns="urn:xmpp:ping"/></iq>');
      await bystander.expect(/id="alive"/);
    }
    // Before login too.
    const early = await Client.connect();
    early.send('<!DOCTYPE x><open/>');
    assert.match(await early.expect(/stream:error/), /restricted-xml/);
    await early.closedBy();
    bystander.ws.close();
  });

  test('other upgrade paths are refused with 404', async () => {
    const res = await rawHttp(s.cv.port, 'GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n', 2000);
    assert.match(res, /^HTTP\/1.1 404/);
  });
});
