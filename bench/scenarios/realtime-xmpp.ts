import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADMIN, call, percentile, startServerOn, type BenchServer, type ScenarioResult } from '../harness.js';
import type { ConnectResult, LoadCommand, ProbeResult, TrafficResult, UserCredentials } from '../realtime/load-commands.js';
import { LoadProcess } from '../realtime/load-fleet.js';
import { cpuSeconds, machineBusySeconds, openFiles, openFilesLimit, rssBytes } from '../realtime/proc-stats.js';
import { seedUsers, USER_PASSWORD } from '../realtime/seed-users.js';

/** What a run is judged on; the defaults are issue 7's, for the XMPP endpoint. */
export interface RealtimeTargets {
  /** (1) Messages delivered per second at full speed (5,000). */
  deliveredPerSecond: number;
  /** (2) The p99 latency, in ms (50), at `pacedRate` messages/s offered (2,500). */
  p99Ms: number;
  pacedRate: number;
  /** (3) Server RSS per idle connection, in KB of 1,000 bytes (50). */
  perConnectionKB: number;
  /** (4) Idle connections held at once (10,000). */
  idleConnections: number;
}

const XMPP_TARGETS: RealtimeTargets = { deliveredPerSecond: 5000, p99Ms: 50, pacedRate: 2500, perConnectionKB: 50, idleConnections: 10_000 };

export interface RealtimeOptions {
  /** Users exchanging messages in the throughput and latency phases (1,000). */
  users?: number;
  /** Idle connections to reach in the capacity phase (the target's). */
  idle?: number;
  /** Offered rate of the latency phase, messages/s (the target's). */
  rate?: number;
  /** Load-generator processes (1: measured to be enough, see the notes). */
  loadProcesses?: number;
  protocol?: string;
  /** The result's name ('realtime-xmpp'). */
  scenario?: string;
  /** What the clients speak, for the description ('XMPP over WebSocket'). */
  label?: string;
  /** How the clients acknowledge what they receive, for the notes. */
  receiptNote?: string;
  targets?: Partial<RealtimeTargets>;
}

const log = (s: string): void => void process.stderr.write(`  realtime: ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const r1 = (n: number): number => Math.round(n * 10) / 10;
const r2 = (n: number): number => Math.round(n * 100) / 100;
const mib = (b: number): number => r1(b / 2 ** 20);

function percentiles(xs: number[]): { p50: number; p90: number; p99: number; max: number; count: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number): number => percentile(s, p);
  return { p50: r2(at(50)), p90: r2(at(90)), p99: r2(at(99)), max: r2(s[s.length - 1] ?? 0), count: s.length };
}

/** Median of a few RSS samples a moment apart: one sample can land mid-GC. */
async function settledRss(pid: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 5; i++) {
    xs.push(rssBytes(pid));
    await sleep(200);
  }
  return xs.sort((a, b) => a - b)[2]!;
}

/** Where the CPU went in a window (after the load's warm-up), in cores: the server, the load processes, everything else on the machine. */
interface CpuSplit {
  server: number;
  load: number;
  /** Other processes (the machine is shared) and kernel time not charged to a process (loopback softirq). */
  rest: number;
}

async function cpuDuring(serverPid: number, loadPids: number[], warmupSeconds: number, seconds: number): Promise<CpuSplit & { bySecond: CpuSplit[] }> {
  await sleep(warmupSeconds * 1000);
  const sample = () => ({ server: cpuSeconds(serverPid), load: loadPids.reduce((n, p) => n + cpuSeconds(p), 0), machine: machineBusySeconds(), at: Date.now() });
  const split = (a: ReturnType<typeof sample>, b: ReturnType<typeof sample>): CpuSplit => {
    const secs = (b.at - a.at) / 1000;
    const server = (b.server - a.server) / secs;
    const load = (b.load - a.load) / secs;
    return { server: r2(server), load: r2(load), rest: r2(Math.max(0, (b.machine - a.machine) / secs - server - load)) };
  };
  // Second by second too, to line up with the latency of each second.
  const samples = [sample()];
  for (let i = 0; i < Math.ceil(seconds); i++) {
    await sleep(Math.min(1000, seconds * 1000 - i * 1000));
    samples.push(sample());
  }
  return { ...split(samples[0]!, samples[samples.length - 1]!), bySecond: samples.slice(1).map((b, i) => split(samples[i]!, b)) };
}

/**
 * Waits (at most `maxSeconds`) for a second in which the rest of the machine uses less than
 * `quietCores`: the two cores are shared, and another process's burst shows up as our latency.
 * Answers how long it waited and how busy the rest of the machine was in the last second.
 */
async function waitForQuiet(ownPids: number[], maxSeconds: number, quietCores = 0.15): Promise<{ waitedSeconds: number; restCores: number }> {
  const t0 = Date.now();
  let rest = 0;
  for (let i = 0; i < maxSeconds; i++) {
    const own = () => ownPids.reduce((n, p) => n + cpuSeconds(p), 0) + process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6;
    const a = { m: machineBusySeconds(), o: own(), at: Date.now() };
    await sleep(1000);
    const secs = (Date.now() - a.at) / 1000;
    rest = r2(Math.max(0, (machineBusySeconds() - a.m - (own() - a.o)) / secs));
    if (rest < quietCores) break;
  }
  return { waitedSeconds: r1((Date.now() - t0) / 1000), restCores: rest };
}

interface Attempt {
  merged: Merged;
  cpu: CpuSplit & { bySecond: CpuSplit[] };
  quiet: { waitedSeconds: number; restCores: number };
  /**
   * Latency of the messages sent in the seconds that other work left alone (that second and the
   * one before it under SPOILED_REST_CORES, since a backlog outlasts its burst): a diagnostic
   * for a shared machine, never what the target is judged on.
   */
  undisturbed: { seconds: number } & ReturnType<typeof percentiles>;
}

/** One traffic phase on every load process, with the CPU split of its window. */
async function traffic(fleet: LoadProcess[], serverPid: number, window: number, warmup: number, command: LoadCommand): Promise<Attempt> {
  const loadPids = fleet.map((p) => p.pid);
  const quiet = await waitForQuiet([serverPid, ...loadPids], 30);
  const cpu = cpuDuring(serverPid, loadPids, warmup, window);
  const rs = await Promise.all(fleet.map((p) => p.ask<TrafficResult>(command, (warmup + window + 30) * 1000)));
  const split = await cpu;
  const calm = (i: number): boolean => (split.bySecond[i]?.rest ?? Infinity) <= SPOILED_REST_CORES;
  const seconds = new Set(split.bySecond.map((_, i) => i).filter((i) => calm(i) && (i === 0 || calm(i - 1))));
  const undisturbed = { seconds: seconds.size, ...percentiles(rs.flatMap((r) => r.latenciesMs.filter((_, i) => seconds.has(r.latencySeconds[i]!)))) };
  return { merged: merge(rs), cpu: split, quiet, undisturbed };
}

// A second in which the rest of the machine took this much CPU spoils the window (our own processes use most of the 2 cores).
const SPOILED_REST_CORES = 0.3;
const ATTEMPTS = 3;

/**
 * Runs a traffic phase until one window had no second in which other work took more than
 * SPOILED_REST_CORES (at most ATTEMPTS times) and keeps that one, or else the least disturbed.
 * Every attempt's headline numbers stay in the result.
 */
async function cleanAttempt(name: string, run: () => Promise<Attempt>): Promise<{ chosen: Attempt; attempts: Record<string, unknown>[] }> {
  const all: Attempt[] = [];
  const worstRest = (a: Attempt): number => Math.max(...a.cpu.bySecond.map((b) => b.rest));
  for (let i = 0; i < ATTEMPTS; i++) {
    const a = await run();
    all.push(a);
    log(`${name} attempt ${i + 1}: ${Math.round(a.merged.delivered / a.merged.seconds)} delivered/s, p99 ${a.merged.latency.p99} ms (${a.undisturbed.p99} ms in ${a.undisturbed.seconds} undisturbed seconds); rest of the machine by second: ${a.cpu.bySecond.map((b) => b.rest).join(' ')}`);
    if (worstRest(a) <= SPOILED_REST_CORES) break;
  }
  const chosen = all.reduce((best, a) => (worstRest(a) < worstRest(best) ? a : best));
  const attempts = all.map((a) => ({
    deliveredPerSecond: Math.round(a.merged.delivered / a.merged.seconds), p50: a.merged.latency.p50, p99: a.merged.latency.p99,
    worstRestCores: worstRest(a), undisturbedSeconds: a.undisturbed.seconds, undisturbedP99: a.undisturbed.p99, chosen: a === chosen,
  }));
  return { chosen, attempts };
}

/** Users dealt round-robin to the load processes: user i goes to process i % n. */
function deal(users: readonly UserCredentials[], n: number): UserCredentials[][] {
  const out: UserCredentials[][] = Array.from({ length: n }, () => []);
  users.forEach((u, i) => out[i % n]!.push(u));
  return out;
}

/** The load processes' windows together: their counts, and percentiles instead of raw latencies. */
interface Merged extends Omit<TrafficResult, 'latenciesMs' | 'latencySeconds' | 'ackLatenciesMs'> {
  latency: ReturnType<typeof percentiles>;
  ackLatency: ReturnType<typeof percentiles>;
  /** p99 and max of the messages sent in each second of the window: shows whether the tail is steady or comes in bursts. */
  bySecond: { second: number; p99: number; max: number }[];
}

function merge(rs: TrafficResult[]): Merged {
  const seconds = rs[0]!.seconds;
  return {
    seconds,
    sent: rs.reduce((n, r) => n + r.sent, 0),
    acked: rs.reduce((n, r) => n + r.acked, 0),
    delivered: rs.reduce((n, r) => n + r.delivered, 0),
    errors: rs.reduce((n, r) => n + r.errors, 0),
    firstError: rs.find((r) => r.firstError)?.firstError ?? null,
    undelivered: rs.reduce((n, r) => n + r.undelivered, 0),
    latency: percentiles(rs.flatMap((r) => r.latenciesMs)),
    ackLatency: percentiles(rs.flatMap((r) => r.ackLatenciesMs)),
    bySecond: Array.from({ length: Math.ceil(seconds) }, (_, second) => {
      const p = percentiles(rs.flatMap((r) => r.latenciesMs.filter((_, i) => r.latencySeconds[i] === second)));
      return { second, p99: p.p99, max: p.max };
    }),
  };
}

/** Logs users in on every load process at once; each process gets its share. */
async function connectAll(fleet: LoadProcess[], users: readonly UserCredentials[], concurrency: number, deadlineMs: number): Promise<ConnectResult> {
  const shares = deal(users, fleet.length);
  const rs = await Promise.all(
    fleet.map((p, i) => p.ask<ConnectResult>({ cmd: 'connect', users: shares[i]!, concurrency, loginTimeoutMs: 15_000, deadlineMs }, deadlineMs + 20_000)),
  );
  return {
    connected: rs.reduce((n, r) => n + r.connected, 0),
    failed: rs.reduce((n, r) => n + r.failed, 0),
    firstError: rs.find((r) => r.firstError)?.firstError ?? null,
    seconds: Math.max(...rs.map((r) => r.seconds)),
    ready: rs.reduce((n, r) => n + r.ready, 0),
  };
}

async function closeAll(fleet: LoadProcess[]): Promise<void> {
  await Promise.all(fleet.map((p) => p.ask({ cmd: 'close-all', concurrency: 200, timeoutMs: 3000 }, 120_000)));
}

/** Timed REST request with the app admin's token; throws unless 200. */
async function restCheck(s: BenchServer, adminToken: string): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`${s.url}/demo/chat/users/u0`, { headers: { authorization: `Bearer ${adminToken}` }, signal: AbortSignal.timeout(5000) });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`GET users/u0 answered ${r.status}`);
  return r2(performance.now() - t0);
}

/**
 * A real-time endpoint under load (issue 7: XMPP over WebSocket; issue 8: the JSON protocol). A server process (`chatvault serve`)
 * and separate load-generator processes holding the client sockets, on 127.0.0.1:
 * (4) idle connections logged in batch by batch up to `idle`, RSS per connection, REST and a
 * message still working at the top; then, with `users` clients, (1) full-speed messages between
 * random pairs and (2) latency at a fixed offered rate.
 */
export async function realtimeXmpp(seconds: number, opts: RealtimeOptions = {}): Promise<ScenarioResult> {
  const targets: RealtimeTargets = { ...XMPP_TARGETS, ...opts.targets };
  const users = opts.users ?? 1000;
  const idleTarget = opts.idle ?? targets.idleConnections;
  const rate = opts.rate ?? targets.pacedRate;
  const nProcs = Math.max(1, opts.loadProcesses ?? 1);
  const protocol = opts.protocol ?? 'xmpp';
  const window = Math.min(Math.max(seconds, 3), 20);
  const warmup = 2;

  const loadAverage = os.loadavg();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cv-bench-rt-'));
  const t0 = Date.now();
  const seeded = await seedUsers(dataDir, Math.max(users, idleTarget));
  log(`seeded ${seeded.users.length} users and tokens in ${r1((Date.now() - t0) / 1000)} s`);
  const s = await startServerOn(dataDir, {}, true);
  const fleet: LoadProcess[] = [];
  try {
    const pid = s.proc.pid!;
    // The REST side of the set-up: the admin token for the checks, and one seeded user
    // logging in with its password through the password grant (its token replaces the seeded one).
    const admin = await call(`${s.url}/management/token`, 'POST', { grant_type: 'password', ...ADMIN });
    const adminToken = admin.access_token as string;
    const viaRest = await call(`${s.url}/demo/chat/token`, 'POST', { grant_type: 'password', username: 'u0', password: USER_PASSWORD });
    const creds = seeded.users.map((u, i) => (i === 0 ? { ...u, token: viaRest.access_token as string } : u));

    for (let i = 0; i < nProcs; i++) fleet.push(LoadProcess.start());
    await Promise.all(fleet.map((p) => p.ask({ cmd: 'init', protocol, baseUrl: s.url, org: seeded.org, app: seeded.app }, 10_000)));
    const limits = { server: openFilesLimit(pid), load: fleet.map((p) => openFilesLimit(p.pid)) };
    log(`open-files limits: server ${limits.server.soft}, load ${limits.load.map((l) => l.soft).join('/')}`);
    // Each socket is one descriptor on either side; keep some for the store, logs and REST.
    const fdRoom = Math.min(limits.server.soft - 200, ...limits.load.map((l) => (l.soft - 200) * nProcs));
    const idleGoal = Math.min(idleTarget, fdRoom);
    if (idleGoal < idleTarget) log(`the open-files limit allows only ${idleGoal} connections: raise it with ulimit -n`);

    // (4) + (3): idle connections, batch by batch, on a server that has carried no traffic yet.
    await restCheck(s, adminToken);
    const rss0 = await settledRss(pid);
    log(`server RSS with no connections: ${mib(rss0)} MiB`);
    const BATCH = 1000;
    const steps: { connections: number; rssMiB: number; batchSeconds: number; serverFds: number; serverCpuSeconds: number; loadCpuSeconds: number }[] = [];
    let held = 0;
    let loginFailures = 0;
    let firstLoginError: string | null = null;
    const idleDeadline = Date.now() + 180_000;
    for (let from = 0; from < idleGoal && Date.now() < idleDeadline; from += BATCH) {
      const batch = creds.slice(from, Math.min(idleGoal, from + BATCH));
      const cpu0 = { server: cpuSeconds(pid), load: fleet.reduce((n, p) => n + cpuSeconds(p.pid), 0) };
      const r = await connectAll(fleet, batch, 50, Math.max(5000, idleDeadline - Date.now()));
      held += r.connected;
      loginFailures += r.failed;
      firstLoginError ??= r.firstError;
      steps.push({ connections: held, rssMiB: mib(rssBytes(pid)), batchSeconds: r2(r.seconds), serverFds: openFiles(pid),
        serverCpuSeconds: r2(cpuSeconds(pid) - cpu0.server), loadCpuSeconds: r2(fleet.reduce((n, p) => n + cpuSeconds(p.pid), 0) - cpu0.load) });
      log(`${held} connections logged in (batch of ${batch.length}: ${r.connected} in ${r2(r.seconds)} s, ${r.failed} failed), server RSS ${steps[steps.length - 1]!.rssMiB} MiB, CPU s server ${steps[steps.length - 1]!.serverCpuSeconds} load ${steps[steps.length - 1]!.loadCpuSeconds}`);
      // A batch that mostly fails means the limit is reached: more would only measure failures.
      if (r.failed > batch.length / 10) break;
    }
    const rssHeld = await settledRss(pid);
    const perConnectionKiB = held > 0 ? r2((rssHeld - rss0) / held / 1024) : 0;
    // The slope after the first batch leaves out what the first logins allocate once (JIT, caches).
    const first = steps[0];
    const slopeKiB = first && held > first.connections ? r2(((rssHeld - first.rssMiB * 2 ** 20) / (held - first.connections)) / 1024) : perConnectionKiB;
    const restMs = await restCheck(s, adminToken).catch((e: unknown) => { log(`REST check failed: ${String(e)}`); return -1; });
    // u0 and u(nProcs) are both on load process 0.
    // A few messages one after another: the first after thousands of logins can be slower than the rest.
    const probes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const p = await fleet[0]!.ask<ProbeResult>({ cmd: 'probe', from: 'u0', to: `u${nProcs}`, timeoutMs: 5000 }, 10_000)
        .catch((e: unknown) => { log(`message check failed: ${String(e)}`); return { ms: -1 }; });
      probes.push(p.ms);
      if (p.ms < 0) break;
    }
    const probe = { ms: probes.includes(-1) ? -1 : [...probes].sort((a, b) => a - b)[Math.floor(probes.length / 2)]!, all: probes };
    const serverRssHeldMiB = mib(rssHeld);
    const loadRssMiB = fleet.map((p) => mib(rssBytes(p.pid)));
    log(`held ${held}: RSS ${serverRssHeldMiB} MiB (${perConnectionKiB} KiB per connection), REST ${restMs} ms, message ${probe.ms} ms (median of ${probe.all.join(', ')})`);
    await closeAll(fleet);
    await sleep(1000);

    // (1) and (2): `users` clients talking.
    const active = await connectAll(fleet, creds.slice(0, users), 50, 60_000);
    if (active.ready < users) throw new Error(`only ${active.ready} of ${users} users logged in: ${active.firstError}`);
    log(`${active.ready} users logged in for traffic`);

    const blastRun = await cleanAttempt('full speed', () => traffic(fleet, pid, window, warmup, { cmd: 'blast', warmupSeconds: warmup, seconds: window, inFlight: 1, ackTimeoutMs: 10_000 }));
    const { merged: blast, cpu: blastServerCpu } = blastRun.chosen;
    const deliveredPerSecond = Math.round(blast.delivered / blast.seconds);
    log(`full speed: ${deliveredPerSecond} delivered/s, ${Math.round(blast.acked / blast.seconds)} acked/s, p50 ${blast.latency.p50} ms, p99 ${blast.latency.p99} ms; CPU cores: server ${blastServerCpu.server}, load ${blastServerCpu.load}, rest of the machine ${blastServerCpu.rest}`);

    const pacedRun = await cleanAttempt('paced', () => traffic(fleet, pid, window, warmup, { cmd: 'paced', warmupSeconds: warmup, seconds: window, rate: rate / nProcs, ackTimeoutMs: 10_000 }));
    const { merged: paced, cpu: pacedServerCpu } = pacedRun.chosen;
    const achieved = Math.round(paced.sent / paced.seconds);
    log(`paced ${rate}/s: achieved ${achieved}/s, delivered ${Math.round(paced.delivered / paced.seconds)}/s, p50 ${paced.latency.p50} ms, p99 ${paced.latency.p99} ms; CPU cores: server ${pacedServerCpu.server}, load ${pacedServerCpu.load}, rest of the machine ${pacedServerCpu.rest}`);
    await closeAll(fleet);
    // What the traffic phases left behind once their messages were stored, delivered and acked.
    const rssAfterTraffic = await settledRss(pid);

    const met = {
      throughput: deliveredPerSecond >= targets.deliveredPerSecond && blast.errors === 0 && blast.undelivered === 0,
      latency: paced.latency.p99 <= targets.p99Ms && achieved >= rate * 0.95 && paced.errors === 0 && paced.undelivered === 0,
      memory: perConnectionKiB <= targets.perConnectionKB * 1000 / 1024,
      capacity: held >= targets.idleConnections && restMs >= 0 && probe.ms >= 0,
    };
    const n = (x: number): string => x.toLocaleString('en-US');
    return {
      scenario: opts.scenario ?? 'realtime-xmpp',
      description: `${opts.label ?? 'XMPP over WebSocket'} (${protocol}): ${users} users messaging random pairs at full speed and at ${rate}/s, then idle connections up to ${idleTarget}; server and ${nProcs} load process(es) on 2 cores, 127.0.0.1`,
      target: `(1) >= ${n(targets.deliveredPerSecond)} delivered/s; (2) p99 <= ${n(targets.p99Ms)} ms at ${n(targets.pacedRate)}/s; (3) <= ${n(targets.perConnectionKB)} KB RSS per idle connection; (4) ${n(targets.idleConnections)} idle connections`,
      met: met.throughput && met.latency && met.memory && met.capacity,
      summary:
        `(1) ${deliveredPerSecond} delivered/s (CPU cores: server ${blastServerCpu.server}, load ${blastServerCpu.load}); ` +
        `(2) at ${achieved}/s p50 ${paced.latency.p50} ms, p99 ${paced.latency.p99} ms (${pacedRun.chosen.undisturbed.p99} ms in the ${pacedRun.chosen.undisturbed.seconds} s other work left alone; CPU cores: server ${pacedServerCpu.server}, load ${pacedServerCpu.load}); ` +
        `(3) ${r1(perConnectionKiB * 1.024)} KB per idle connection; ` +
        `(4) ${held} held, REST ${restMs} ms, message ${probe.ms} ms`,
      result: {
        met,
        throughput: { deliveredPerSecond, ackedPerSecond: Math.round(blast.acked / blast.seconds), ...blast, cpuCores: blastServerCpu, undisturbed: blastRun.chosen.undisturbed, quietBefore: blastRun.chosen.quiet, attempts: blastRun.attempts },
        latency: { offeredPerSecond: rate, achievedPerSecond: achieved, deliveredPerSecond: Math.round(paced.delivered / paced.seconds), ...paced, cpuCores: pacedServerCpu, undisturbed: pacedRun.chosen.undisturbed, quietBefore: pacedRun.chosen.quiet, attempts: pacedRun.attempts },
        memory: { serverRssNoConnectionsMiB: mib(rss0), serverRssHeldMiB, connections: held, perConnectionKiB, perConnectionKiBAfterFirstBatch: slopeKiB, loadRssMiB, serverRssAfterTrafficMiB: mib(rssAfterTraffic) },
        capacity: { goal: idleGoal, held, loginFailures, firstLoginError, restMsAtTop: restMs, messageMsAtTop: probe.ms, messageMsEach: probe.all, steps },
        setup: { loadAverageAtStart: loadAverage.map(r2), users, idleTarget, rate, loadProcesses: nProcs, warmupSeconds: warmup, windowSeconds: window, openFilesLimits: limits },
        notes: [
          'Users and their tokens are written into the data folder before the server starts (one shared password hash, tokens from the server\'s TokenService); user u0 logs in through the REST password grant.',
          'Latency is send frame written -> message frame received, both in the same load process (pairs are drawn within a process).',
          opts.receiptNote ?? 'Every received message is answered with ack B, as the SDKs do.',
          'The 2 cores are shared with other work: each traffic phase first waits (up to 30 s) for a second in which the rest of the machine uses < 0.15 core, and is run again (up to 3 times) when in some second of its window the rest of the machine took > 0.3 core; the least disturbed attempt is reported and all are listed under attempts. cpuCores.bySecond shows where the CPU went second by second (rest = other processes and kernel time not charged to a process).',
          'One load process is the default: it uses about a quarter to a third of what the server uses (cpuCores.load vs server), so a second one would only take CPU from the server; --load-processes N spreads the clients over N processes.',
          'Past about 14,000 connections (--idle) logins slow down about fivefold, in the load process, not the server: Linux picks even ephemeral ports for connect() first (28,232 ports in 32768-60999 here), so one source address to one server port runs out of the cheap ones; the server itself held 19,000 at under 7 KiB each.',
          'Soft open-files limit: the load processes raise theirs to the hard limit themselves; the server inherits the shell\'s, so run `ulimit -n 20000` (or higher) first where the default is 1024.',
        ],
      },
    };
  } finally {
    await Promise.all(fleet.map((p) => p.stop()));
    await s.stop();
  }
}
