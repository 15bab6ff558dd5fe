import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { ChatClient, type ChatMessage } from 'chatvault/client';
import { Api, demoToken, startTestServer, type TestServer } from '../helpers.js';

// One user on the XMPP dialect (a raw RFC 7395 client, as the Easemob web SDK speaks it), one on
// the JSON protocol (the shipped client), chatting on the same /ws endpoint.

let s: TestServer;
let api: Api;
const APPKEY = 'demo#chat';
const OPEN = '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="easemob.com" version="1.0"/>';

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  for (const username of ['xena', 'jay', 'kim']) {
    const r = await api.post('/demo/chat/users', { username, password: `${username}-pw` });
    assert.equal(r.status, 200, r.text);
  }
});
after(async () => {
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

class Xmpp {
  readonly frames: string[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => this.frames.push(String(d)));
  }

  static async login(user: string): Promise<Xmpp> {
    const ws = new WebSocket(`ws://127.0.0.1:${s.cv.port}/ws/`, 'xmpp');
    await new Promise((ok, fail) => {
      ws.once('open', ok);
      ws.once('error', fail);
    });
    const c = new Xmpp(ws);
    c.ws.send(OPEN);
    await c.expect(/stream:features/);
    const plain = Buffer.from(`${APPKEY}_${user}@easemob.com\0${APPKEY}_${user}\0${user}-pw`).toString('base64');
    c.ws.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${plain}</auth>`);
    await c.expect(/<success /);
    c.ws.send(OPEN);
    await c.expect(/stream:features/);
    c.ws.send('<iq type="set" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>webim</resource></bind></iq>');
    await c.expect(/id="b1"/);
    // The initial presence opens delivery (the Easemob server's gate).
    c.ws.send('<presence xmlns="jabber:client"/>');
    return c;
  }

  async expect(pattern: RegExp, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex((f) => pattern.test(f));
      if (i >= 0) return this.frames.splice(0, i + 1)[i]!;
      if (Date.now() > deadline) throw new Error(`timeout waiting for ${pattern}; got ${JSON.stringify(this.frames)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Sends a message the way the web SDK does; resolves with the server's msg_id (ack `mid`). */
  async say(to: string, kind: 'chat' | 'groupchat' | 'chatroom', id: string, text: string): Promise<string> {
    const body = JSON.stringify({ from: 'ignored', to, bodies: [{ type: 'txt', msg: text }], ext: {} }).replace(/&/g, '&amp;').replace(/</g, '&lt;');
    const jid = kind === 'chat' ? `${APPKEY}_${to}@easemob.com` : `${APPKEY}_${to}@conference.easemob.com`;
    const room = kind === 'chatroom' ? '<roomtype xmlns="easemob:x:roomtype" type="chatroom"/>' : '';
    this.ws.send(`<message type="${kind === 'chat' ? 'chat' : 'groupchat'}" to="${jid}" id="${id}"><body>${body}</body>${room}</message>`);
    const ack = await this.expect(new RegExp(`<received xmlns="urn:xmpp:receipts" mid="\\d+">${id}<`));
    return /mid="(\d+)"/.exec(ack)![1]!;
  }
}

async function jsonUser(user: string): Promise<{ c: ChatClient; got: ChatMessage[] }> {
  const c = new ChatClient({ url: `ws://127.0.0.1:${s.cv.port}/ws`, WebSocket });
  const got: ChatMessage[] = [];
  c.on('message', (m) => got.push(m));
  await c.login({ appkey: APPKEY, username: user, password: `${user}-pw` });
  return { c, got };
}

async function arrived(got: ChatMessage[], msgId: string): Promise<ChatMessage> {
  for (let i = 0; i < 500; i++) {
    const m = got.find((x) => x.msg_id === msgId);
    if (m) return m;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`message ${msgId} did not arrive; got ${JSON.stringify(got.map((m) => m.msg_id))}`);
}

/** The JSON body of an XMPP message stanza carrying this msg_id. */
async function stanzaBody(x: Xmpp, msgId: string): Promise<{ stanza: string; body: { bodies: { msg: string }[]; from: string; to: string } }> {
  const stanza = await x.expect(new RegExp(`<message [^>]*id="${msgId}"`));
  const raw = /<body>(.*)<\/body>/.exec(stanza)![1]!.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  return { stanza, body: JSON.parse(raw) };
}

describe('XMPP and JSON users chat with each other', () => {
  test('one-to-one, both ways', async () => {
    const xena = await Xmpp.login('xena');
    const jay = await jsonUser('jay');
    const mid = await xena.say('jay', 'chat', 'X1', 'from xmpp <to> json');
    const m = await arrived(jay.got, mid);
    assert.equal(m.from, 'xena');
    assert.equal(m.chat_type, 'chat');
    assert.equal(m.payload.bodies[0]!.msg, 'from xmpp <to> json');

    const ack = await jay.c.sendText('xena', 'from json & back');
    const { stanza, body } = await stanzaBody(xena, ack.msg_id);
    assert.match(stanza, /type="chat"/);
    assert.match(stanza, new RegExp(`from="${APPKEY}_jay@easemob.com"`));
    assert.equal(body.bodies[0]!.msg, 'from json & back');
    xena.ws.close();
    jay.c.close();
  });

  test('a group: each side gets the other\'s messages', async () => {
    const g = await api.post('/demo/chat/chatgroups', { groupname: 'mixed', desc: 'd', owner: 'xena', members: ['jay', 'kim'], public: true, maxusers: 10 });
    assert.equal(g.status, 200, g.text);
    const gid = String(g.body.data.groupid);
    const xena = await Xmpp.login('xena');
    const jay = await jsonUser('jay');
    const kim = await jsonUser('kim');
    const mid = await xena.say(gid, 'groupchat', 'G1', 'hello group');
    const [mj, mk] = await Promise.all([arrived(jay.got, mid), arrived(kim.got, mid)]);
    assert.equal(mj.chat_type, 'groupchat');
    assert.equal(mj.to, gid);
    assert.equal(mk.from, 'xena');

    const ack = await jay.c.send({ target_type: 'chatgroups', target: gid, msg: { type: 'txt', msg: 'hi from json' } });
    const { stanza, body } = await stanzaBody(xena, ack.msg_id);
    assert.match(stanza, /type="groupchat"/);
    assert.match(stanza, new RegExp(`from="${APPKEY}_${gid}@conference.easemob.com/jay"`));
    assert.equal(body.bodies[0]!.msg, 'hi from json');
    assert.equal((await arrived(kim.got, ack.msg_id)).from, 'jay');
    xena.ws.close();
    jay.c.close();
    kim.c.close();
  });

  test('a chat room: each side gets the other\'s messages', async () => {
    const r = await api.post('/demo/chat/chatrooms', { name: 'lobby', description: 'd', owner: 'xena', members: ['jay'] });
    assert.equal(r.status, 200, r.text);
    const rid = String(r.body.data.id);
    const xena = await Xmpp.login('xena');
    const jay = await jsonUser('jay');
    const mid = await xena.say(rid, 'chatroom', 'R1', 'hello room');
    const m = await arrived(jay.got, mid);
    assert.equal(m.chat_type, 'chatroom');
    assert.equal(m.to, rid);

    const ack = await jay.c.send({ target_type: 'chatrooms', target: rid, msg: { type: 'txt', msg: 'room reply' } });
    const { stanza, body } = await stanzaBody(xena, ack.msg_id);
    assert.match(stanza, /<roomtype xmlns="easemob:x:roomtype" type="chatroom"\/>/);
    assert.equal(body.bodies[0]!.msg, 'room reply');
    xena.ws.close();
    jay.c.close();
  });
});

describe('receipts and presence between the protocols', () => {
  test('delivered and read receipts both ways; presence of contacts both ways', async () => {
    assert.equal((await api.post('/demo/chat/users/xena/contacts/users/jay')).status, 200);
    const xena = await Xmpp.login('xena');
    const jay = await jsonUser('jay');
    const presences: { from: string; presence: string }[] = [];
    jay.c.on('presence', (p) => presences.push(p));
    const receipts: { receipt: string; msg_id: string; from: string }[] = [];
    jay.c.on('receipt', (r) => receipts.push(r));

    // JSON → XMPP: jay's client acks by itself, then marks read; xena gets <delivery> and <acked>.
    const mid = await xena.say('jay', 'chat', 'RC1', 'receipt me');
    await arrived(jay.got, mid);
    assert.match(await xena.expect(new RegExp(`<delivery xmlns="urn:xmpp:receipts" id="${mid}"`)), new RegExp(`from="${APPKEY}_jay@easemob.com`));
    jay.c.markRead(mid);
    await xena.expect(new RegExp(`<acked xmlns="urn:xmpp:receipts" id="${mid}"`));

    // XMPP → JSON: xena acks (B), then sends delivery (C) and read (D) receipts to jay.
    const ack = await jay.c.sendText('xena', 'receipt me too');
    await stanzaBody(xena, ack.msg_id);
    const to = `${APPKEY}_jay@easemob.com`;
    xena.ws.send(`<message to="easemob.com" id="${ack.msg_id}"><received xmlns="urn:xmpp:receipts" id="${ack.msg_id}"/></message>`);
    xena.ws.send(`<message to="${to}" id="d1"><delivery xmlns="urn:xmpp:receipts" id="${ack.msg_id}"/></message>`);
    xena.ws.send(`<message to="${to}" id="d2"><acked xmlns="urn:xmpp:receipts" id="${ack.msg_id}"/></message>`);
    for (let i = 0; i < 300 && receipts.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(receipts, [{ receipt: 'delivered', msg_id: ack.msg_id, from: 'xena' }, { receipt: 'read', msg_id: ack.msg_id, from: 'xena' }]);

    // Presence: xena's status reaches jay; jay's reaches xena.
    xena.ws.send('<presence xmlns="jabber:client"><status>busy</status></presence>');
    for (let i = 0; i < 300 && !presences.some((p) => p.from === 'xena'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(presences.some((p) => p.from === 'xena' && p.presence === 'available'), JSON.stringify(presences));
    jay.c.setPresence('available', 'on the train');
    assert.match(await xena.expect(/<presence [^>]*from="demo#chat_jay@easemob.com/), /on the train/);
    xena.ws.close();
    jay.c.close();
  });
});
