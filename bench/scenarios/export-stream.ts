import fs from 'node:fs';
import http from 'node:http';
import { startServerOn, type BenchServer, type ScenarioResult } from '../harness.js';
import { seedMessages, type SeededData } from '../seed.js';
import { medianWalk } from './export-walk.js';

const r2 = (n: number) => Math.round(n * 100) / 100;

/** Resident memory of a process now, in MB (Linux /proc). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

export async function appToken(s: BenchServer, data: SeededData): Promise<string> {
  const r = await fetch(`${s.url}/demo/chat/token`, {
    method: 'POST', body: JSON.stringify({ grant_type: 'client_credentials', client_id: data.clientId, client_secret: data.clientSecret }),
  });
  return ((await r.json()) as { access_token: string }).access_token;
}

/**
 * Reads a streaming export as a consumer that splits it into records (counting lines; records
 * are not parsed) while sampling the server's RSS. Returns records/s and the peak RSS seen.
 */
export function readStream(url: string, token: string, serverPid: number): Promise<{ records: number; seconds: number; perSecond: number; serverPeakRssMb: number }> {
  return new Promise((resolve, reject) => {
    let records = 0;
    let peak = rssMb(serverPid);
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(serverPid))), 200);
    const t0 = process.hrtime.bigint();
    http
      .get(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
        res.on('data', (c: Buffer) => {
          for (let i = c.indexOf(10); i !== -1; i = c.indexOf(10, i + 1)) records++;
        });
        res.on('end', () => {
          clearInterval(sampler);
          const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
          // The last line is the export_end trailer, not a message.
          records -= 1;
          resolve({ records, seconds: r2(seconds), perSecond: Math.round(records / seconds), serverPeakRssMb: Math.max(peak, rssMb(serverPid)) });
        });
      })
      .on('error', (e) => {
        clearInterval(sampler);
        reject(e);
      });
  });
}

/**
 * Streaming export: ndjson over HTTP on 1,000,000 messages against the in-process walk (the
 * ceiling) and the paged HTTP walk; server memory while streaming 5,000,000 messages.
 */
export async function exportStream(_seconds: number, opts: { messages?: number; bigMessages?: number; pagedPerSecond?: number } = {}): Promise<ScenarioResult> {
  const count = opts.messages ?? 1_000_000;
  const big = opts.bigMessages ?? 10_000_000;
  const log = (s: string) => process.stderr.write(`  ${s}\n`);
  const data = await seedMessages(count, log);
  const ql = 'select *';
  const inProcess = await medianWalk(data, ql);
  log(`in-process walk: ${inProcess.perSecond}/s`);
  const s = await startServerOn(data.dataDir);
  let stream: Awaited<ReturnType<typeof readStream>>;
  try {
    const token = await appToken(s, data);
    await readStream(`${s.url}/demo/chat/chatmessages/export`, token, s.proc.pid!); // warm-up
    stream = await readStream(`${s.url}/demo/chat/chatmessages/export`, token, s.proc.pid!);
    log(`stream: ${JSON.stringify(stream)}`);
  } finally {
    await s.stop();
  }
  // Memory: stream five million messages of the big data set.
  const bigData = await seedMessages(big, log);
  const bs = await startServerOn(bigData.dataDir);
  let memory: Awaited<ReturnType<typeof readStream>>;
  try {
    const token = await appToken(bs, bigData);
    const mid = Math.floor(bigData.firstTs + (bigData.lastTs - bigData.firstTs) / 2);
    const q = encodeURIComponent(`select * where timestamp < ${mid}`);
    memory = await readStream(`${bs.url}/demo/chat/chatmessages/export?ql=${q}`, token, bs.proc.pid!);
    log(`memory stream: ${JSON.stringify(memory)}`);
  } finally {
    await bs.stop();
  }
  const paged = opts.pagedPerSecond;
  const met = stream.perSecond >= 0.7 * inProcess.perSecond && (paged === undefined || stream.perSecond >= 3 * paged) && memory.serverPeakRssMb < 300;
  return {
    scenario: 'export-stream',
    description: `ndjson streaming export over HTTP on ${count} messages vs the in-process walk and the paged walk; server RSS while streaming ${memory.records} messages`,
    target: 'stream >= 70% of in-process and >= 3x paged HTTP walk; server RSS < 300 MB for 5,000,000',
    met,
    summary: `stream ${stream.perSecond}/s = ${Math.round((stream.perSecond / inProcess.perSecond) * 100)}% of in-process ${inProcess.perSecond}/s` +
      (paged ? `, ${Math.round((stream.perSecond / paged) * 10) / 10}× paged ${paged}/s` : '') + `; server peak RSS ${memory.serverPeakRssMb} MB streaming ${memory.records}`,
    result: { perSecond: stream.perSecond, inProcessWalk: inProcess, stream, pagedHttpPerSecond: paged, memory },
  };
}
