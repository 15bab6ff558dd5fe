import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.js';
import { Api, demoToken, startTestServer, type TestServer } from '../helpers.js';
import { ackMid, chatStanza, FRAMING, XmppClient, xmppLogin } from './xmpp-client.js';

let s: TestServer;
const DOMAIN = 'im.example.org';

before(async () => {
  s = await startTestServer({ XMPP_DOMAIN: 'IM.Example.org' });
  const api = new Api(s.url, await demoToken(s));
  for (const username of ['xa', 'xb']) assert.equal((await api.post('/demo/chat/users', { username, password: `${username}-pw` })).status, 200);
  assert.equal((await api.post('/demo/chat/chatgroups', { groupname: 'g', desc: 'd', owner: 'xa', members: ['xb'], public: true })).status, 200);
});
after(async () => {
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

describe('XMPP_DOMAIN', () => {
  test('the setting is a lower-cased domain name, easemob.com by default', () => {
    assert.equal(loadConfig({}).xmppDomain, 'easemob.com');
    assert.equal(loadConfig({ XMPP_DOMAIN: 'Chat.Example.COM' }).xmppDomain, 'chat.example.com');
    assert.equal(loadConfig({}, { XMPP_DOMAIN: 'flag.example' }).xmppDomain, 'flag.example');
    for (const bad of ['-x.com', 'a..b', 'a b', 'x/y', 'user@host']) assert.throws(() => loadConfig({ XMPP_DOMAIN: bad }), ConfigError, bad);
  });

  test('JIDs, acks and the conference service use the configured domain; another domain is host-unknown', async () => {
    const xa = await xmppLogin(s.cv.port, 'xa', { domain: DOMAIN });
    const xb = await xmppLogin(s.cv.port, 'xb', { domain: DOMAIN });
    xa.send(chatStanza('xb', 'd1', 'hi', DOMAIN));
    const ack = await xa.expect(/urn:xmpp:receipts/);
    assert.match(ack, new RegExp(`from="${DOMAIN}" to="demo#chat_xa@${DOMAIN}/webim"`));
    const mid = ackMid(ack);
    assert.match(await xb.expect(new RegExp(`id="${mid}"`)), new RegExp(`from="demo#chat_xa@${DOMAIN}" to="demo#chat_xb@${DOMAIN}/webim"`));
    // The old domain is not an address here.
    xa.send(chatStanza('xb', 'd2', 'hi', 'easemob.com'));
    assert.match(await xa.expect(/id="d2"/), /jid-malformed/);
    xb.send(`<iq type="get" id="d3" to="conference.${DOMAIN}"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`);
    assert.match(await xb.expect(/id="d3"/), new RegExp(`from="conference.${DOMAIN}".*<item jid="demo#chat_\\d+@conference.${DOMAIN}" name="g"/>`));

    const other = await XmppClient.connect(s.cv.port);
    other.send(`<open xmlns="${FRAMING}" to="easemob.com" version="1.0"/>`);
    assert.match(await other.expect(/stream:error/), /host-unknown/);
    await other.closedBy();
    await Promise.all([xa.close(), xb.close()]);
  });
});
