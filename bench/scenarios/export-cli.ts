import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, startServerOn, type ScenarioResult } from '../harness.js';
import { seedMessages } from '../seed.js';
import { appToken, readStream } from './export-stream.js';

const r2 = (n: number) => Math.round(n * 100) / 100;

/** Runs the CLI under GNU time; returns seconds and peak RSS (MB). */
function timed(args: string[]): Promise<{ seconds: number; peakRssMb: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn('/usr/bin/time', ['-f', 'MAXRSS %M', process.execPath, CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = /MAXRSS (\d+)/.exec(err);
      if (code !== 0 || !m) reject(new Error(`chatvault ${args[0]} failed (${code}): ${err.slice(-500)}`));
      else resolve({ seconds: r2(seconds), peakRssMb: Math.round(Number(m[1]) / 1024) });
    });
  });
}

/**
 * The CLI on 1,000,000 messages: `chatvault export` to JSONL, CSV and Parquet against the
 * streaming endpoint read by a plain client; and building one hourly archive of 100,000 messages.
 */
export async function exportCli(_seconds: number, opts: { messages?: number } = {}): Promise<ScenarioResult> {
  const count = opts.messages ?? 1_000_000;
  const log = (s: string) => process.stderr.write(`  ${s}\n`);
  const data = await seedMessages(count, log);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cv-bench-cli-'));
  const s = await startServerOn(data.dataDir);
  const result: Record<string, unknown> = {};
  try {
    const token = await appToken(s, data);
    const stream = await readStream(`${s.url}/demo/chat/chatmessages/export`, token, s.proc.pid!);
    result.stream = stream;
    for (const format of ['jsonl', 'csv', 'parquet'] as const) {
      const file = path.join(out, `export.${format}`);
      const t = await timed(['export', '--url', s.url, '--org', 'demo', '--app', 'chat', '--client-id', data.clientId, '--client-secret', data.clientSecret,
        '--format', format, '--out', file, '--no-progress']);
      const perSecond = Math.round(count / t.seconds);
      result[format] = { ...t, perSecond, ofStream: r2(perSecond / stream.perSecond), bytes: fs.statSync(file).size };
      log(`cli ${format}: ${JSON.stringify(result[format])}`);
      fs.rmSync(file, { force: true });
    }
  } finally {
    await s.stop();
    fs.rmSync(out, { recursive: true, force: true });
  }
  // One hour holding 100,000 messages: the first request builds its archive.
  const hourData = await seedMessages(100_000, log, 1);
  const hs = await startServerOn(hourData.dataDir);
  try {
    fs.rmSync(path.join(hourData.dataDir, 'archives'), { recursive: true, force: true });
    const token = await appToken(hs, hourData);
    const d = new Date(hourData.firstTs);
    const hour = `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}${String(d.getUTCHours()).padStart(2, '0')}`;
    const t0 = process.hrtime.bigint();
    const r = await fetch(`${hs.url}/demo/chat/chatmessages/${hour}`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await r.json()) as { data: { count: number; size: number }[] };
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    result.archive = { hour, messages: body.data[0]!.count, bytes: body.data[0]!.size, seconds: r2(seconds), perSecond: Math.round(body.data[0]!.count / seconds) };
    log(`archive: ${JSON.stringify(result.archive)}`);
  } finally {
    await hs.stop();
  }
  const j = result.jsonl as { ofStream: number };
  const pq = result.parquet as { ofStream: number; peakRssMb: number };
  return {
    scenario: 'export-cli',
    description: `chatvault export of ${count} messages to JSONL, CSV, Parquet (time, peak RSS) vs the raw stream; one hourly archive of 100,000 messages`,
    target: 'CLI JSONL >= 80% of streaming; Parquet >= 40% of streaming; CLI RSS < 400 MB for Parquet',
    met: j.ofStream >= 0.8 && pq.ofStream >= 0.4 && pq.peakRssMb < 400,
    summary: (['jsonl', 'csv', 'parquet'] as const).map((f) => {
      const x = result[f] as { perSecond: number; ofStream: number; peakRssMb: number };
      return `${f} ${x.perSecond}/s (${Math.round(x.ofStream * 100)}% of stream, ${x.peakRssMb} MB)`;
    }).join('; ') + `; archive of ${(result.archive as { messages: number }).messages} in ${(result.archive as { seconds: number }).seconds} s`,
    result: { perSecond: (result.jsonl as { perSecond: number }).perSecond, ...result },
  };
}

