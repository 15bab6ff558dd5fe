import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, afterEach, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { ChatClient, type ChatMessage } from 'chatvault/client';
import { Api, demoToken, startTestServer, type TestServer } from '../../helpers.js';
import { SDK_VERSIONS, type SdkTextMessage, type SdkVersion } from './websdk-api.js';
import { eventually, WebSdkClient } from './websdk-client.js';

/*
 * Issue 8's interoperability with the real historical web SDK on the other side: a user of the
 * Easemob SDK (XMPP over WebSocket, in jsdom) and a user of `chatvault/client` (the JSON
 * protocol) chat one-to-one, in a group and in a chat room, for every SDK version.
 */

let s: TestServer;
let api: Api;
let sdks: WebSdkClient[] = [];
let jsons: ChatClient[] = [];

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
});
afterEach(() => {
  for (const c of sdks) c.dispose();
  for (const c of jsons) c.close();
  sdks = [];
  jsons = [];
});
after(async () => {
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

/** An SDK user and a JSON-protocol user, both logged in, unique to the version and scenario. */
async function pair(version: SdkVersion, scenario: string): Promise<{ sdkUser: string; jsonUser: string; sdk: WebSdkClient; json: ChatClient; got: ChatMessage[] }> {
  const sdkUser = `j${version.replace(/\./g, '')}-${scenario}-sdk`;
  const jsonUser = `j${version.replace(/\./g, '')}-${scenario}-json`;
  for (const username of [sdkUser, jsonUser]) {
    const r = await api.post('/demo/chat/users', { username, password: `${username}-pw` });
    assert.equal(r.status, 200, r.text);
  }
  const sdk = new WebSdkClient({ version, restUrl: s.url, appKey: 'demo#chat' });
  sdks.push(sdk);
  await sdk.login({ user: sdkUser, password: `${sdkUser}-pw` });
  const json = new ChatClient({ url: `ws://127.0.0.1:${s.cv.port}/ws`, WebSocket });
  jsons.push(json);
  const got: ChatMessage[] = [];
  json.on('message', (m) => void got.push(m));
  await json.login({ appkey: 'demo#chat', username: jsonUser, password: `${jsonUser}-pw` });
  return { sdkUser, jsonUser, sdk, json, got };
}

function arrived(got: ChatMessage[], text: string): Promise<ChatMessage> {
  return eventually(`"${text}" at the JSON client`, () => got.find((m) => m.payload.bodies[0]?.msg === text), () => JSON.stringify(got));
}

const isText = (text: string) => (m: SdkTextMessage) => m.data === text;

for (const version of SDK_VERSIONS) {
  describe(`easemob-websdk ${version} and chatvault/client`, () => {
    test('one-to-one, both ways: each side gets the other\'s message with the id the sender was given', async () => {
      const { sdkUser, jsonUser, sdk, json, got } = await pair(version, 'chat');
      const ack = await sdk.sendText({ user: jsonUser }, 'from the sdk');
      const m = await arrived(got, 'from the sdk');
      assert.deepEqual({ id: m.msg_id, from: m.from, to: m.to, type: m.chat_type }, { id: ack.mid, from: sdkUser, to: jsonUser, type: 'chat' });

      const sent = await json.sendText(sdkUser, 'from the json client');
      const back = await sdk.waitForText(isText('from the json client'));
      assert.deepEqual({ id: back.id, from: back.from, to: back.to, type: back.type }, { id: sent.msg_id, from: jsonUser, to: sdkUser, type: 'chat' });
      // Both are the exported records.
      const r = await api.get(`/demo/chat/chatmessages?ql=${encodeURIComponent(`select * where from = '${jsonUser}' or to = '${jsonUser}'`)}`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual((r.body.entities as { msg_id: string }[]).map((e) => e.msg_id).sort(), [ack.mid, sent.msg_id].sort());
      assert.deepEqual(sdk.errors, []);
    });

    // A group and a chat room, each made by REST with both users in it.
    const conversations = [
      { name: 'group', targetType: 'chatgroups', type: 'groupchat', create: (owner: string, member: string) => api.post('/demo/chat/chatgroups', { groupname: `jg${version}`, desc: 'interop', public: true, maxusers: 10, owner, members: [member] }), id: (b: { data: { groupid: string } }) => b.data.groupid },
      { name: 'chat room', targetType: 'chatrooms', type: 'chatroom', create: (owner: string, member: string) => api.post('/demo/chat/chatrooms', { name: `jr${version}`, description: 'interop', maxusers: 10, owner, members: [member] }), id: (b: { data: { id: string } }) => b.data.id },
    ] as const;
    for (const c of conversations) {
      test(`a ${c.name}: each side gets the other's message`, async () => {
        const { sdkUser, jsonUser, sdk, json, got } = await pair(version, c.name.replace(' ', ''));
        const r = await c.create(sdkUser, jsonUser);
        assert.equal(r.status, 200, r.text);
        const to = c.id(r.body);
        const ack = await sdk.sendText(c.targetType === 'chatgroups' ? { group: to } : { chatroom: to }, `${c.name} from the sdk`);
        const m = await arrived(got, `${c.name} from the sdk`);
        assert.deepEqual({ id: m.msg_id, from: m.from, to: m.to, type: m.chat_type }, { id: ack.mid, from: sdkUser, to, type: c.type });

        const sent = await json.send({ target_type: c.targetType, target: to, msg: { type: 'txt', msg: `${c.name} from the json client` } });
        const back = await sdk.waitForText(isText(`${c.name} from the json client`));
        assert.deepEqual({ id: back.id, from: back.from, to: back.to, type: back.type }, { id: sent.msg_id, from: jsonUser, to, type: c.type });
      });
    }
  });
}
