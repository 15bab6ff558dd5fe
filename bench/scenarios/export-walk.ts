import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { CursorCodec } from '../../src/domain/cursor.js';
import { ChatQueryEngine } from '../../src/export/chat-query.js';
import { writeEntitiesBody } from '../../src/export/page-writer.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { percentile, startServerOn, type ScenarioResult } from '../harness.js';
import { seedMessages, type SeededData } from '../seed.js';

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** GET returning the raw body and the time it took (ms). */
function get(url: string, token: string): Promise<{ body: Buffer; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    http
      .get(url, { agent, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          if (res.statusCode !== 200) reject(new Error(`${res.statusCode}: ${body.toString().slice(0, 300)}`));
          else resolve({ body, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
        });
      })
      .on('error', reject);
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function sortedPercentile(xs: number[], p: number): number {
  return percentile([...xs].sort((a, b) => a - b), p);
}

const r2 = (n: number) => Math.round(n * 100) / 100;

/** (b): the whole walk in this process, on the store and the page writer, no HTTP. */
export async function walkInProcess(data: SeededData, ql: string): Promise<{ messages: number; seconds: number; perSecond: number }> {
  const store = new SqliteStore(path.join(data.dataDir, 'chatvault.db'));
  await store.open();
  try {
    const key = Buffer.from((await store.getMeta('signing_key'))!, 'base64');
    const engine = new ChatQueryEngine(store, new CursorCodec(key));
    const app = (await store.getApp('demo', 'chat'))!;
    let cursor: string | undefined;
    let n = 0;
    let bytes = 0;
    const t0 = process.hrtime.bigint();
    do {
      const plan = await engine.plan(app, { ql, limit: '1000', cursor, since: undefined });
      // The same path as the HTTP route: records spliced by the store into the page.
      const page = await engine.splicedPage(plan, ',');
      const body = writeEntitiesBody({ action: 'get', app, params: { ql: [ql], limit: ['1000'] }, uri: 'http://bench/demo/chat/chatmessages', startedAt: Date.now(), cursor: page.cursor, watermark: page.watermark }, page.count, page.body);
      bytes += body.length;
      n += page.count;
      cursor = page.cursor;
    } while (cursor);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (bytes === 0) throw new Error('empty walk');
    return { messages: n, seconds: r2(seconds), perSecond: Math.round(n / seconds) };
  } finally {
    await store.close();
  }
}

/** Three in-process walks; the median is reported (the first also warms the page cache). */
export async function medianWalk(data: SeededData, ql: string): Promise<{ messages: number; seconds: number; perSecond: number; runs: number[] }> {
  const runs = [await walkInProcess(data, ql), await walkInProcess(data, ql), await walkInProcess(data, ql)];
  return { ...[...runs].sort((x, y) => x.perSecond - y.perSecond)[1]!, runs: runs.map((r) => r.perSecond) };
}

/**
 * Export at scale: 1,000,000 stored messages walked with limit=1000 over HTTP by a client that
 * parses every page (a), the same walk in-process (b), page latency at the start and at 90%
 * depth (c); and (d) a `from = x and timestamp > T` query with limit 100 on a larger store.
 */
export async function exportWalk(_seconds: number, opts: { messages?: number; bigMessages?: number } = {}): Promise<ScenarioResult> {
  const count = opts.messages ?? 1_000_000;
  const bigCount = opts.bigMessages ?? 10_000_000;
  const log = (s: string) => process.stderr.write(`  ${s}\n`);
  const data = await seedMessages(count, log);
  const ql = 'select * order by timestamp asc';
  const inProcess = await medianWalk(data, ql);
  log(`in-process walk: ${JSON.stringify(inProcess)}`);

  const s = await startServerOn(data.dataDir);
  let http: Record<string, unknown>;
  let latency: Record<string, unknown>;
  try {
    const tok = await fetch(`${s.url}/demo/chat/token`, {
      method: 'POST', body: JSON.stringify({ grant_type: 'client_credentials', client_id: data.clientId, client_secret: data.clientSecret }),
    }).then((r) => r.json() as Promise<{ access_token: string }>);
    const token = tok.access_token;
    const base = `${s.url}/demo/chat/chatmessages?ql=${encodeURIComponent(ql)}&limit=1000`;
    let cursor: string | undefined;
    let n = 0;
    let pages = 0;
    let deepCursor: string | undefined;
    const deepAt = Math.floor((count / 1000) * 0.9);
    const t0 = process.hrtime.bigint();
    do {
      const { body } = await get(cursor ? `${base}&cursor=${cursor}` : base, token);
      // Parse every page, as a real client does.
      const page = JSON.parse(body.toString('utf8')) as { entities: unknown[]; cursor?: string };
      n += page.entities.length;
      cursor = page.cursor;
      pages++;
      if (pages === deepAt) deepCursor = cursor;
    } while (cursor);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    http = { messages: n, pages, seconds: r2(secs), perSecond: Math.round(n / secs) };
    log(`HTTP walk: ${http.perSecond}/s`);

    const firstMs: number[] = [];
    const deepMs: number[] = [];
    for (let i = 0; i < 21; i++) {
      firstMs.push((await get(base, token)).ms);
      deepMs.push((await get(`${base}&cursor=${deepCursor}`, token)).ms);
    }
    latency = { firstPageMedianMs: r2(median(firstMs)), deepPageMedianMs: r2(median(deepMs)), ratio: r2(median(deepMs) / median(firstMs)) };
    log(`page latency first/deep: ${JSON.stringify(latency)}`);
  } finally {
    await s.stop();
  }
  const point = await pointQuery(bigCount, log);
  const a = http.perSecond as number;
  const b = inProcess.perSecond;
  const ratio = latency.ratio as number;
  const met = b >= 250000 && a >= 0.25 * b && ratio <= 1.25 && point.p99Ms <= 20;
  return {
    scenario: 'export-walk',
    description: `(a) HTTP walk limit=1000 parsing each page, (b) in-process walk, (c) page 1 vs 90% depth, on ${count} messages; (d) from+timestamp query limit 100 on ${bigCount}`,
    target: '(b) >= 250,000/s; (a) >= 25% of (b); (c) deep/first <= 1.25; (d) p99 <= 20 ms',
    met,
    summary: `(a) HTTP ${a}/s = ${Math.round((a / b) * 100)}% of (b); (b) in-process ${b}/s; (c) page 1 ${latency.firstPageMedianMs} ms, 90% deep ${latency.deepPageMedianMs} ms (×${ratio}); ` +
      `(d) p99 ${point.warm.p99Ms} ms warm, ${point.cold.p99Ms} ms cold, on ${bigCount}`,
    result: { messages: count, seedSeconds: data.seedSeconds, httpWalk: http, inProcessWalk: inProcess, pageLatency: latency, pointQuery: point, perSecond: a },
  };
}

/** Reads a file once so that the OS keeps it in its page cache, as a running server's data is. */
async function warmFile(file: string): Promise<void> {
  for await (const _chunk of fs.createReadStream(file, { highWaterMark: 8 * 1024 * 1024 })) {
    // reading is the point
  }
}

type PointResult = { queries: number; p50Ms: number; p99Ms: number };

/**
 * (d): p99 latency of `from = 'userN' and timestamp > T` with limit 100 over HTTP on a large
 * store: once as the data file happens to be on disk (cold), and once after it was read into the
 * OS page cache (warm, the steady state of a server whose data fits in memory).
 */
async function pointQuery(count: number, log: (s: string) => void): Promise<{ messages: number; cold: PointResult; warm: PointResult; p99Ms: number }> {
  const data = await seedMessages(count, log);
  const s = await startServerOn(data.dataDir);
  try {
    const tok = await fetch(`${s.url}/demo/chat/token`, {
      method: 'POST', body: JSON.stringify({ grant_type: 'client_credentials', client_id: data.clientId, client_secret: data.clientSecret }),
    }).then((r) => r.json() as Promise<{ access_token: string }>);
    const span = data.lastTs - data.firstTs;
    const pass = async (seed: number): Promise<PointResult> => {
      const times: number[] = [];
      for (let i = 0; i < 320; i++) {
        const user = `user${(i * 7919 + seed) % 1000}`;
        const t = Math.floor(data.firstTs + (((i + seed) * 104729) % 1000) / 1000 * span);
        const ql = `select * where from = '${user}' and timestamp > ${t}`;
        const { ms } = await get(`${s.url}/demo/chat/chatmessages?ql=${encodeURIComponent(ql)}&limit=100`, tok.access_token);
        if (i >= 20) times.push(ms);
      }
      return { queries: times.length, p50Ms: r2(sortedPercentile(times, 50)), p99Ms: r2(sortedPercentile(times, 99)) };
    };
    const cold = await pass(0);
    await warmFile(path.join(data.dataDir, 'chatvault.db'));
    const warm = await pass(500);
    const out = { messages: count, cold, warm, p99Ms: warm.p99Ms };
    log(`point query: ${JSON.stringify(out)}`);
    return out;
  } finally {
    await s.stop();
  }
}
