import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { buildMessage } from '../../src/domain/messages.js';
import { SqliteDeliveries } from '../../src/store/sqlite/sqlite-deliveries.js';
import { SqliteMessages } from '../../src/store/sqlite/sqlite-messages.js';
import { applyPragmas, migrate } from '../../src/store/sqlite/sqlite-schema.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { NewMessage } from '../../src/store/store.js';
import { percentile, type ScenarioResult } from '../harness.js';

const RATE = 5000;
const PER_COMMIT = 9;
const SENDERS = 1000;
const STALL_MS = 10;

/**
 * The SQLite message writer alone, as the real-time benches load it at 5,000 messages/s:
 * commits of 9 messages (what the writer thread commits at that rate) every 1.8 ms, from 1,000
 * senders to random peers, each with a client id and an inbox row, and in each commit the
 * recipients' acks of the previous commit's messages (as online clients ack a push a few
 * milliseconds later). Reports how long each commit holds the writer, the tail above all: every
 * send queued behind a long commit waits for it; and what a message costs: the time its commits
 * held the writer (without the fsync, under `--no-sync`, that is the writer's CPU) and the pages
 * of log it wrote.
 * The log is not checkpointed here (the server does that on a thread of its own), so what is
 * left is the writer's own work, the client-id moves among it, and each commit's fsync
 * (`--no-sync` leaves the fsync out).
 */
export async function sqliteWriter(seconds: number, opts: { sync?: boolean } = {}): Promise<ScenarioResult> {
  const sync = opts.sync ?? true;
  const commits = await commitTimes(seconds, sync);
  const store = await storeWrites(seconds);
  return {
    ...commits,
    target: `${commits.target}; p99 of a store write <= 20 ms`,
    met: commits.met && store.ms.p99 <= 20,
    summary: `${commits.summary}; store writes at ${RATE}/s through the writer thread: p50 ${store.ms.p50} ms, p99 ${store.ms.p99} ms, max ${store.ms.max} ms`,
    result: { ...commits.result, storeWrites: store },
  };
}

function message(i: number, t0: number): NewMessage {
  const from = (i * 7919) % SENDERS;
  const to = (i * 104729 + 13) % SENDERS;
  const m = buildMessage(1, { from: `u${from}`, to: `u${to}`, chatType: 'chat', bodies: [{ type: 'txt', msg: `hello number ${i}` }], timestamp: t0 + i, msgId: `${1_000_000_000_000 + i}` });
  m.recipients = [`u${to}`];
  m.clientId = `c${i}`;
  return m;
}

function percentiles(values: number[]): { p50: number; p99: number; p999: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => Math.round(percentile(sorted, p) * 100) / 100;
  return { p50: at(50), p99: at(99), p999: at(99.9), max: at(100) };
}

/**
 * The store as the server runs it (writer and checkpointer threads, every commit synced): one
 * write per message, RATE a second, as the millisecond timer lets them out; the time from the
 * call to its answer (durable) is what every real-time send waits in the store.
 */
async function storeWrites(seconds: number): Promise<{ writes: number; ms: ReturnType<typeof percentiles> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cv-bench-store-'));
  const store = new SqliteStore(path.join(dir, 'chatvault.db'));
  await store.open();
  try {
    const t0 = Date.now();
    const latencies: number[] = [];
    const writes: Promise<unknown>[] = [];
    let sent = 0;
    const start = performance.now();
    const warmupMs = 2000;
    const endMs = warmupMs + seconds * 1000;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = performance.now() - start;
        const due = Math.min(Math.floor((now * RATE) / 1000), Math.floor((endMs * RATE) / 1000));
        for (; sent < due; sent++) {
          const at = performance.now();
          const counted = now >= warmupMs;
          writes.push(store.insertMessages([message(sent, t0)]).then(() => {
            if (counted) latencies.push(performance.now() - at);
          }));
        }
        if (now >= endMs) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
    await Promise.all(writes);
    return { writes: latencies.length, ms: percentiles(latencies) };
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function commitTimes(seconds: number, sync: boolean): Promise<ScenarioResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cv-bench-writer-'));
  const db = new Database(path.join(dir, 'chatvault.db'));
  try {
    applyPragmas(db);
    migrate(db);
    db.pragma('wal_autocheckpoint = 0');
    // --no-sync: commits without their fsync, to see the writer's own work apart from the disk's.
    if (!sync) db.pragma('synchronous = NORMAL');
    const writer = new SqliteMessages(db, 4096);
    const deliveries = new SqliteDeliveries(db);
    let n = 0;
    let unacked: NewMessage[] = [];
    const t0 = Date.now();
    const next = (): NewMessage => message(n++, t0);
    const durations: number[] = [];
    const warmup = 2000;
    const end = Date.now() + warmup + seconds * 1000;
    const gap = (1000 * PER_COMMIT) / RATE;
    let due = performance.now();
    let measured: { frames: number; messages: number } | null = null;
    while (Date.now() < end) {
      if (!measured && Date.now() >= end - seconds * 1000) measured = { frames: logFrames(db), messages: n };
      due += gap;
      // Paced by spinning: a timer's millisecond steps would bunch the commits.
      while (performance.now() < due) {
        // wait
      }
      const writes: Promise<bigint[]>[] = [];
      const batch = Array.from({ length: PER_COMMIT }, next);
      for (const m of batch) writes.push(writer.insert([m]));
      for (const m of unacked) void writer.withNextCommit(() => deliveries.markDeliveredInTransaction(1, m.recipients![0]!, [m.msgId]));
      unacked = batch;
      const start = performance.now();
      writer.flush();
      const took = performance.now() - start;
      if (Date.now() >= end - seconds * 1000) durations.push(took);
      await Promise.all(writes);
    }
    const counted = n - (measured?.messages ?? 0);
    const perMessage = {
      writerMicros: Math.round((durations.reduce((a, b) => a + b, 0) * 1000 / counted) * 10) / 10,
      logPages: Math.round(((logFrames(db) - (measured?.frames ?? 0)) / counted) * 100) / 100,
    };
    const sorted = [...durations].sort((a, b) => a - b);
    const stalls = sorted.filter((d) => d > STALL_MS).length;
    const over4 = sorted.filter((d) => d > 4).length;
    const ms = percentiles(sorted);
    return {
      scenario: 'sqlite-writer',
      description: `SQLite writer alone: ${RATE} messages/s in commits of ${PER_COMMIT} from ${SENDERS} senders, with client ids and inbox rows, ${seconds} s${sync ? '' : ', commits not synced (--no-sync)'}`,
      target: `p99.9 of commit time <= ${STALL_MS} ms (no stall the real-time p99 would carry)`,
      met: ms.p999 <= STALL_MS,
      summary: `commit p50 ${ms.p50} ms, p99 ${ms.p99} ms, p99.9 ${ms.p999} ms, max ${ms.max} ms; ${over4} commits over 4 ms, ${stalls} over ${STALL_MS} ms (${sorted.length} commits); a message: ${perMessage.writerMicros} µs of commit, ${perMessage.logPages} log pages`,
      result: { synced: sync, commits: sorted.length, messages: sorted.length * PER_COMMIT, commitMs: ms, over4ms: over4, overStallMs: stalls, rate: RATE, perCommit: PER_COMMIT, senders: SENDERS, perMessage },
    };
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Frames in the write-ahead log (not checkpointed here, so it only grows): its size over a frame's. */
function logFrames(db: Database.Database): number {
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const wal = `${db.name}-wal`;
  return fs.existsSync(wal) ? Math.max(0, (fs.statSync(wal).size - 32) / (pageSize + 24)) : 0;
}
