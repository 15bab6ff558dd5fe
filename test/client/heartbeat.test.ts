import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { ChatClient, type ConnectionState } from 'chatvault/client';

// A connection that goes silent without closing (a dead network path, a frozen server): the
// client must notice by its heartbeats and replace the connection by itself.

test('a silent connection is replaced after two heartbeats without an answer', { timeout: 20000 }, async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'chatvault.v1' });
  await new Promise((r) => wss.once('listening', r));
  const port = (wss.address() as { port: number }).port;
  let connections = 0;
  const pings: number[] = [];
  wss.on('connection', (ws: WebSocket) => {
    const n = ++connections;
    ws.on('message', (d) => {
      const f = JSON.parse(String(d)) as { op: string; after?: string };
      if (f.op === 'auth') ws.send(JSON.stringify({ op: 'welcome', user: 'u', appkey: 'o#a', resource: 'r', after: f.after ?? '5', heartbeat: 1000, max_frame: 65536 }));
      // The first connection hears the pings and never answers.
      if (f.op === 'ping') {
        pings.push(n);
        if (n > 1) ws.send(JSON.stringify({ op: 'pong' }));
      }
    });
  });
  const c = new ChatClient({ url: `ws://127.0.0.1:${port}/ws`, WebSocket, reconnect: { minDelayMs: 10, maxDelayMs: 50 } });
  const states: ConnectionState[] = [];
  c.on('state', (st) => states.push(st));
  try {
    await c.login({ token: 't' });
    assert.equal(c.position, '5', 'the start the server chose is kept for the next connection');
    const deadline = Date.now() + 10000;
    while (connections < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(connections, 2, 'a second connection after the first went silent');
    assert.ok(pings.includes(1), 'the client pinged the silent connection');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(states, ['connecting', 'online', 'offline', 'connecting', 'online']);
  } finally {
    c.close();
    for (const ws of wss.clients) ws.terminate();
    await new Promise((r) => wss.close(r));
  }
});
