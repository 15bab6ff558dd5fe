import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, afterEach, before, describe, test } from 'node:test';
import { Api, demoToken, req, startTestServer, type TestServer } from '../../helpers.js';
import { SDK_CODE, SDK_VERSIONS, type SdkTextMessage, type SdkVersion } from './websdk-api.js';
import { eventually, WebSdkClient, type Credentials } from './websdk-client.js';

/*
 * Acceptance tests with the real historical web SDK (issue 7): each scenario runs for every SDK
 * version against one real server on a real port, every user in a jsdom window of its own.
 */

const APPKEY = 'demo#chat';
let s: TestServer;
let api: Api;
// Every window a test opened; closed after each test, whatever the outcome.
let clients: WebSdkClient[] = [];

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
});
afterEach(() => {
  for (const c of clients) c.dispose();
  clients = [];
});
after(async () => {
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

/** Creates users unique to one version and scenario (`v1415-live-alice`…), each with password `{name}-pw`. */
async function makeUsers<K extends string>(version: SdkVersion, scenario: string, names: readonly K[]): Promise<Record<K, string>> {
  const out = {} as Record<K, string>;
  for (const n of names) {
    const username = `v${version.replace(/\./g, '')}-${scenario}-${n}`;
    const r = await api.post('/demo/chat/users', { username, password: `${username}-pw` });
    assert.equal(r.status, 200, r.text);
    out[n] = username;
  }
  return out;
}

function client(version: SdkVersion): WebSdkClient {
  const c = new WebSdkClient({ version, restUrl: s.url, appKey: APPKEY });
  clients.push(c);
  return c;
}

async function userToken(username: string): Promise<string> {
  const r = await req(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'password', username, password: `${username}-pw` });
  assert.equal(r.status, 200, r.text);
  return r.body.access_token as string;
}

/** A logged-in client (by password unless told otherwise). */
async function online(version: SdkVersion, username: string, how: 'password' | 'token' = 'password'): Promise<WebSdkClient> {
  const c = client(version);
  const creds: Credentials = how === 'token' ? { user: username, token: await userToken(username) } : { user: username, password: `${username}-pw` };
  await c.login(creds);
  return c;
}

async function status(username: string): Promise<string> {
  const r = await api.get(`/demo/chat/users/${username}/status`);
  assert.equal(r.status, 200, r.text);
  return r.body.data[username] as string;
}

async function statusBecomes(username: string, want: 'online' | 'offline', c?: WebSdkClient): Promise<void> {
  let last = '';
  await eventually(`status of ${username} to be ${want}`, async () => {
    last = await status(username);
    return last === want ? true : undefined;
  }, () => `last status: ${last}${c ? `\n${c.transcript()}` : ''}`);
}

/** The stored record of a message, waiting for it to be exported. */
async function exported(msgId: string): Promise<{ msg_id: string; from: string; to: string; chat_type: string; timestamp: number; payload: { bodies: { type: string; msg?: string }[] } }> {
  type Entity = Awaited<ReturnType<typeof exported>>;
  return eventually(`msg_id ${msgId} in chatmessages`, async () => {
    const r = await api.get(`/demo/chat/chatmessages?ql=${encodeURIComponent(`select * where msg_id = '${msgId}'`)}`);
    assert.equal(r.status, 200, r.text);
    return (r.body.entities as Entity[]).find((e) => e.msg_id === msgId);
  });
}

/** The PLAIN password the SDK put in its `<auth>` (spec §4.3). */
function saslPassword(c: WebSdkClient): string {
  const auth = c.frames.find((f) => f.dir === 'out' && f.data.startsWith('<auth '));
  assert.ok(auth, `no <auth> frame\n${c.transcript()}`);
  const b64 = />([^<]*)<\/auth>/.exec(auth.data)?.[1] ?? '';
  return Buffer.from(b64, 'base64').toString('utf8').split('\0')[2] ?? '';
}

const isText = (text: string) => (m: SdkTextMessage) => m.data === text;

for (const version of SDK_VERSIONS) {
  describe(`easemob-websdk ${version}`, () => {
    test('1. logs in by token and by password (the SDK first fetches a token over REST)', async () => {
      const u = await makeUsers(version, 'login', ['tok', 'pwd']);
      const token = await userToken(u.tok);
      const byToken = client(version);
      await byToken.login({ user: u.tok, token });
      assert.equal(byToken.isOpened(), true);
      assert.equal(saslPassword(byToken), `$t$${token}`);
      const bind = byToken.frames.find((f) => f.dir === 'in' && f.data.includes('<jid>'));
      assert.match(bind?.data ?? '', new RegExp(`<jid>demo#chat_${u.tok}@easemob.com/webim</jid>`), byToken.transcript());

      const byPassword = client(version);
      await byPassword.login({ user: u.pwd, password: `${u.pwd}-pw` });
      assert.equal(byPassword.isOpened(), true);
      assert.deepEqual(byToken.requests, [], 'a token login makes no REST call');
      assert.equal(byPassword.requests.length, 1, byPassword.transcript());
      const tokenCall = byPassword.requests[0]!;
      assert.deepEqual([tokenCall.method, tokenCall.url], ['POST', `${s.url}/demo/chat/token`]);
      const sentBody = JSON.parse(tokenCall.body ?? '{}') as Record<string, unknown>;
      assert.deepEqual({ ...sentBody, timestamp: undefined }, { grant_type: 'password', username: u.pwd, password: `${u.pwd}-pw`, timestamp: undefined });
      assert.equal(typeof sentBody.timestamp, 'number', 'the 1.4.x SDKs add a timestamp the server must ignore');
      // The stream password is `$t$` + the token the SDK's REST call got: a working user token.
      const fetched = saslPassword(byPassword);
      assert.match(fetched, /^\$t\$./, byPassword.transcript());
      const me = await new Api(s.url, fetched.slice(3)).get(`/demo/chat/users/${u.pwd}`);
      assert.equal(me.status, 200, me.text);
      assert.deepEqual(byToken.errors, []);
      assert.deepEqual(byPassword.errors, []);
      await byToken.close();
      await byPassword.close();
    });

    test('2. two SDK users exchange messages live', async () => {
      const u = await makeUsers(version, 'live', ['alice', 'bob']);
      const alice = await online(version, u.alice, 'token');
      const bob = await online(version, u.bob);
      const text = `hello <bob> & "co" ${version} 你好`;
      const ack = await alice.sendText({ user: u.bob }, text);
      assert.match(ack.mid, /^\d+$/);
      const got = await bob.waitForText(isText(text));
      assert.deepEqual({ id: got.id, type: got.type, from: got.from, to: got.to, delay: got.delay }, { id: ack.mid, type: 'chat', from: u.alice, to: u.bob, delay: undefined });
      assert.deepEqual(got.ext, { weichat: { originType: 'webim' } }, 'ext passes through');

      const back = await bob.sendText({ user: u.alice }, 'and back');
      const reply = await alice.waitForText(isText('and back'));
      assert.equal(reply.id, back.mid);
      assert.equal(reply.from, u.bob);
      await alice.close();
      await bob.close();
    });

    test('3. messages sent while the receiver was offline arrive after login, in order, with their delay stamps', async () => {
      const u = await makeUsers(version, 'offline', ['alice', 'bob']);
      const sent = await api.post('/demo/chat/messages?useMsgId=true', { target_type: 'users', target: [u.bob], msg: { type: 'txt', msg: 'while you were away' }, from: u.alice });
      assert.equal(sent.status, 200, sent.text);
      const msgId = sent.body.data[u.bob] as string;
      const stored = await exported(msgId);
      // A socket send to an offline user waits the same way.
      const alice = await online(version, u.alice);
      const bySdk = await alice.sendText({ user: u.bob }, 'also while away');

      const bob = await online(version, u.bob);
      const got = await bob.waitForText(isText('while you were away'), 'the offline message sent by REST');
      assert.deepEqual({ id: got.id, type: got.type, from: got.from, to: got.to }, { id: msgId, type: 'chat', from: u.alice, to: u.bob });
      assert.ok(got.delay, `no delay on the offline message\n${bob.transcript()}`);
      // XEP-0082 stamps may drop the milliseconds: the same second as the stored timestamp.
      assert.equal(Math.floor(Date.parse(got.delay) / 1000), Math.floor(stored.timestamp / 1000), `delay ${got.delay} vs timestamp ${stored.timestamp}`);
      const second = await bob.waitForText(isText('also while away'), 'the offline message sent by the SDK');
      assert.equal(second.id, bySdk.mid);
      assert.ok(second.delay, `no delay on the offline message\n${bob.transcript()}`);
      assert.ok(bob.texts.indexOf(got) < bob.texts.indexOf(second), 'replayed oldest first');

      // A live message after them: each offline one came exactly once, and the live one has no delay.
      const live = await alice.sendText({ user: u.bob }, 'now live');
      const liveGot = await bob.waitForText(isText('now live'));
      assert.equal(liveGot.id, live.mid);
      assert.equal(liveGot.delay, undefined);
      assert.deepEqual(bob.texts.map((t) => t.data), ['while you were away', 'also while away', 'now live'], bob.transcript());
      await alice.close();
      await bob.close();
    });

    test('4. the server ack\'s mid is the msg_id chatmessages returns', async () => {
      const u = await makeUsers(version, 'ack', ['alice', 'bob']);
      const alice = await online(version, u.alice);
      const text = `ack me ${version}`;
      const ack = await alice.sendText({ user: u.bob }, text);
      // onReceivedMessage reported the same ack.
      const seen = await eventually('onReceivedMessage', () => alice.acks.find((a) => a.id === ack.id), () => alice.transcript());
      assert.equal(seen.mid, ack.mid);
      const stored = await exported(ack.mid);
      assert.equal(stored.from, u.alice);
      assert.equal(stored.to, u.bob);
      assert.equal(stored.chat_type, 'chat');
      assert.equal(stored.payload.bodies[0]?.msg, text);
      await alice.close();
    });

    test('5. users/{u}/status is online while connected and offline after close', async () => {
      const u = await makeUsers(version, 'status', ['carol']);
      assert.equal(await status(u.carol), 'offline');
      const carol = await online(version, u.carol);
      await statusBecomes(u.carol, 'online', carol);
      await carol.close();
      assert.equal(carol.closed, 1);
      await statusBecomes(u.carol, 'offline', carol);
    });

    test('6. a group message reaches every member', async () => {
      const u = await makeUsers(version, 'group', ['owner', 'm1', 'm2']);
      const g = await api.post('/demo/chat/chatgroups', { groupname: `g${version}`, desc: 'sdk', public: true, maxusers: 10, owner: u.owner, members: [u.m1, u.m2] });
      assert.equal(g.status, 200, g.text);
      const gid = g.body.data.groupid as string;
      const [owner, m1, m2] = await Promise.all([online(version, u.owner), online(version, u.m1), online(version, u.m2)]);

      const ack = await owner.sendText({ group: gid }, 'to all members');
      for (const m of [m1, m2]) {
        const got = await m.waitForText(isText('to all members'));
        assert.deepEqual({ id: got.id, type: got.type, from: got.from, to: got.to }, { id: ack.mid, type: 'groupchat', from: u.owner, to: gid });
      }
      assert.equal((await exported(ack.mid)).chat_type, 'groupchat');

      // A member speaks too; the sender gets no copy of its own message.
      const reply = await m1.sendText({ group: gid }, 'member reply');
      for (const m of [owner, m2]) assert.equal((await m.waitForText(isText('member reply'))).id, reply.mid);
      // Delivery keeps each sender's order, so once m2's later message is in, any copy would be too.
      await m2.sendText({ group: gid }, 'sentinel');
      await m1.waitForText(isText('sentinel'));
      assert.equal(m1.texts.filter(isText('member reply')).length, 0, m1.transcript());
      await Promise.all([owner.close(), m1.close(), m2.close()]);
    });

    test('6b. a chat room message reaches the room\'s members, marked chatroom', async () => {
      const u = await makeUsers(version, 'room', ['owner', 'm1']);
      const r = await api.post('/demo/chat/chatrooms', { name: `r${version}`, description: 'sdk', maxusers: 10, owner: u.owner, members: [u.m1] });
      assert.equal(r.status, 200, r.text);
      const rid = r.body.data.id as string;
      const [owner, m1] = await Promise.all([online(version, u.owner), online(version, u.m1)]);
      const ack = await owner.sendText({ chatroom: rid }, 'to the room');
      const got = await m1.waitForText(isText('to the room'));
      assert.deepEqual({ id: got.id, type: got.type, from: got.from, to: got.to }, { id: ack.mid, type: 'chatroom', from: u.owner, to: rid });
      assert.equal((await exported(ack.mid)).chat_type, 'chatroom');
      await Promise.all([owner.close(), m1.close()]);
    });

    test('6c. a refused send reaches the app as an error text with the code and reason', async () => {
      const u = await makeUsers(version, 'refused', ['owner', 'outsider']);
      const g = await api.post('/demo/chat/chatgroups', { groupname: `x${version}`, desc: 'sdk', public: true, maxusers: 10, owner: u.owner });
      assert.equal(g.status, 200, g.text);
      const gid = g.body.data.groupid as string;
      const outsider = await online(version, u.outsider);
      outsider.sendTextRefused({ group: gid }, 'not a member');
      // 1.4.15 gets the refused message back with the error and hands it to the app; 1.4.6 (which
      // cannot take that form) gets the error alone, and its send fails on its own timer.
      const refusal = version === '1.4.15'
        ? /<message [^>]*type="error"><body>[^<]*not a member[^<]*<\/body><error type="cancel" code="403">/
        : /<message [^>]*type="error"><error type="cancel" code="403">/;
      await eventually('the error stanza', () => (outsider.frames.some((f) => f.dir === 'in' && refusal.test(f.data)) ? true : undefined), () => outsider.transcript());
      if (version === '1.4.15') {
        const got = await outsider.waitForText((m) => m.error && m.data === 'not a member', 'the refusal');
        assert.equal(got.errorCode, '403');
        assert.match(got.errorText, /member/);
        assert.equal(outsider.presences.filter((p) => p.type === 'error').length, 0, 'not mistaken for a presence');
      }
      // The stream stays up: a good send after the refused one is acked.
      assert.match((await outsider.sendText({ user: u.owner }, 'still here')).mid, /^\d+$/);
      await outsider.close();
    });

    test('7a. a second login with the same resource replaces the first with conflict', async () => {
      const u = await makeUsers(version, 'replace', ['twice']);
      const first = await online(version, u.twice);
      const second = await online(version, u.twice);
      const conflict = await first.waitForError((e) => e.conflict === true, 'an error with conflict');
      assert.equal(conflict.type, SDK_CODE.SERVER_ERROR);
      await first.waitForClosed();
      assert.equal(first.isOpened(), false);
      assert.ok(first.frames.some((f) => f.dir === 'in' && f.data.includes('<conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>')), first.transcript());
      // The new session is the live one.
      const sent = await api.post('/demo/chat/messages?useMsgId=true', { target_type: 'users', target: [u.twice], msg: { type: 'txt', msg: 'to the new tab' } });
      assert.equal(sent.status, 200, sent.text);
      assert.equal((await second.waitForText(isText('to the new tab'))).id, sent.body.data[u.twice]);
      assert.equal(second.isOpened(), true);
      assert.deepEqual(second.errors, []);
      assert.equal(first.texts.length, 0);
      await second.close();
    });

    test('7. a kicked (users/{u}/disconnect) or deactivated user is disconnected with conflict', async () => {
      const u = await makeUsers(version, 'kick', ['kicked', 'gone', 'stays']);
      const stays = await online(version, u.stays);
      for (const [who, action] of [[u.kicked, () => api.get(`/demo/chat/users/${u.kicked}/disconnect`)], [u.gone, () => api.post(`/demo/chat/users/${u.gone}/deactivate`)]] as const) {
        const c = await online(version, who);
        const r = await action();
        assert.equal(r.status, 200, r.text);
        await c.waitForError((e) => e.conflict === true, 'an error with conflict');
        await c.waitForClosed();
        assert.equal(c.isOpened(), false);
        await statusBecomes(who, 'offline', c);
      }
      // A deactivated user cannot come back.
      const again = client(version);
      const outcome = await again.open({ user: u.gone, password: `${u.gone}-pw` });
      assert.equal(outcome.ok, false, again.transcript());
      // The other user noticed nothing.
      assert.equal(stays.isOpened(), true);
      assert.deepEqual(stays.errors, []);
      await stays.close();
    });

    test('8. a wrong token fails with the SDK\'s auth error, a wrong password with its open error; another user stays connected', async () => {
      const u = await makeUsers(version, 'badlogin', ['victim', 'bystander']);
      const bystander = await online(version, u.bystander);

      const badToken = client(version);
      const t = await badToken.open({ user: u.victim, token: 'YWMtbm90LWEtcmVhbC10b2tlbg' });
      assert.equal(t.ok, false);
      assert.equal(!t.ok && t.error.type, SDK_CODE.AUTH_ERROR, badToken.transcript());
      assert.equal(badToken.isOpened(), false);
      assert.ok(badToken.frames.some((f) => f.dir === 'in' && /<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/><\/failure>/.test(f.data)), badToken.transcript());

      // With a password the SDK asks REST for a token first; REST refuses, so no socket is opened.
      const badPassword = client(version);
      const p = await badPassword.open({ user: u.victim, password: 'not-the-password' });
      assert.equal(p.ok, false);
      assert.equal(!p.ok && p.error.type, SDK_CODE.OPEN_ERROR, badPassword.transcript());
      assert.equal(badPassword.frames.length, 0, badPassword.transcript());
      assert.match(JSON.stringify(!p.ok && p.error.data), /invalid_grant/);

      // The bystander still receives.
      const sent = await api.post('/demo/chat/messages?useMsgId=true', { target_type: 'users', target: [u.bystander], msg: { type: 'txt', msg: 'still here?' }, from: u.victim });
      assert.equal(sent.status, 200, sent.text);
      const got = await bystander.waitForText(isText('still here?'));
      assert.equal(got.id, sent.body.data[u.bystander]);
      assert.equal(bystander.isOpened(), true);
      assert.deepEqual(bystander.errors, []);
      await bystander.close();
    });
  });
}
