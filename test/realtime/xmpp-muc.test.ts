import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Api, demoToken, startTestServer, type TestServer } from '../helpers.js';
import { ackMid, xmppLogin } from './xmpp-client.js';

let s: TestServer;
let api: Api;
let gid: string;
let rid: string;
const ROOM = (id: string): string => `demo#chat_${id}@conference.easemob.com`;
const MUC = '<x xmlns="http://jabber.org/protocol/muc"/>';
const CHATROOM = '<roomtype xmlns="easemob:x:roomtype" type="chatroom"/>';

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  for (const username of ['gm', 'gx', 'gy', 'gz']) {
    const r = await api.post('/demo/chat/users', { username, password: `${username}-pw` });
    assert.equal(r.status, 200, r.text);
  }
  const g = await api.post('/demo/chat/chatgroups', { groupname: 'Team <1>', desc: 'd', owner: 'gm', members: ['gx'], public: true, maxusers: 10 });
  assert.equal(g.status, 200, g.text);
  gid = g.body.data.groupid as string;
  const r = await api.post('/demo/chat/chatrooms', { name: 'lobby', description: 'd', owner: 'gm', maxusers: 3 });
  assert.equal(r.status, 200, r.text);
  rid = r.body.data.id as string;
});
after(async () => {
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

async function roomMembers(id: string): Promise<string[]> {
  const r = await api.get(`/demo/chat/chatrooms/${id}`);
  assert.equal(r.status, 200, r.text);
  return (r.body.data[0].affiliations as Record<string, string>[]).map((a) => a.owner ?? a.member!);
}

describe('XMPP groups and chat rooms', () => {
  test('group members enter with their affiliation; non-members and bad room addresses get presence errors', async () => {
    const gm = await xmppLogin(s.cv.port, 'gm');
    const gx = await xmppLogin(s.cv.port, 'gx');
    const gy = await xmppLogin(s.cv.port, 'gy');
    gx.send(`<presence to="${ROOM(gid)}/gx" id="j1">${MUC}</presence>`);
    assert.match(await gx.expect(/id="j1"/), new RegExp(`^<presence xmlns="jabber:client" from="${ROOM(gid)}/gx" to="demo#chat_gx@easemob.com/webim" id="j1"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="member" role="participant"/><status code="110"/></x></presence>$`));
    gm.send(`<presence to="${ROOM(gid)}/gm" id="j2">${MUC}</presence>`);
    assert.match(await gm.expect(/id="j2"/), /<item affiliation="owner" role="moderator"\/><status code="110"\/>/);

    const bad: [string, RegExp][] = [
      [`<presence to="${ROOM(gid)}/gy" id="e1">${MUC}</presence>`, /<error type="auth" code="407"><registration-required /],
      [`<presence to="${ROOM('123456789')}/gy" id="e2">${MUC}</presence>`, /<error type="cancel" code="404"><item-not-found /],
      [`<presence to="${ROOM(gid)}" id="e3">${MUC}</presence>`, /<jid-malformed /],
      [`<presence to="${ROOM(gid)}/gy" type="subscribe" id="e4"/>`, /<bad-request /],
    ];
    for (const [stanza, answer] of bad) {
      gy.send(stanza);
      const id = /id="(e\d)"/.exec(stanza)![1]!;
      const got = await gy.expect(new RegExp(`id="${id}"`));
      assert.match(got, /^<presence [^>]*type="error"/);
      assert.match(got, answer);
    }
    // Leaving a group's presence keeps the membership (leaving a group is a REST call).
    gx.send(`<presence to="${ROOM(gid)}/gx" type="unavailable" id="l1"/>`);
    assert.match(await gx.expect(/id="l1"/), /type="unavailable".*<item affiliation="none" role="none"\/><status code="110"\/>/);
    const members = await api.get(`/demo/chat/chatgroups/${gid}/users`);
    assert.ok(JSON.stringify(members.body.data).includes('gx'), members.text);
    await Promise.all([gm.close(), gx.close(), gy.close()]);
  });

  test('muc#admin lists a room\'s members or owner to its members', async () => {
    const gx = await xmppLogin(s.cv.port, 'gx');
    const gy = await xmppLogin(s.cv.port, 'gy');
    const ask = (id: string, room: string, affiliation: string, type = 'get'): string =>
      `<iq type="${type}" id="${id}" to="${ROOM(room)}"><query xmlns="http://jabber.org/protocol/muc#admin"><item affiliation="${affiliation}"/></query></iq>`;
    gx.send(ask('a1', gid, 'member'));
    assert.match(await gx.expect(/id="a1"/), new RegExp(`^<iq xmlns="jabber:client" type="result" id="a1" from="${ROOM(gid)}" to="[^"]+"><query xmlns="http://jabber.org/protocol/muc#admin"><item affiliation="member" jid="demo#chat_gx@easemob.com" nick="gx"/></query></iq>$`));
    gx.send(ask('a2', gid, 'owner'));
    assert.match(await gx.expect(/id="a2"/), /<item affiliation="owner" jid="demo#chat_gm@easemob.com" nick="gm"\/>/);
    const bad: [string, RegExp][] = [
      [ask('a3', gid, 'member'), /<forbidden /],
      [ask('a4', '123456789', 'member'), /<item-not-found /],
      [ask('a5', gid, 'admin'), /<bad-request /],
      [ask('a6', gid, 'member', 'set'), /<not-allowed /],
    ];
    for (const [stanza, answer] of bad) {
      gy.send(stanza);
      const id = /id="(a\d)"/.exec(stanza)![1]!;
      const got = await gy.expect(new RegExp(`id="${id}"`));
      assert.match(got, /type="error"/);
      assert.match(got, answer);
    }
    await Promise.all([gx.close(), gy.close()]);
  });

  test('disco#items on the conference service lists the user\'s groups', async () => {
    const gx = await xmppLogin(s.cv.port, 'gx');
    gx.send('<iq type="get" id="d1" to="conference.easemob.com"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>');
    assert.match(await gx.expect(/id="d1"/), new RegExp(`^<iq xmlns="jabber:client" type="result" id="d1" from="conference.easemob.com" to="[^"]+"><query xmlns="http://jabber.org/protocol/disco#items"><item jid="${ROOM(gid)}" name="Team &lt;1&gt;"/></query></iq>$`));
    const gy = await xmppLogin(s.cv.port, 'gy');
    gy.send('<iq type="get" id="d2" to="conference.easemob.com"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>');
    assert.match(await gy.expect(/id="d2"/), /<query xmlns="http:\/\/jabber.org\/protocol\/disco#items"\/>/);
    // Elsewhere: not served.
    gy.send('<iq type="get" id="d3" to="easemob.com"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>');
    assert.match(await gy.expect(/id="d3"/), /type="error".*<service-unavailable /);
    await Promise.all([gx.close(), gy.close()]);
  });

  test('joining a chat room makes a member (up to maxusers), its stanzas carry roomtype, leaving ends it', async () => {
    const gx = await xmppLogin(s.cv.port, 'gx');
    const gy = await xmppLogin(s.cv.port, 'gy');
    const gz = await xmppLogin(s.cv.port, 'gz');
    // As web 1.4.x joins: a muc#user x and the roomtype.
    const join = (who: string, id: string): string => `<presence to="${ROOM(rid)}/${who}" id="${id}"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="member" role="participant"/></x>${CHATROOM}</presence>`;
    gx.send(join('gx', 'c1'));
    // No status code: web 1.4.x reports joinChatRoomSuccess only then.
    assert.match(await gx.expect(/id="c1"/), new RegExp(`^<presence xmlns="jabber:client" from="${ROOM(rid)}/gx" to="[^"]+" id="c1"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="member" role="participant"/></x>${CHATROOM}</presence>$`));
    gy.send(join('gy', 'c2'));
    await gy.expect(/id="c2"/);
    assert.deepEqual((await roomMembers(rid)).sort(), ['gm', 'gx', 'gy']);
    // Joining again changes nothing.
    gy.send(join('gy', 'c3'));
    assert.match(await gy.expect(/id="c3"/), /affiliation="member"/);

    // Full (maxusers 3): the error code web 1.4.x reads as reachChatRoomCapacity.
    gz.send(join('gz', 'c4'));
    assert.match(await gz.expect(/id="c4"/), /type="error".*<error type="cancel" code="406"><not-acceptable /);
    assert.deepEqual((await roomMembers(rid)).sort(), ['gm', 'gx', 'gy']);

    gy.send(`<message type="groupchat" to="${ROOM(rid)}" id="m1"><body>{"bodies":[{"type":"txt","msg":"hi room"}]}</body>${CHATROOM}</message>`);
    const mid = ackMid(await gy.expect(/urn:xmpp:receipts/));
    assert.match(await gx.expect(new RegExp(`id="${mid}"`)), new RegExp(`from="${ROOM(rid)}/gy".*${CHATROOM}`));

    gy.send(`<presence to="${ROOM(rid)}/gy" type="unavailable" id="c5"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="none"/></x>${CHATROOM}</presence>`);
    assert.match(await gy.expect(/id="c5"/), new RegExp(`type="unavailable".*<item affiliation="none" role="none"/><status code="110"/></x>${CHATROOM}`));
    assert.deepEqual((await roomMembers(rid)).sort(), ['gm', 'gx']);
    // Now there is room.
    gz.send(join('gz', 'c6'));
    assert.match(await gz.expect(/id="c6"/), /affiliation="member"/);
    // A chat room that does not exist.
    gz.send(`<presence to="${ROOM('999')}/gz" id="c7">${CHATROOM}</presence>`);
    assert.match(await gz.expect(/id="c7"/), /<item-not-found /);
    await Promise.all([gx.close(), gy.close(), gz.close()]);
  });
});
