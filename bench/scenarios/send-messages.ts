import { benchApp, closedLoop, startServer, type ScenarioResult } from '../harness.js';

/** `POST /messages`, one target, 32 concurrent keep-alive connections, fsync'd group commit. */
export async function sendMessages(seconds: number): Promise<ScenarioResult> {
  const s = await startServer();
  try {
    const { token, base } = await benchApp(s);
    const r = await closedLoop({
      url: `${base}/messages`,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: (i) => JSON.stringify({ target_type: 'users', target: [`user${i % 1000}`], msg: { type: 'txt', msg: `hello number ${i}` }, from: 'bench-sender' }),
      connections: 32,
      seconds,
    });
    return {
      scenario: 'send-messages',
      description: 'POST /messages with one target, 32 concurrent connections, SQLite synchronous=FULL',
      target: '>= 5000 messages/s',
      met: r.perSecond >= 5000 && r.errors === 0,
      summary: `${r.perSecond} messages/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, ${r.errors} errors`,
      result: { messagesPerSecond: r.perSecond, ...r },
    };
  } finally {
    await s.stop();
  }
}
