import WebSocket from 'ws';
import { ChatClient } from '../../src/client/index.js';
import { benchApp, call, startServer, type ScenarioResult } from '../harness.js';

const PAIRS = 128;
// One send at a time per sender, as people chat: a connection's sends are handled in order, one
// after another (so a conversation keeps its order), and throughput comes from many connections
// sharing group commits.
const WINDOW = 1;

/**
 * The JSON protocol end to end: 128 senders each chat with their own receiver over `chatvault.v1`,
 * each waiting for its ack before the next send; counts sends acknowledged (stored) and pushes received, and the
 * time from a send to the peer's push.
 */
export async function jsonWsChat(seconds: number): Promise<ScenarioResult> {
  const s = await startServer();
  const clients: ChatClient[] = [];
  try {
    const { token, base } = await benchApp(s);
    const names = Array.from({ length: PAIRS }, (_, i) => [`s${i}`, `r${i}`] as const);
    const all = names.flat();
    // The REST batch limit is 60 users.
    for (let i = 0; i < all.length; i += 60) await call(`${base}/users`, 'POST', all.slice(i, i + 60).map((username) => ({ username, password: 'bench-pw' })), token);
    const url = `ws://127.0.0.1:${s.port}/ws`;
    const latencies: number[] = [];
    let acked = 0;
    let received = 0;
    let errors = 0;
    let running = true;
    const pairs = await Promise.all(names.map(async ([sn, rn]) => {
      const sender = new ChatClient({ url, WebSocket });
      const receiver = new ChatClient({ url, WebSocket });
      clients.push(sender, receiver);
      receiver.on('message', (m) => {
        received++;
        const sent = Number((m.payload.ext as { t?: number } | undefined)?.t);
        if (Number.isFinite(sent)) latencies.push(performance.now() - sent);
      });
      await sender.login({ appkey: 'bench#app', username: sn, password: 'bench-pw' });
      await receiver.login({ appkey: 'bench#app', username: rn, password: 'bench-pw' });
      return { sender, to: rn };
    }));
    const started = performance.now();
    await Promise.all(pairs.flatMap(({ sender, to }) => Array.from({ length: WINDOW }, async () => {
      while (running) {
        try {
          await sender.send({ target: to, msg: { type: 'txt', msg: 'hello there' }, ext: { t: performance.now() } });
          acked++;
        } catch {
          errors++;
        }
        if (performance.now() - started > seconds * 1000) running = false;
      }
    })));
    const elapsed = (performance.now() - started) / 1000;
    // The pushes still on their way.
    for (let i = 0; i < 200 && received < acked; i++) await new Promise((r) => setTimeout(r, 10));
    latencies.sort((a, b) => a - b);
    const pct = (p: number): number => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0) * 10) / 10;
    const perSecond = Math.round(acked / elapsed);
    return {
      scenario: 'json-ws-chat',
      description: `chatvault.v1 over WebSocket with the TypeScript client: ${PAIRS} sender/receiver pairs, ${WINDOW} sends in flight each, SQLite synchronous=FULL`,
      target: '>= 2000 messages/s acknowledged and delivered, none lost',
      met: perSecond >= 2000 && errors === 0 && received === acked,
      summary: `${perSecond} messages/s acked, ${received}/${acked} delivered, send→push p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, ${errors} errors`,
      result: { messagesPerSecond: perSecond, acked, received, errors, seconds: Math.round(elapsed * 10) / 10, latencyMs: { p50: pct(0.5), p99: pct(0.99) } },
    };
  } finally {
    for (const c of clients) c.close();
    await s.stop();
  }
}
