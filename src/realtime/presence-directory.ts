import type { Bus, Json, Unsubscribe } from '../bus/bus.js';
import type { SessionRegistry } from './session-registry.js';

/** Bus channel of who is connected where: `{op: 'up'|'down', appId, username}`, `{op: 'snapshot', users}`, `{op: 'ask'}`, `{op: 'gone'}`. */
export const PRESENCE_CHANNEL = 'realtime:presence';

export interface PresenceOptions {
  /** Whether other nodes may exist (a shared bus); alone, only this node's sessions count. */
  crossNode: boolean;
  /** How often each node repeats its whole list (a node that missed a change catches up). */
  snapshotMs?: number;
  onError?: (context: string, error: unknown) => void;
}

const DEFAULT_SNAPSHOT_MS = 10_000;

/**
 * Whether a user has a session on any node (`GET /users/{u}/status`). Each node announces its
 * users' first connect and last disconnect on the bus and repeats its whole list every few
 * seconds; a node that falls silent for three rounds (it died without saying so) stops counting.
 * Nothing is written to the store: presence is as live as the connections themselves.
 */
export class PresenceDirectory {
  // node id → its users (app id + NUL + lower-cased name) and when it was last heard from.
  private readonly remote = new Map<string, { users: Set<string>; heard: number }>();
  private subscription: Unsubscribe | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly snapshotMs: number;
  private readonly onError: (context: string, error: unknown) => void;

  constructor(private readonly bus: Bus, private readonly sessions: SessionRegistry, private readonly options: PresenceOptions) {
    this.snapshotMs = options.snapshotMs ?? DEFAULT_SNAPSHOT_MS;
    this.onError = options.onError ?? (() => {});
  }

  /** Whether the user has at least one session on this or another live node. */
  isOnline(appId: number, username: string): boolean {
    if (this.sessions.isOnline(appId, username)) return true;
    const k = key(appId, username);
    const alive = Date.now() - 3 * this.snapshotMs;
    for (const [node, n] of this.remote) {
      if (n.heard < alive) this.remote.delete(node);
      else if (n.users.has(k)) return true;
    }
    return false;
  }

  /** Announces a user's first session on this node (`true`) or the end of its last (`false`). */
  changed(appId: number, username: string, online: boolean): void {
    if (!this.options.crossNode) return;
    this.publish({ op: online ? 'up' : 'down', appId, username: username.toLowerCase() });
  }

  /** Starts listening to the other nodes, asks them for their lists, and repeats this node's. */
  async start(): Promise<void> {
    if (!this.options.crossNode || this.subscription) return;
    this.subscription = await this.bus.subscribe(PRESENCE_CHANNEL, (m, { origin }) => {
      if (origin !== this.bus.nodeId) this.heard(origin, m);
    });
    this.publish({ op: 'ask' });
    this.timer = setInterval(() => this.publish(this.snapshot()), this.snapshotMs);
    this.timer.unref();
  }

  /** Tells the other nodes this node's sessions are gone, and stops listening. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const sub = this.subscription;
    this.subscription = null;
    if (!sub) return;
    await this.bus.publish(PRESENCE_CHANNEL, { op: 'gone' }).catch((e: unknown) => this.onError('announcing a stop', e));
    await sub();
  }

  private heard(origin: string, m: Json): void {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return;
    if (m.op === 'ask') return this.publish(this.snapshot());
    if (m.op === 'gone') {
      this.remote.delete(origin);
      return;
    }
    let node = this.remote.get(origin);
    if (!node) this.remote.set(origin, (node = { users: new Set(), heard: 0 }));
    node.heard = Date.now();
    if (m.op === 'snapshot' && Array.isArray(m.users)) {
      node.users = new Set(m.users.filter((u): u is string => typeof u === 'string'));
    } else if ((m.op === 'up' || m.op === 'down') && typeof m.appId === 'number' && typeof m.username === 'string') {
      if (m.op === 'up') node.users.add(key(m.appId, m.username));
      else node.users.delete(key(m.appId, m.username));
    }
  }

  private snapshot(): Json {
    const users: string[] = [];
    for (const u of this.sessions.onlineUsers()) users.push(key(u.appId, u.username));
    return { op: 'snapshot', users };
  }

  private publish(m: Json): void {
    this.bus.publish(PRESENCE_CHANNEL, m).catch((e: unknown) => this.onError('announcing presence', e));
  }
}

function key(appId: number, username: string): string {
  return `${appId}\0${username.toLowerCase()}`;
}
