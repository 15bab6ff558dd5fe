import { Redis, type RedisOptions } from 'ioredis';
import { busClosed, checkChannel, stderrBusLogger, toJson, type Bus, type BusHandler, type BusLogger, type Json, type Unsubscribe } from './bus.js';
import { newNodeId } from './node-id.js';
import { Subscriptions } from './subscriptions.js';

/** How a RedisBus connects. */
export interface RedisBusOptions {
  /** `redis://[user:password@]host:port` or `rediss://…` (TLS). */
  url: string;
  /** Separates deployments that share one Redis: channels are named `chatvault:<namespace>:<channel>`. */
  namespace: string;
  nodeId?: string;
  /** Longest start() waits for both connections before failing (default 5000 ms). */
  connectTimeoutMs?: number;
  log?: BusLogger;
}

/** Redis could not be reached when the bus started. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
}

interface ConnectionState {
  /** Both connections were ready once: from now on failures are retried, not fatal. */
  started: boolean;
  /** close() began: connection losses are expected. */
  closing: boolean;
}

// The wire format of one message; `v` lets a newer node change it during a rolling upgrade.
// (A type, not an interface, so that it is a Json value.)
type Envelope = {
  v: 1;
  /** The origin node id. */
  o: string;
  /** The message. */
  m: Json;
};

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
// Longest close() waits for Redis to acknowledge QUIT (and earlier publishes) before cutting the socket.
const QUIT_TIMEOUT_MS = 2000;

/**
 * The bus over Redis pub/sub: one connection publishes, one subscribes (a subscribed Redis
 * connection can do nothing else). ioredis reconnects both after a failure and re-subscribes the
 * channels; what is published while a connection is down is lost (at-most-once, see Bus).
 * Pub/sub ignores the database number of the URL, hence the namespace in the channel names.
 */
export class RedisBus implements Bus {
  readonly nodeId: string;
  private readonly prefix: string;
  private readonly subs: Subscriptions;
  // The SUBSCRIBE of each channel, awaited by every subscribe() of that channel until it is answered.
  private readonly subscribing = new Map<string, Promise<unknown>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly state: ConnectionState,
    opts: RedisBusOptions,
    private readonly log: BusLogger,
  ) {
    this.nodeId = opts.nodeId ?? newNodeId();
    this.prefix = `chatvault:${opts.namespace}:`;
    this.subs = new Subscriptions(log);
    sub.on('message', (channel: string, text: string) => this.received(channel, text));
  }

  /**
   * Connects both connections, or fails within the timeout with a RedisUnavailableError naming
   * REDIS_URL: a node that cannot reach its bus would silently serve stale caches.
   */
  static async connect(opts: RedisBusOptions): Promise<RedisBus> {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(opts.namespace)) throw new TypeError(`not a bus namespace: '${opts.namespace}'`);
    const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const log = opts.log ?? stderrBusLogger;
    const nodeId = opts.nodeId ?? newNodeId();
    const state: ConnectionState = { started: false, closing: false };
    const options: RedisOptions = {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      // No retries while starting (fail the start instead); after that, retry for as long as it takes.
      retryStrategy: (times) => (state.started ? Math.min(times * 100, 2000) : null),
      // Shows which node holds a connection in `CLIENT LIST`.
      connectionName: `chatvault-${nodeId}`.replace(/[^A-Za-z0-9_.-]/g, '_'),
    };
    // The publisher fails a publish at once while disconnected rather than queueing it: a late
    // message is worth little, and an outage must not pile up memory.
    const pub = new Redis(opts.url, { ...options, enableOfflineQueue: false });
    // The subscriber queues (UN)SUBSCRIBE while reconnecting, so that subscribe() during an outage takes effect after it.
    const sub = new Redis(opts.url, options);
    const errors: Error[] = [];
    // One warning per outage and connection, not one per reconnect attempt.
    const watch = (r: Redis, role: string) => {
      let down = false;
      r.on('error', (e: Error) => {
        // Without a listener ioredis prints every connection error to the console.
        if (!state.started) errors.push(e);
        else if (!down && !state.closing) log.warn(`Redis ${role} connection failed (${redacted(opts.url)}); reconnecting`, e);
        if (state.started) down = true;
      });
      r.on('close', () => {
        if (state.started && !down && !state.closing) log.warn(`Redis ${role} connection closed (${redacted(opts.url)}); reconnecting`);
        if (state.started) down = true;
      });
      r.on('ready', () => {
        if (down) log.info(`Redis ${role} connection is back (${redacted(opts.url)})`);
        down = false;
      });
    };
    watch(pub, 'publisher');
    watch(sub, 'subscriber');

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([Promise.all([pub.connect(), sub.connect()]), timeout]);
    } catch (e) {
      pub.disconnect();
      sub.disconnect();
      // ioredis rejects with "Connection is closed."; the cause came as an 'error' event.
      const cause = errors[0] ?? (e instanceof Error ? e : new Error(String(e)));
      throw new RedisUnavailableError(`cannot reach Redis at ${redacted(opts.url)} (REDIS_URL): ${cause.message}`, { cause });
    } finally {
      clearTimeout(timer);
    }
    state.started = true;
    return new RedisBus(pub, sub, state, { ...opts, nodeId }, log);
  }

  /** Publishes to the namespaced channel; resolves once Redis accepted it. */
  async publish(channel: string, message: Json): Promise<void> {
    if (this.closing) throw busClosed();
    checkChannel(channel);
    const envelope: Envelope = { v: 1, o: this.nodeId, m: message };
    const p = this.pub.publish(this.prefix + channel, toJson(envelope));
    // close() lets publishes already handed over finish before it quits.
    this.inFlight.add(p);
    try {
      await p;
    } finally {
      this.inFlight.delete(p);
    }
  }

  /** Subscribes; resolves once Redis confirmed the channel's SUBSCRIBE. */
  async subscribe(channel: string, handler: BusHandler): Promise<Unsubscribe> {
    if (this.closing) throw busClosed();
    checkChannel(channel);
    const { entry, first } = this.subs.add(channel, handler);
    if (first) this.subscribing.set(channel, this.sub.subscribe(this.prefix + channel));
    try {
      await this.subscribing.get(channel);
    } catch (e) {
      if (this.subs.remove(channel, entry)) this.subscribing.delete(channel);
      throw e;
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      if (!this.subs.remove(channel, entry)) return;
      this.subscribing.delete(channel);
      // A subscribe() of the same channel after this one sends its SUBSCRIBE after this
      // UNSUBSCRIBE on the same connection, so the channel ends up subscribed.
      if (!this.closing) await this.sub.unsubscribe(this.prefix + channel);
    };
  }

  /** Stops deliveries, lets accepted publishes finish, and quits both connections. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.state.closing = true;
    this.subs.clear();
    await Promise.all([quit(this.pub, [...this.inFlight]), quit(this.sub, [])]);
  }

  private received(fullChannel: string, text: string): void {
    if (this.closing || !fullChannel.startsWith(this.prefix)) return;
    const channel = fullChannel.slice(this.prefix.length);
    if (!this.subs.has(channel)) return;
    const env = parseEnvelope(text);
    if (!env) {
      this.log.warn(`ignored a malformed message on channel ${channel} (not a chatvault bus message)`);
      return;
    }
    this.subs.deliver(channel, env.m, env.o);
  }
}

function parseEnvelope(text: string): Envelope | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const e = v as Record<string, unknown>;
  if (e.v !== 1 || typeof e.o !== 'string' || !('m' in e)) return null;
  return { v: 1, o: e.o, m: e.m as Json };
}

/** Quits one connection gracefully when it is up, and cuts it when it is not or QUIT takes too long. */
async function quit(r: Redis, pending: Promise<unknown>[]): Promise<void> {
  if (r.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, QUIT_TIMEOUT_MS)));
    // QUIT goes after the publishes already written, and Redis answers them in order.
    const done = Promise.allSettled([...pending, r.quit()]);
    await Promise.race([done, late]);
    clearTimeout(timer);
  }
  r.disconnect();
}

/** The URL without its credentials, for messages. */
export function redacted(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
