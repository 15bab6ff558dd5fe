import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { qlAfterTimestamp } from '../../src/cli/export.js';
import { CSV_HEADER, csvRow, type StoredRecord } from '../../src/export/records.js';
import type { AppRow } from '../../src/store/store.js';
import { Api, demoToken, freePort, startTestServer, tempDir, type TestServer } from '../helpers.js';
import { storeEnv } from '../store-under-test.js';
import { byId, pagedWalk, readJsonl, runCli, seedMessages, spawnCli, waitFor } from './cli-helpers.js';

let s: TestServer;
let api: Api;
let app: AppRow;
let dir: string;
const N = 3000;

function args(out: string, ...extra: string[]): string[] {
  return [
    'export', '--url', s.url, '--org', 'demo', '--app', 'chat', '--client-id', s.demo.clientId, '--client-secret', s.demo.clientSecret,
    '--out', out, ...extra,
  ];
}

function state(out: string): { count: number; complete: boolean; bytes: number } | null {
  try {
    return JSON.parse(fs.readFileSync(`${out}.chatvault-export.json`, 'utf8')) as { count: number; complete: boolean; bytes: number };
  } catch {
    return null;
  }
}

async function parquetRows(file: string): Promise<Record<string, unknown>[]> {
  return parquetReadObjects({ file: await asyncBufferFromFile(file) }) as Promise<Record<string, unknown>[]>;
}

async function waitUntilServing(url: string): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    try {
      if ((await fetch(`${url}/status`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${url} did not start`);
}

/** The set of msg_ids of a list, checking that none repeats. */
function uniqueIds(ids: unknown[]): Set<string> {
  const set = new Set(ids.map(String));
  assert.equal(set.size, ids.length, 'no msg_id twice');
  return set;
}

let walked: Record<string, unknown>[];
let jsonl: Record<string, unknown>[];

before(async () => {
  s = await startTestServer();
  api = new Api(s.url, await demoToken(s));
  app = (await s.cv.services.store.getApp('demo', 'chat'))!;
  await seedMessages(s.cv.services.store, app, N);
  dir = tempDir('cv-export-');
  walked = await pagedWalk(api, 'demo', 'chat');
});
after(async () => {
  await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function exportOk(out: string, ...extra: string[]): Promise<Record<string, unknown>> {
  const r = await runCli(args(out, ...extra));
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe('chatvault export', () => {
  test('jsonl from the stream holds every record of the paged walk, once, in the paged entity shape', async () => {
    const out = path.join(dir, 'all.jsonl');
    const summary = await exportOk(out, '--checkpoint-every', '700');
    assert.equal(summary.mode, 'stream');
    assert.equal(summary.count, N);
    jsonl = readJsonl(out);
    assert.equal(jsonl.length, N);
    uniqueIds(jsonl.map((r) => r.msg_id));
    const paged = byId(walked);
    for (const r of jsonl) assert.deepEqual(r, paged.get(String(r.msg_id)));
    const st = state(out)!;
    assert.equal(st.complete, true);
    assert.equal(st.bytes, fs.statSync(out).size);
  });

  test('csv has the columns of the stream export, one row per jsonl record', async () => {
    const out = path.join(dir, 'all.csv');
    await exportOk(out, '--format', 'csv');
    const expected = CSV_HEADER + jsonl.map((r) => csvRow(r as unknown as StoredRecord)).join('');
    assert.equal(fs.readFileSync(out, 'utf8'), expected);
  });

  test('--gzip writes gzip (several members) that unpacks to the same jsonl', async () => {
    const out = path.join(dir, 'all.jsonl.gz');
    await exportOk(out, '--gzip', '--checkpoint-every', '500');
    assert.deepEqual(gunzipSync(fs.readFileSync(out)), fs.readFileSync(path.join(dir, 'all.jsonl')));
  });

  test('parquet read back with hyparquet equals the jsonl: msg_ids, integer timestamps, typed body fields, ext', async () => {
    const out = path.join(dir, 'all.parquet');
    await exportOk(out, '--format', 'parquet', '--row-group-size', '400', '--checkpoint-every', '1000');
    const rows = await parquetRows(out);
    assert.equal(rows.length, N);
    assert.deepEqual(rows.map((r) => r.msg_id), jsonl.map((r) => r.msg_id));
    rows.forEach((row, i) => {
      const rec = jsonl[i] as unknown as StoredRecord;
      const body = rec.payload.bodies[0]!;
      assert.equal(typeof row.timestamp, 'bigint');
      assert.equal(Number(row.timestamp), rec.timestamp);
      assert.equal(Number(row.created), rec.created);
      assert.equal(row.from, rec.from);
      assert.equal(row.to, rec.to);
      assert.equal(row.chat_type, rec.chat_type);
      assert.equal(row.type, body.type);
      assert.equal(row.msg, body.msg ?? null);
      assert.equal(row.url, body.url ?? null);
      assert.equal(row.lat, body.lat ?? null);
      assert.equal(row.lng, body.lng ?? null);
      assert.equal(row.length, body.length ?? null);
      assert.deepEqual(row.ext === null ? undefined : JSON.parse(row.ext as string), rec.payload.ext);
      assert.deepEqual(JSON.parse(row.payload as string), rec.payload);
    });
  });

  test('the paged path (--no-stream) equals the stream', async () => {
    const out = path.join(dir, 'paged.jsonl');
    const summary = await exportOk(out, '--no-stream', '--page-size', '250');
    assert.equal(summary.mode, 'paged');
    const recs = readJsonl(out);
    uniqueIds(recs.map((r) => r.msg_id));
    const streamed = byId(jsonl);
    assert.equal(recs.length, N);
    for (const r of recs) assert.deepEqual(r, streamed.get(String(r.msg_id)));
  });

  test('--ql selects on both paths; an ordered ql pages even on chatvault', async () => {
    const ql = "select * where from = 'u3'";
    const want = new Set(walked.filter((r) => r.from === 'u3').map((r) => String(r.msg_id)));
    const a = path.join(dir, 'u3.jsonl');
    const b = path.join(dir, 'u3-desc.jsonl');
    await exportOk(a, '--ql', ql);
    const desc = await exportOk(b, '--ql', `${ql} order by timestamp desc`, '--page-size', '100');
    assert.equal(desc.mode, 'paged');
    assert.deepEqual(uniqueIds(readJsonl(a).map((r) => r.msg_id)), want);
    const ordered = readJsonl(b);
    assert.deepEqual(uniqueIds(ordered.map((r) => r.msg_id)), want);
    const ts = ordered.map((r) => Number(r.timestamp));
    assert.deepEqual(ts, [...ts].sort((x, y) => y - x));
  });

  for (const [name, extra] of [
    ['jsonl from the stream', []],
    ['gzip csv from the stream', ['--format', 'csv', '--gzip']],
    ['parquet from the paged walk', ['--format', 'parquet', '--no-stream', '--page-size', '100']],
  ] as const) {
    test(`killed half-way then --resume gives every message exactly once: ${name}`, async () => {
      const flags: readonly string[] = extra;
      const ext = flags.includes('parquet') ? 'parquet' : flags.includes('csv') ? 'csv.gz' : 'jsonl';
      const out = path.join(dir, `killed-${ext}`);
      const run = spawnCli(args(out, ...extra, '--max-rate', '2000', '--checkpoint-every', '300'));
      await waitFor(() => (state(out)?.count ?? 0) >= 600, 'a checkpoint half-way');
      run.proc.kill('SIGKILL');
      const killed = await run.done;
      assert.equal(killed.signal, 'SIGKILL');
      const mid = state(out)!;
      assert.equal(mid.complete, false);
      assert.ok(mid.count > 0 && mid.count < N, `stopped half-way (${mid.count})`);

      const r = await runCli(args(out, ...extra, '--resume'));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(state(out)!.complete, true);
      let ids: unknown[];
      if (ext === 'parquet') {
        ids = (await parquetRows(out)).map((row) => row.msg_id);
      } else if (ext === 'csv.gz') {
        // The stream's order is storage order: the resumed file is byte for byte the uninterrupted one.
        assert.equal(gunzipSync(fs.readFileSync(out)).toString('utf8'), CSV_HEADER + jsonl.map((rec) => csvRow(rec as unknown as StoredRecord)).join(''));
        ids = jsonl.map((rec) => rec.msg_id);
      } else {
        assert.deepEqual(fs.readFileSync(out), fs.readFileSync(path.join(dir, 'all.jsonl')));
        ids = readJsonl(out).map((rec) => rec.msg_id);
      }
      assert.equal(ids.length, N);
      assert.deepEqual(uniqueIds(ids), new Set(walked.map((rec) => String(rec.msg_id))));
    });
  }

  test('Ctrl-C checkpoints, exits 130 with a --resume hint, and --resume finishes', async () => {
    const out = path.join(dir, 'sigint.jsonl');
    const run = spawnCli(args(out, '--max-rate', '2000', '--checkpoint-every', '300'));
    await waitFor(() => (state(out)?.count ?? 0) >= 300, 'a first checkpoint');
    run.proc.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130);
    assert.match(r.stderr, /--resume/);
    const mid = state(out)!;
    assert.equal(mid.complete, false);
    assert.equal(mid.bytes, fs.statSync(out).size, 'the output is exactly what the checkpoint says');
    assert.equal(readJsonl(out).length, mid.count);
    const done = await runCli(args(out, '--resume'));
    assert.equal(done.code, 0, done.stderr);
    assert.equal(uniqueIds(readJsonl(out).map((rec) => rec.msg_id)).size, N);
    const again = await runCli(args(out, '--resume'));
    assert.equal(again.code, 0);
    assert.match(again.stderr, /complete already/);
  });

  for (const [name, extra] of [['chatvault watermark', []], ['timestamps on a plain server (--no-stream)', ['--no-stream']]] as const) {
    test(`--since-last exports only what was sent after the last complete run: ${name}`, async () => {
      const out = path.join(dir, `since-${extra.length}.jsonl`);
      await exportOk(out, ...extra, '--since-last');
      assert.ok(readJsonl(out).length >= N);
      const sent = await api.post('/demo/chat/messages', { target_type: 'users', target: ['x', 'y', 'z'], msg: { type: 'txt', msg: `new ${name}` } });
      assert.equal(sent.status, 200);
      const summary = await exportOk(out, ...extra, '--since-last');
      assert.equal(summary.since, true);
      const fresh = readJsonl(out);
      assert.deepEqual(fresh.map((r) => r.to).sort(), ['x', 'y', 'z']);
      assert.ok(fresh.every((r) => (r.payload as StoredRecord['payload']).bodies[0]!.msg === `new ${name}`));
      await exportOk(out, ...extra, '--since-last');
      assert.equal(readJsonl(out).length, 0, 'nothing new the second time');
    });
  }

  test('exit codes: bad credentials 3, bad ql 4, unreachable 5, bad arguments 2, disk full 6', async () => {
    const out = path.join(dir, 'fail.jsonl');
    const bad = args(out).map((a) => (a === s.demo.clientSecret ? 'YXA6wrongwrongwrongwrong' : a));
    let r = await runCli(bad);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /credentials/);
    assert.equal(r.stderr.trim().split('\n').length, 1);

    for (const extra of [[], ['--no-stream']]) {
      r = await runCli(args(out, '--ql', 'select * where from =', ...extra));
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /bad ql/);
    }

    const port = await freePort();
    r = await runCli([...args(out, '--retries', '2', '--retry-delay-ms', '10').map((a) => (a === s.url ? `http://127.0.0.1:${port}` : a))]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /gave up after 3 attempts/);

    for (const a of [
      ['export', '--url', s.url, '--org', 'demo'],
      args(out, '--format', 'parquet', '--gzip'),
      args(out, '--format', 'xml'),
      args(path.join(dir, 'never.jsonl'), '--resume'),
      args(out, '--page-size', '5000'),
    ]) {
      r = await runCli(a);
      assert.equal(r.code, 2, `${a.join(' ')}: ${r.stderr}`);
    }

    r = await runCli(args(path.join(dir, 'no-such-dir', 'x.jsonl')));
    assert.equal(r.code, 6, r.stderr);
    if (fs.existsSync('/dev/full')) {
      r = await runCli(args('/dev/full', '--state', path.join(dir, 'full.state.json')));
      assert.equal(r.code, 6, r.stderr);
      assert.match(r.stderr, /no space left/);
    }
  });

  test('the server killed and restarted mid-walk: the CLI retries the page and ends with every message exactly once', async () => {
    // A server of its own, in a child process on a fixed port, over a data folder seeded here.
    const data = tempDir('cv-restart-');
    const seeded = await startTestServer({}, data);
    await seedMessages(seeded.cv.services.store, (await seeded.cv.services.store.getApp('demo', 'chat'))!, N, 9_100_000_000);
    const creds = seeded.demo;
    await seeded.close();
    const port = await freePort();
    const serve = () => {
      const child = spawnCli(['serve'], { PORT: String(port), HOST: '127.0.0.1', DATA_DIR: data, ...storeEnv(data) });
      return { child, up: waitUntilServing(`http://127.0.0.1:${port}`) };
    };
    let server = serve();
    await server.up;
    const out = path.join(dir, 'restart.jsonl');
    const run = spawnCli([
      'export', '--url', `http://127.0.0.1:${port}`, '--org', 'demo', '--app', 'chat', '--client-id', creds.clientId, '--client-secret', creds.clientSecret,
      '--out', out, '--no-stream', '--page-size', '100', '--max-rate', '2000', '--checkpoint-every', '300', '--retries', '30', '--retry-delay-ms', '100',
    ]);
    try {
      await waitFor(() => (state(out)?.count ?? 0) >= 600, 'a checkpoint half-way');
      server.child.proc.kill('SIGKILL');
      await server.child.done;
      server = serve();
      await server.up;
      const r = await run.done;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /retry/);
      const ids = readJsonl(out).map((rec) => rec.msg_id);
      assert.equal(ids.length, N);
      assert.equal(uniqueIds(ids).size, N);
    } finally {
      run.proc.kill('SIGKILL');
      server.child.proc.kill('SIGTERM');
      await server.child.done;
      fs.rmSync(data, { recursive: true, force: true });
    }
  });

  test('a stream cut by the network is continued after the last record received', async () => {
    // A proxy that breaks the first export stream after 300 kB, mid-line.
    const exports: string[] = [];
    const proxy = http.createServer((inReq, inRes) => {
      const isExport = inReq.url!.includes('/chatmessages/export');
      if (isExport) exports.push(inReq.url!);
      const up = http.request(`${s.url}${inReq.url}`, { method: inReq.method, headers: inReq.headers }, (upRes) => {
        inRes.writeHead(upRes.statusCode!, upRes.headers);
        let sent = 0;
        upRes.on('data', (c: Buffer) => {
          if (isExport && exports.length === 1 && sent + c.length > 300_000) {
            inRes.write(c.subarray(0, 300_000 - sent));
            inRes.destroy();
            upRes.destroy();
            return;
          }
          sent += c.length;
          inRes.write(c);
        });
        upRes.on('end', () => inRes.end());
      });
      inReq.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as { port: number }).port;
    try {
      const out = path.join(dir, 'cut.jsonl');
      const r = await runCli([...args(out, '--retry-delay-ms', '10')].map((a) => (a === s.url ? `http://127.0.0.1:${port}` : a)));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /retry 1/);
      assert.equal(exports.length, 2);
      assert.match(exports[1]!, /after=\d+/);
      const uncut = path.join(dir, 'uncut.jsonl');
      await exportOk(uncut);
      assert.deepEqual(fs.readFileSync(out), fs.readFileSync(uncut));
    } finally {
      proxy.close();
    }
  });

  test('qlAfterTimestamp adds the lower bound to any ql shape', () => {
    assert.equal(qlAfterTimestamp('', 5), 'select * where timestamp > 5');
    assert.equal(qlAfterTimestamp('select *', 5), 'select * where timestamp > 5');
    assert.equal(qlAfterTimestamp("select * where from = 'a'", 5), "select * where timestamp > 5 and (from = 'a')");
    assert.equal(qlAfterTimestamp("from = 'a' order by timestamp desc", 5), "select * where timestamp > 5 and (from = 'a') order by timestamp desc");
    assert.equal(qlAfterTimestamp('select * order by timestamp', 5), 'select * where timestamp > 5 order by timestamp');
  });
});
