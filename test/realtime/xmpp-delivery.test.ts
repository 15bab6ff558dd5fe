import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Api, demoToken, startTestServer, type TestServer } from '../helpers.js';
import { ackMid, bodyJson, chatStanza, xmppLogin } from './xmpp-client.js';

let s: TestServer;
let api: Api;
let appId: number;

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  appId = (await s.cv.services.store.getApp('demo', 'chat'))!.id;
  for (const username of ['ann', 'ben', 'cid', 'dot', 'eve']) {
    const r = await api.post('/demo/chat/users', { username, password: `${username}-pw` });
    assert.equal(r.status, 200, r.text);
  }
});
after(async () => {
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

/** Sends one text message by REST; resolves with its text. */
async function restSend(from: string, to: string, text: string): Promise<string> {
  const r = await api.post('/demo/chat/messages', { target_type: 'users', target: [to], msg: { type: 'txt', msg: text }, from });
  assert.equal(r.status, 200, r.text);
  return text;
}

const idOf = (stanza: string): string => /<message [^>]*\bid="(\d+)"/.exec(stanza)![1]!;
const textOf = (stanza: string): string => (bodyJson(stanza) as { bodies: { msg: string }[] }).bodies[0]!.msg;

describe('XMPP presence-gated delivery', () => {
  test('nothing before the initial presence; then the pending messages with delay, then live ones without', async () => {
    const ann = await xmppLogin(s.cv.port, 'ann');
    const ben = await xmppLogin(s.cv.port, 'ben', { available: false });
    ann.send(chatStanza('ben', 'c1', 'while you were away'));
    const mid = ackMid(await ann.expect(/urn:xmpp:receipts/));
    // Bound but not available: the message waits.
    await ben.expectNone(/<message /);
    assert.equal(await s.cv.services.realtime.delivery.count(appId, 'ben'), 1);

    ben.send('<presence/>');
    const replayed = await ben.expect(/<message /);
    assert.equal(idOf(replayed), mid);
    const r = await api.get(`/demo/chat/chatmessages?ql=${encodeURIComponent("select * where from = 'ann'")}`);
    const stored = (r.body.entities as { msg_id: string; timestamp: number }[]).find((e) => e.msg_id === mid)!;
    assert.match(replayed, new RegExp(`<delay xmlns="urn:xmpp:delay" stamp="${new Date(stored.timestamp).toISOString()}"/>`));
    assert.deepEqual(bodyJson(replayed), { bodies: [{ type: 'txt', msg: 'while you were away' }], ext: {}, from: 'ann', to: 'ben' });

    // Ack B marks it delivered; a live message has no delay.
    ben.send(`<message id="${mid}" to="easemob.com"><received xmlns="urn:xmpp:receipts" id="${mid}"/></message>`);
    await ben.expectNone(/<message /);
    assert.equal(await s.cv.services.realtime.delivery.status(appId, 'ben', mid), 'delivered');
    assert.equal(await s.cv.services.realtime.delivery.count(appId, 'ben'), 0);
    ann.send(chatStanza('ben', 'c2', 'live'));
    const mid2 = ackMid(await ann.expect(/urn:xmpp:receipts/));
    const live = await ben.expect(/<message /);
    assert.equal(idOf(live), mid2);
    assert.doesNotMatch(live, /urn:xmpp:delay/);

    // Unavailable gates again: the next message waits, and comes with the next presence.
    ben.send('<presence type="unavailable"/>');
    ann.send(chatStanza('ben', 'c3', 'gated again'));
    const mid3 = ackMid(await ann.expect(/urn:xmpp:receipts/));
    await ben.expectNone(/<message /);
    ben.send('<presence/>');
    // mid2 was never acked: it is pending too, before mid3.
    const again = [idOf(await ben.expect(/<message /)), idOf(await ben.expect(/<message /))];
    assert.deepEqual(again, [mid2, mid3]);
    await Promise.all([ann.close(), ben.close()]);
  });

  test('a long backlog comes oldest first in pages, and live messages sent during the replay arrive once each', async () => {
    const backlog: string[] = [];
    for (let i = 0; i < 230; i++) backlog.push(await restSend('dot', 'cid', `old ${i}`));
    const cid = await xmppLogin(s.cv.port, 'cid', { available: false });
    cid.send('<presence/>');
    // Sent while the replay runs (or just after it): each must come exactly once.
    const live: string[] = [];
    for (let i = 0; i < 30; i++) live.push(await restSend('dot', 'cid', `new ${i}`));
    const got: string[] = [];
    const delayed: boolean[] = [];
    const ids: string[] = [];
    while (got.length < backlog.length + live.length) {
      const m = await cid.expect(/<message /, 5000);
      got.push(textOf(m));
      ids.push(idOf(m));
      delayed.push(/urn:xmpp:delay/.test(m));
    }
    await cid.expectNone(/<message /);
    // Acked all at once, one frame each (more than the frames a stream may have in flight):
    // nothing is refused, and once a later stanza is answered every ack is recorded.
    for (const id of ids) cid.send(`<message id="${id}" to="easemob.com"><received xmlns="urn:xmpp:receipts" id="${id}"/></message>`);
    await cid.expectNone(/stream:error/);
    assert.equal(await s.cv.services.realtime.delivery.count(appId, 'cid'), 0);
    assert.deepEqual(got.slice(0, backlog.length), backlog, 'the backlog, oldest first');
    assert.ok(delayed.slice(0, backlog.length).every(Boolean), 'every backlog message has a delay stamp');
    assert.deepEqual([...got].sort(), [...backlog, ...live].sort(), 'every message exactly once');
    // Live ones keep their order among themselves, whether replayed or pushed.
    assert.deepEqual(got.filter((id) => live.includes(id)), live);
    await cid.close();
  });

  test('a second session of the user gets its own replay; acks from one clear it for the next login', async () => {
    await restSend('ann', 'eve', 'to both');
    const phone = await xmppLogin(s.cv.port, 'eve', { resource: 'mobile' });
    const web = await xmppLogin(s.cv.port, 'eve', { resource: 'webim' });
    const first = await phone.expect(/<message /);
    assert.equal(textOf(first), 'to both');
    const mid = idOf(first);
    assert.equal(idOf(await web.expect(/<message /)), mid);
    phone.send(`<message id="${mid}" to="easemob.com"><received xmlns="urn:xmpp:receipts" id="${mid}"/></message>`);
    await phone.expectNone(/<message /);
    await Promise.all([phone.close(), web.close()]);
    const later = await xmppLogin(s.cv.port, 'eve');
    await later.expectNone(/<message /);
    await later.close();
  });

  test('presence stanzas that are not allowed get presence errors, and the stream goes on', async () => {
    const ann = await xmppLogin(s.cv.port, 'ann', { resource: 'bad' });
    const cases: [string, RegExp][] = [
      ['<presence type="subscribe" id="p1"/>', /id="p1"[^>]*>.*<bad-request /],
      ['<presence to="someone@elsewhere.example" id="p2"/>', /id="p2"[^>]*>.*<jid-malformed /],
      [`<presence to="demo#chat_ben@easemob.com" type="bogus" id="p3"/>`, /id="p3"[^>]*>.*<bad-request /],
      [`<presence to="demo#chat_nobody@easemob.com" type="subscribe" id="p4"/>`, /id="p4"[^>]*>.*<item-not-found /],
      [`<presence to="demo#chat_ann@easemob.com" type="subscribe" id="p5"/>`, /id="p5"[^>]*>.*<bad-request /],
    ];
    for (const [stanza, answer] of cases) {
      ann.send(stanza);
      const e = await ann.expect(/type="error"/);
      assert.match(e, answer);
      assert.match(e, /^<presence /);
    }
    // Probes and errors from a client are ignored (RFC 6120 §8.3.1), directed availability too.
    ann.send('<presence type="probe" to="demo#chat_ben@easemob.com"/><presence type="error"/><presence to="demo#chat_ben@easemob.com"/>');
    await ann.expectNone(/type="error"/);
    await ann.close();
  });
});

describe('XMPP iq and message checks', () => {
  test('malformed iq requests get bad-request; client errors are not answered; the stream goes on', async () => {
    const ann = await xmppLogin(s.cv.port, 'ann', { resource: 'iq' });
    const bad = [
      '<iq type="get"><ping xmlns="urn:xmpp:ping"/></iq>',
      '<iq type="fetch" id="q2"><ping xmlns="urn:xmpp:ping"/></iq>',
      '<iq type="get" id="q3"/>',
      '<iq type="get" id="q4"><ping xmlns="urn:xmpp:ping"/><query xmlns="jabber:iq:roster"/></iq>',
    ];
    for (const stanza of bad) {
      ann.send(stanza);
      assert.match(await ann.expect(/<iq /), /type="error".*<bad-request /);
    }
    ann.send('<iq type="get" id="q5"><query xmlns="jabber:iq:privacy"/></iq>');
    assert.match(await ann.expect(/id="q5"/), /<service-unavailable /);
    // A bounced error with a body is not a send.
    ann.send(`<message type="error" to="demo#chat_ben@easemob.com" id="q6"><body>{"bodies":[{"type":"txt","msg":"x"}]}</body></message>`);
    await ann.expectNone(/id="q6"|urn:xmpp:receipts/);
    await ann.close();
  });
});
