import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { SCHEMA_FINGERPRINT } from '../../src/store/sqlite/sqlite-schema.js';
import { benchApp, CLI, closedLoop, startServer, startServerOn, type BenchServer, type LoadResult, type ScenarioResult } from '../harness.js';
import { seedMessages, type SeededData } from '../seed.js';
import { appToken, readStream } from './export-stream.js';

const PG_URL = process.env.DATABASE_URL_BENCH || process.env.DATABASE_URL_TEST || 'postgres://postgres@127.0.0.1:5432/test';
const r2 = (n: number) => Math.round(n * 100) / 100;

function withSchema(schema: string): string {
  const u = new URL(PG_URL);
  u.searchParams.set('schema', schema);
  return u.toString();
}

async function sql(text: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return await c.query(text);
  } finally {
    await c.end();
  }
}

/**
 * The seeded data set copied into a PostgreSQL schema of its own with `chatvault migrate --from
 * --to` (kept between runs, like the SQLite data sets in bench/.data).
 */
async function pgDataSet(data: SeededData, log: (s: string) => void): Promise<string> {
  const schema = `cvbench_${data.count}_${SCHEMA_FINGERPRINT}`;
  const url = withSchema(schema);
  const done = await sql(`SELECT 1 FROM pg_namespace n WHERE n.nspname = '${schema}' AND to_regclass('${schema}.meta') IS NOT NULL`)
    .then(async (r) => r.rowCount === 1 && (await sql(`SELECT value FROM "${schema}".meta WHERE key = 'bench_seeded'`)).rowCount === 1);
  if (done) {
    log(`reusing ${data.count} messages in PostgreSQL schema ${schema}`);
    return url;
  }
  await sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  log(`copying ${data.count} messages into PostgreSQL schema ${schema} (chatvault migrate)...`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [CLI, 'migrate', '--from', data.dataDir, '--to', url, '--no-progress'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`migrate failed: ${r.stderr.slice(-800)}`);
  await sql(`VACUUM ANALYZE "${schema}".messages`);
  await sql(`INSERT INTO "${schema}".meta (key, value) VALUES ('bench_seeded', '${Date.now()}')`);
  log(`copied in ${Math.round((Date.now() - t0) / 1000)} s`);
  return url;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(url: string, token: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 300)}`))));
    }).on('error', reject);
  });
}

/** The paged walk of every message over HTTP, 1000 per page, each page parsed (as export-walk (a)). */
async function pagedWalk(s: BenchServer, token: string): Promise<{ messages: number; seconds: number; perSecond: number }> {
  const base = `${s.url}/demo/chat/chatmessages?ql=${encodeURIComponent('select * order by timestamp asc')}&limit=1000`;
  let cursor: string | undefined;
  let n = 0;
  const t0 = process.hrtime.bigint();
  do {
    const page = JSON.parse((await get(cursor ? `${base}&cursor=${cursor}` : base, token)).toString('utf8')) as { entities: unknown[]; cursor?: string };
    n += page.entities.length;
    cursor = page.cursor;
  } while (cursor);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { messages: n, seconds: r2(seconds), perSecond: Math.round(n / seconds) };
}

async function exportsOn(s: BenchServer, data: SeededData, log: (s: string) => void, label: string) {
  const token = await appToken(s, data);
  const paged = await pagedWalk(s, token);
  log(`${label} paged: ${paged.perSecond}/s`);
  const stream = await readStream(`${s.url}/demo/chat/chatmessages/export`, token, s.proc.pid!);
  log(`${label} stream: ${stream.perSecond}/s`);
  return { paged, stream };
}

function sendLoad(s: BenchServer, app: { token: string; base: string }, connections: number, seconds: number, offset: number): Promise<LoadResult> {
  return closedLoop({
    url: `${app.base}/messages`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${app.token}` },
    body: (i) => JSON.stringify({ target_type: 'users', target: [`user${(i + offset) % 1000}`], msg: { type: 'txt', msg: `hello number ${i}` }, from: 'bench-sender' }),
    connections,
    seconds,
  });
}

/**
 * The export and ingest scenarios on PostgreSQL, side by side with SQLite in one run: the paged
 * HTTP walk and the ndjson stream of 1,000,000 messages on each store; `POST /messages` on one
 * SQLite node and through two PostgreSQL nodes at once.
 */
export async function postgresScenario(seconds: number, opts: { messages?: number } = {}): Promise<ScenarioResult> {
  const count = opts.messages ?? 1_000_000;
  const log = (s: string) => process.stderr.write(`  ${s}\n`);
  const data = await seedMessages(count, log);
  const url = await pgDataSet(data, log);

  let s = await startServerOn(data.dataDir);
  const sqlite = await exportsOn(s, data, log, 'sqlite').finally(() => s.stop());
  s = await startServerOn(fs.mkdtempSync(path.join(os.tmpdir(), 'cv-bench-pg-')), { DATABASE_URL: url }, true);
  const postgres = await exportsOn(s, data, log, 'postgres').finally(() => s.stop());

  // Ingest: a fresh store each, 32 connections in all.
  const one = await startServer();
  let sqliteIngest: LoadResult;
  try {
    sqliteIngest = await sendLoad(one, await benchApp(one), 32, seconds, 0);
  } finally {
    await one.stop();
  }
  log(`sqlite ingest, one node: ${sqliteIngest.perSecond}/s`);
  const ingestSchema = `cvbench_ingest_${process.pid}`;
  const ingestEnv = { DATABASE_URL: withSchema(ingestSchema) };
  let twoNodes: { perSecond: number; nodes: LoadResult[] };
  try {
    const a = await startServer(ingestEnv);
    const b = await startServer(ingestEnv);
    try {
      const appA = await benchApp(a);
      const appB = { token: appA.token, base: appA.base.replace(a.url, b.url) };
      const nodes = await Promise.all([sendLoad(a, appA, 16, seconds, 0), sendLoad(b, appB, 16, seconds, 500)]);
      twoNodes = { perSecond: nodes.reduce((n, r) => n + r.perSecond, 0), nodes };
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  } finally {
    await sql(`DROP SCHEMA IF EXISTS "${ingestSchema}" CASCADE`);
  }
  log(`postgres ingest, two nodes: ${twoNodes.perSecond}/s`);

  const pagedRatio = r2(postgres.paged.perSecond / sqlite.paged.perSecond);
  const streamRatio = r2(postgres.stream.perSecond / sqlite.stream.perSecond);
  const errors = sqliteIngest.errors + twoNodes.nodes.reduce((n, r) => n + r.errors, 0);
  return {
    scenario: 'postgres',
    description: `paged HTTP walk and ndjson stream of ${count} messages on PostgreSQL vs SQLite in one run; POST /messages through two PostgreSQL nodes (16 connections each) vs one SQLite node (32)`,
    target: 'paged and streaming export on PostgreSQL >= 60% of SQLite; ingest >= 5,000 messages/s through two nodes',
    met: pagedRatio >= 0.6 && streamRatio >= 0.6 && twoNodes.perSecond >= 5000 && errors === 0,
    summary: `paged ${postgres.paged.perSecond}/s = ${Math.round(pagedRatio * 100)}% of SQLite ${sqlite.paged.perSecond}/s; ` +
      `stream ${postgres.stream.perSecond}/s = ${Math.round(streamRatio * 100)}% of SQLite ${sqlite.stream.perSecond}/s; ` +
      `ingest two nodes ${twoNodes.perSecond}/s (SQLite one node ${sqliteIngest.perSecond}/s), ${errors} errors`,
    result: { sqlite, postgres, pagedRatio, streamRatio, ingest: { sqliteOneNode: sqliteIngest, postgresTwoNodes: twoNodes } },
  };
}
