import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Api, demoToken, startTestServer, type TestServer } from '../helpers.js';
import { ackMid, chatStanza, xmppLogin } from './xmpp-client.js';

let s: TestServer;
let api: Api;
let appId: number;
const J = (u: string): string => `demo#chat_${u}@easemob.com`;

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  appId = (await s.cv.services.store.getApp('demo', 'chat'))!.id;
  for (const username of ['amy', 'bo', 'cy', 'di', 'ed', 'fay']) {
    const r = await api.post('/demo/chat/users', { username, password: `${username}-pw` });
    assert.equal(r.status, 200, r.text);
  }
});
after(async () => {
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

async function friends(owner: string): Promise<string[]> {
  const r = await api.get(`/demo/chat/users/${owner}/contacts/users`);
  assert.equal(r.status, 200, r.text);
  return r.body.data as string[];
}

describe('XMPP receipts', () => {
  test('delivery and read receipts reach the sender with a new id; bad ones get message errors', async () => {
    const amy = await xmppLogin(s.cv.port, 'amy', { resource: 'r' });
    const bo = await xmppLogin(s.cv.port, 'bo', { resource: 'r' });
    amy.send(chatStanza('bo', 'c1', 'receipt me'));
    const mid = ackMid(await amy.expect(/urn:xmpp:receipts/));
    await bo.expect(new RegExp(`id="${mid}"`));

    bo.send(`<message to="${J('amy')}" id="R1"><body>${mid}</body><delivery xmlns="urn:xmpp:receipts" id="${mid}"/></message>`);
    const c = await amy.expect(/<delivery /);
    assert.match(c, new RegExp(`^<message xmlns="jabber:client" from="${J('bo')}" to="${J('amy')}/r" id="(\\d+)"><body>${mid}</body><delivery xmlns="urn:xmpp:receipts" id="${mid}"/></message>$`));
    assert.notEqual(/ id="(\d+)"/.exec(c)![1], mid, 'the relayed receipt has an id of its own');
    // The body alone names the message too (some SDKs leave the id attribute out).
    bo.send(`<message to="${J('amy')}" id="R2"><body>${mid}</body><acked xmlns="urn:xmpp:receipts"/></message>`);
    assert.match(await amy.expect(/<acked /), new RegExp(`<acked xmlns="urn:xmpp:receipts" id="${mid}"/>`));

    const bad: [string, RegExp][] = [
      [`<message to="${J('amy')}" id="B1"><delivery xmlns="urn:xmpp:receipts" id="999999999"/></message>`, /code="404"/],
      [`<message to="${J('amy')}" id="B2"><delivery xmlns="urn:xmpp:receipts" id="not-a-number"/></message>`, /code="400"/],
      [`<message to="demo#chat_1@conference.easemob.com" id="B3"><acked xmlns="urn:xmpp:receipts" id="${mid}"/></message>`, /jid-malformed/],
      [`<message id="B4"><acked xmlns="urn:xmpp:receipts" id="${mid}"/></message>`, /jid-malformed/],
    ];
    for (const [stanza, answer] of bad) {
      bo.send(stanza);
      const id = /id="(B\d)"/.exec(stanza)![1]!;
      assert.match(await bo.expect(new RegExp(`id="${id}"`)), answer);
    }
    // A receipt for someone else's message is refused: cy never got it.
    const cy = await xmppLogin(s.cv.port, 'cy', { resource: 'r' });
    cy.send(`<message to="${J('amy')}" id="B5"><delivery xmlns="urn:xmpp:receipts" id="${mid}"/></message>`);
    assert.match(await cy.expect(/id="B5"/), /code="404"/);
    await amy.expectNone(/<delivery |<acked /);

    // Receipts from any transport are signals: rendered from the signal alone.
    await s.cv.services.realtime.router.signal(appId, 'amy', { kind: 'receipt', receipt: 'read', msgId: '42', from: 'ed', to: 'amy' });
    assert.match(await amy.expect(/<acked /), new RegExp(`from="${J('ed')}".*<body>42</body><acked xmlns="urn:xmpp:receipts" id="42"/>`));
    await Promise.all([amy.close(), bo.close(), cy.close()]);
  });
});

describe('XMPP roster and presence', () => {
  test('REST contact changes push roster items to both users; roster get and versions', async () => {
    const amy = await xmppLogin(s.cv.port, 'amy', { resource: 'ros' });
    const bo = await xmppLogin(s.cv.port, 'bo', { resource: 'ros', available: false });
    amy.send('<iq type="get" id="r0"><query xmlns="jabber:iq:roster"/></iq>');
    const empty = await amy.expect(/id="r0"/);
    assert.match(empty, /<query xmlns="jabber:iq:roster" ver="[0-9a-f]{40}"\/>/);

    assert.equal((await api.post('/demo/chat/users/amy/contacts/users/bo')).status, 200);
    assert.match(await amy.expect(/jabber:iq:roster/), new RegExp(`^<iq xmlns="jabber:client" type="set" id="push\\d+" from="${J('amy')}" to="${J('amy')}/ros"><query xmlns="jabber:iq:roster"><item jid="${J('bo')}" name="bo" subscription="both"/></query></iq>$`));
    // A connected new friend's presence follows the push.
    assert.match(await amy.expect(/<presence /), new RegExp(`^<presence xmlns="jabber:client" from="${J('bo')}" to="${J('amy')}/ros"/>$`));
    // Roster pushes reach a bound session even before its presence (and no presence then).
    assert.match(await bo.expect(/jabber:iq:roster/), new RegExp(`<item jid="${J('amy')}" name="amy" subscription="both"/>`));
    await bo.expectNone(/<presence /);

    amy.send('<iq type="get" id="r1"><query xmlns="jabber:iq:roster"/></iq>');
    const full = await amy.expect(/id="r1"/);
    assert.match(full, new RegExp(`<item jid="${J('bo')}" name="bo" subscription="both"/>`));
    const ver = /ver="([0-9a-f]{40})"/.exec(full)![1]!;
    assert.notEqual(ver, /ver="([0-9a-f]{40})"/.exec(empty)![1]);
    // Up to date: an empty result.
    amy.send(`<iq type="get" id="r2"><query xmlns="jabber:iq:roster" ver="${ver}"/></iq>`);
    assert.match(await amy.expect(/id="r2"/), /^<iq xmlns="jabber:client" type="result" id="r2" to="[^"]+"\/>$/);

    assert.equal((await api.delete('/demo/chat/users/bo/contacts/users/amy')).status, 200);
    assert.match(await amy.expect(/jabber:iq:roster/), new RegExp(`<item jid="${J('bo')}" subscription="remove"/>`));
    assert.match(await amy.expect(/<presence /), new RegExp(`from="${J('bo')}" to="${J('amy')}/ros" type="unavailable"`));
    assert.match(await bo.expect(/jabber:iq:roster/), new RegExp(`<item jid="${J('amy')}" subscription="remove"/>`));
    await Promise.all([amy.close(), bo.close()]);
  });

  test('roster set removes a friend; other roster stanzas get the right iq errors', async () => {
    assert.equal((await api.post('/demo/chat/users/cy/contacts/users/di')).status, 200);
    const cy = await xmppLogin(s.cv.port, 'cy', { resource: 'ros' });
    const di = await xmppLogin(s.cv.port, 'di', { resource: 'ros' });
    const bad: [string, RegExp][] = [
      [`<iq type="set" id="e1"><query xmlns="jabber:iq:roster"><item jid="${J('ed')}" name="ed"/></query></iq>`, /<not-allowed /],
      [`<iq type="set" id="e2"><query xmlns="jabber:iq:roster"><item jid="${J('di')}" subscription="remove"/><item jid="${J('ed')}" subscription="remove"/></query></iq>`, /<bad-request /],
      [`<iq type="set" id="e3"><query xmlns="jabber:iq:roster"><item jid="${J('ed')}" subscription="remove"/></query></iq>`, /<item-not-found /],
      [`<iq type="set" id="e4"><query xmlns="jabber:iq:roster"><item jid="someone@else.example" subscription="remove"/></query></iq>`, /<bad-request /],
      [`<iq type="get" id="e5" to="${J('di')}"><query xmlns="jabber:iq:roster"/></iq>`, /<forbidden /],
      ['<iq type="set" id="e6"><query xmlns="jabber:iq:roster"/></iq>', /<bad-request /],
    ];
    for (const [stanza, condition] of bad) {
      cy.send(stanza);
      const id = /id="(e\d)"/.exec(stanza)![1]!;
      const answer = await cy.expect(new RegExp(`id="${id}"`));
      assert.match(answer, /type="error"/);
      assert.match(answer, condition);
    }
    assert.deepEqual(await friends('cy'), ['di']);
    cy.send(`<iq type="set" id="rm"><query xmlns="jabber:iq:roster"><item jid="${J('di')}" subscription="remove"/></query></iq>`);
    assert.match(await cy.expect(/id="rm"/), /type="result"/);
    assert.deepEqual(await friends('cy'), []);
    assert.match(await di.expect(/jabber:iq:roster/), new RegExp(`<item jid="${J('cy')}" subscription="remove"/>`));
    await Promise.all([cy.close(), di.close()]);
  });

  test('the subscription handshake with [resp:true] makes friends; unasked subscribed is refused; unsubscribe ends it', async () => {
    const ed = await xmppLogin(s.cv.port, 'ed', { resource: 'sub' });
    const fay = await xmppLogin(s.cv.port, 'fay', { resource: 'sub' });
    // Nobody asked fay: accepting is refused, nothing changes.
    fay.send(`<presence to="${J('ed')}" type="subscribed" id="s0"/>`);
    assert.match(await fay.expect(/id="s0"/), /type="error".*<not-allowed /);
    assert.deepEqual(await friends('fay'), []);

    ed.send(`<presence to="${J('fay')}" type="subscribe"><status>let us talk</status></presence>`);
    assert.match(await fay.expect(/type="subscribe"/), new RegExp(`^<presence xmlns="jabber:client" from="${J('ed')}" to="${J('fay')}/sub" type="subscribe"><status>let us talk</status></presence>$`));
    fay.send(`<presence to="${J('ed')}" type="subscribed"><status>[resp:true]</status></presence>`);
    fay.send(`<presence to="${J('ed')}" type="subscribe"><status>[resp:true]</status></presence>`);
    // The roster push (the store has the friendship) and fay's presence, the acceptance, the reverse request.
    const got = await ed.takeUntil(/type="subscribe"/);
    assert.equal(got.length, 4, JSON.stringify(got));
    assert.match(got[0]!, new RegExp(`jabber:iq:roster.*<item jid="${J('fay')}" name="fay" subscription="both"/>`));
    assert.match(got[1]!, new RegExp(`^<presence xmlns="jabber:client" from="${J('fay')}" to="${J('ed')}/sub"/>$`));
    assert.match(got[2]!, /type="subscribed"><status>\[resp:true\]<\/status>/);
    assert.match(got[3]!, /type="subscribe"><status>\[resp:true\]<\/status>/);
    assert.match(await fay.expect(/jabber:iq:roster/), new RegExp(`<item jid="${J('ed')}" name="ed" subscription="both"/>`));
    assert.deepEqual(await friends('ed'), ['fay']);
    // The SDK's automatic answer to a [resp:true] request: already friends, relayed.
    ed.send(`<presence to="${J('fay')}" type="subscribed"><status>[resp:true]</status></presence>`);
    await fay.expect(/type="subscribed"/);

    ed.send(`<presence to="${J('fay')}" type="unsubscribe"/>`);
    const ended = await fay.takeUntil(/type="unsubscribe"/);
    assert.match(ended.at(-3) ?? '', new RegExp(`jabber:iq:roster.*<item jid="${J('ed')}" subscription="remove"/>`));
    assert.match(ended.at(-2) ?? '', new RegExp(`from="${J('ed')}" to="${J('fay')}/sub" type="unavailable"`));
    assert.match(ended.at(-1)!, new RegExp(`from="${J('ed')}"`));
    assert.deepEqual(await friends('ed'), []);
    // Not friends and not asked: an unsubscribed goes nowhere.
    ed.send(`<presence to="${J('fay')}" type="unsubscribed"/>`);
    await fay.expectNone(/type="unsubscribed"/);
    await ed.expectNone(/type="error"/);
    await Promise.all([ed.close(), fay.close()]);
  });

  test('available and unavailable presence go to contacts only', async () => {
    assert.equal((await api.post('/demo/chat/users/amy/contacts/users/di')).status, 200);
    const di = await xmppLogin(s.cv.port, 'di', { resource: 'p' });
    const cy = await xmppLogin(s.cv.port, 'cy', { resource: 'p' });
    const amy = await xmppLogin(s.cv.port, 'amy', { resource: 'p', available: false });
    amy.send('<presence><status>here</status></presence>');
    assert.match(await di.expect(/<presence /), new RegExp(`^<presence xmlns="jabber:client" from="${J('amy')}" to="${J('di')}/p"><status>here</status></presence>$`));
    // The contact already online is told to the newcomer.
    assert.match(await amy.expect(/<presence /), new RegExp(`from="${J('di')}"`));
    await amy.close();
    assert.match(await di.expect(/<presence /), new RegExp(`from="${J('amy')}" to="${J('di')}/p" type="unavailable"`));
    await cy.expectNone(/<presence /);
    await Promise.all([di.close(), cy.close()]);
  });
});
