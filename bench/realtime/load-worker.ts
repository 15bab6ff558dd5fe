import { performance } from 'node:perf_hooks';
import type { ChatClient, ChatProtocol, IncomingChat } from './chat-client.js';
import type { ConnectResult, LoadCommand, LoadReply, LoadRequest, ProbeResult, TrafficResult } from './load-commands.js';
import { PROTOCOLS } from './protocols.js';

/*
 * One load-generator process: holds its share of the clients and runs what the scenario asks
 * over the IPC channel. Pairs are drawn among this process's own clients, so that a send time
 * and the matching receive time come from the same clock.
 */

if (!process.send) throw new Error('load-worker runs as a child process with an IPC channel');

let protocol: ChatProtocol | null = null;
let target = { baseUrl: '', org: '', app: '' };
const clients: ChatClient[] = [];
const byName = new Map<string, ChatClient>();

// What the current traffic phase listens for: message texts are `<phase>:<send time>`.
interface Listener {
  phase: string;
  from: number;
  to: number;
  windowDelivered: number;
  receivedOfWindow: number;
  latencies: number[];
  /** The second of the window each latency's message was sent in (parallel to `latencies`). */
  seconds: number[];
}
let listener: Listener | null = null;
const probes = new Map<string, (m: IncomingChat) => void>();

function onIncoming(m: IncomingChat): void {
  const colon = m.text.indexOf(':');
  if (colon < 0) return;
  const phase = m.text.slice(0, colon);
  const probe = probes.get(m.text);
  if (probe) return probe(m);
  const l = listener;
  if (!l || phase !== l.phase) return;
  const sentAt = Number(m.text.slice(colon + 1));
  if (m.receivedAt >= l.from && m.receivedAt < l.to) l.windowDelivered++;
  if (sentAt >= l.from && sentAt < l.to) {
    l.receivedOfWindow++;
    l.latencies.push(Math.round((m.receivedAt - sentAt) * 100) / 100);
    l.seconds.push(Math.floor((sentAt - l.from) / 1000));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function readyClients(): ChatClient[] {
  return clients.filter((c) => c.ready);
}

async function connect(c: Extract<LoadCommand, { cmd: 'connect' }>): Promise<ConnectResult> {
  if (!protocol) throw new Error('init first');
  const p = protocol;
  const t0 = Date.now();
  const deadline = t0 + c.deadlineMs;
  let next = 0;
  let connected = 0;
  let failed = 0;
  let firstError: string | null = null;
  const lane = async (): Promise<void> => {
    while (next < c.users.length && Date.now() < deadline) {
      const u = c.users[next++]!;
      const client = p.create({ ...target, username: u.username, token: u.token });
      client.onMessage(onIncoming);
      try {
        await client.connect(c.loginTimeoutMs);
        clients.push(client);
        byName.set(u.username, client);
        connected++;
      } catch (e) {
        failed++;
        firstError ??= e instanceof Error ? e.message : String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, c.concurrency) }, lane));
  return { connected, failed, firstError, seconds: (Date.now() - t0) / 1000, ready: readyClients().length };
}

function pick<T>(xs: readonly T[]): T {
  return xs[Math.floor(Math.random() * xs.length)]!;
}

/** A random peer other than `self` (the pool has at least two). */
function peer(pool: readonly ChatClient[], self: ChatClient): ChatClient {
  for (let i = 0; i < 8; i++) {
    const p = pick(pool);
    if (p !== self) return p;
  }
  return pool[(pool.indexOf(self) + 1) % pool.length]!;
}

interface Tally {
  sent: number;
  acked: number;
  errors: number;
  firstError: string | null;
  ackLatencies: number[];
}

function tally(): Tally {
  return { sent: 0, acked: 0, errors: 0, firstError: null, ackLatencies: [] };
}

/** Sends one message of the phase, counting it in the window when it was sent inside it. */
function sendOne(from: ChatClient, to: ChatClient, phase: string, l: Listener, t: Tally, ackTimeoutMs: number): Promise<void> {
  const at = performance.now();
  const inWindow = at >= l.from && at < l.to;
  if (inWindow) t.sent++;
  return from.send(to.username, `${phase}:${at.toFixed(3)}`, ackTimeoutMs).then(
    (a) => {
      if (!inWindow) return;
      t.acked++;
      t.ackLatencies.push(Math.round((a.ackedAt - at) * 100) / 100);
    },
    (e: unknown) => {
      t.errors++;
      t.firstError ??= e instanceof Error ? e.message : String(e);
    },
  );
}

/** Waits until nothing is in flight and the window's messages stopped arriving (bounded). */
async function drain(l: Listener, t: Tally, pool: readonly ChatClient[], maxMs: number): Promise<void> {
  const end = Date.now() + maxMs;
  let last = -1;
  while (Date.now() < end) {
    const busy = pool.some((c) => c.inFlight > 0);
    if (!busy && l.receivedOfWindow >= t.acked) return;
    if (!busy && l.receivedOfWindow === last) {
      await sleep(200);
      if (l.receivedOfWindow === last) return;
    }
    last = l.receivedOfWindow;
    await sleep(50);
  }
}

function result(l: Listener, t: Tally, seconds: number): TrafficResult {
  return {
    seconds,
    sent: t.sent,
    acked: t.acked,
    delivered: l.windowDelivered,
    errors: t.errors,
    firstError: t.firstError,
    undelivered: Math.max(0, t.acked - l.receivedOfWindow),
    latenciesMs: l.latencies,
    latencySeconds: l.seconds,
    ackLatenciesMs: t.ackLatencies,
  };
}

let phaseNo = 0;

function startPhase(name: string, warmupSeconds: number, seconds: number): Listener {
  const from = performance.now() + warmupSeconds * 1000;
  const l: Listener = { phase: `${name}${++phaseNo}`, from, to: from + seconds * 1000, windowDelivered: 0, receivedOfWindow: 0, latencies: [], seconds: [] };
  listener = l;
  return l;
}

async function blast(c: Extract<LoadCommand, { cmd: 'blast' }>): Promise<TrafficResult> {
  const pool = readyClients();
  if (pool.length < 2) throw new Error(`need two logged-in clients, have ${pool.length}`);
  const l = startPhase('b', c.warmupSeconds, c.seconds);
  const t = tally();
  const loop = async (self: ChatClient): Promise<void> => {
    // Bounded by time; a failed send (socket gone) ends this client's loop.
    while (performance.now() < l.to && self.ready) {
      const before = t.errors;
      await sendOne(self, peer(pool, self), l.phase, l, t, c.ackTimeoutMs);
      if (t.errors > before) return;
    }
  };
  await Promise.all(pool.flatMap((self) => Array.from({ length: c.inFlight }, () => loop(self))));
  await drain(l, t, pool, 5000);
  listener = null;
  return result(l, t, c.seconds);
}

async function paced(c: Extract<LoadCommand, { cmd: 'paced' }>): Promise<TrafficResult> {
  const pool = readyClients();
  if (pool.length < 2) throw new Error(`need two logged-in clients, have ${pool.length}`);
  const l = startPhase('p', c.warmupSeconds, c.seconds);
  const t = tally();
  const start = performance.now();
  let offered = 0;
  const sends: Promise<void>[] = [];
  // The schedule is by elapsed time, so a late tick sends what it owes (no coordinated omission).
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      if (now >= l.to) {
        clearInterval(timer);
        return resolve();
      }
      const due = Math.floor(((now - start) / 1000) * c.rate) - offered;
      for (let i = 0; i < due; i++) {
        const from = pick(pool);
        sends.push(sendOne(from, peer(pool, from), l.phase, l, t, c.ackTimeoutMs));
      }
      offered += Math.max(0, due);
    }, 2);
  });
  await Promise.all(sends);
  await drain(l, t, pool, 5000);
  listener = null;
  return result(l, t, c.seconds);
}

async function probe(c: Extract<LoadCommand, { cmd: 'probe' }>): Promise<ProbeResult> {
  const from = byName.get(c.from);
  const to = byName.get(c.to);
  if (!from?.ready || !to?.ready) throw new Error(`probe users ${c.from} → ${c.to} are not both logged in here`);
  const text = `probe:${performance.now().toFixed(3)}`;
  const t0 = performance.now();
  const got = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      probes.delete(text);
      reject(new Error(`probe message not received within ${c.timeoutMs} ms`));
    }, c.timeoutMs);
    probes.set(text, (m) => {
      clearTimeout(timer);
      probes.delete(text);
      resolve(m.receivedAt - t0);
    });
  });
  await from.send(to.username, text, c.timeoutMs);
  return { ms: Math.round((await got) * 100) / 100 };
}

async function closeAll(c: Extract<LoadCommand, { cmd: 'close-all' }>): Promise<{ closed: number }> {
  const all = clients.splice(0);
  byName.clear();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < all.length) await all[next++]!.close(c.timeoutMs);
  };
  await Promise.all(Array.from({ length: Math.max(1, c.concurrency) }, lane));
  return { closed: all.length };
}

async function run(command: LoadCommand): Promise<unknown> {
  switch (command.cmd) {
    case 'init': {
      const p = PROTOCOLS[command.protocol];
      if (!p) throw new Error(`unknown protocol ${command.protocol}; known: ${Object.keys(PROTOCOLS).join(', ')}`);
      protocol = p;
      target = { baseUrl: command.baseUrl, org: command.org, app: command.app };
      return { pid: process.pid };
    }
    case 'connect':
      return connect(command);
    case 'blast':
      return blast(command);
    case 'paced':
      return paced(command);
    case 'probe':
      return probe(command);
    case 'close-all':
      return closeAll(command);
    case 'exit':
      setImmediate(() => process.exit(0));
      return {};
  }
}

process.on('message', (raw: LoadRequest) => {
  run(raw.command).then(
    (result) => process.send!({ id: raw.id, ok: true, result } satisfies LoadReply),
    (e: unknown) => process.send!({ id: raw.id, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies LoadReply),
  );
});
// The scenario going away (crash, Ctrl-C) must not leave thousands of sockets behind.
process.on('disconnect', () => process.exit(0));
