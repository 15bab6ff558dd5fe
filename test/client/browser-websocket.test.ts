import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { createRequire } from 'node:module';
import { ChatClient, type ChatMessage, type WebSocketConstructor } from 'chatvault/client';
import { Api, demoToken, startTestServer, type TestServer } from '../helpers.js';

// The browser path: no WebSocket option, the global WebSocket of a DOM (jsdom's, which behaves
// like a browser's: EventTarget events, string data), no Node module in sight of the client.

// Loaded untyped: jsdom's types bring the DOM library into the whole test build.
interface Dom {
  window: { WebSocket: unknown; close(): void };
}
const { JSDOM } = createRequire(import.meta.url)('jsdom') as { JSDOM: new (html: string, opts: { url: string }) => Dom };

let s: TestServer;
let dom: Dom;

before(async () => {
  s = await startTestServer();
  const api = new Api(s.url, await demoToken(s));
  for (const username of ['ann', 'ben']) assert.equal((await api.post('/demo/chat/users', { username, password: `${username}-pw` })).status, 200);
  dom = new JSDOM('<!doctype html>', { url: s.url });
});
after(async () => {
  dom.window.close();
  await s.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

test('the client uses the global WebSocket of a browser-like environment', async () => {
  const g = globalThis as { WebSocket?: WebSocketConstructor };
  const saved = g.WebSocket;
  g.WebSocket = dom.window.WebSocket as unknown as WebSocketConstructor;
  try {
    const url = `ws://127.0.0.1:${s.cv.port}/ws`;
    const ann = new ChatClient({ url });
    const ben = new ChatClient({ url });
    const got: ChatMessage[] = [];
    ben.on('message', (m) => got.push(m));
    await ann.login({ appkey: 'demo#chat', username: 'ann', password: 'ann-pw' });
    await ben.login({ appkey: 'demo#chat', username: 'ben', password: 'ben-pw' });
    const ack = await ann.sendText('ben', 'from a browser');
    for (let i = 0; i < 300 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(got[0]?.msg_id, ack.msg_id);
    assert.equal(got[0]?.payload.bodies[0]?.msg, 'from a browser');
    ann.close();
    ben.close();
  } finally {
    g.WebSocket = saved;
  }
});

test('without any WebSocket the client says what to pass', () => {
  const g = globalThis as { WebSocket?: WebSocketConstructor };
  const saved = g.WebSocket;
  delete g.WebSocket;
  try {
    assert.throws(() => new ChatClient({ url: 'ws://x/ws' }), /pass one as the WebSocket option/);
  } finally {
    if (saved) g.WebSocket = saved;
  }
});
