import type { RealtimeMessage } from './realtime-message.js';
import type { RealtimeSignal } from './realtime-signal.js';

/**
 * Why a session is closed by the core: replaced by a login with the same resource (XMPP stream
 * error `conflict`, "Replaced by new connection"), removed by an operator, or the node stopping.
 */
export type CloseReason = 'conflict' | 'removed' | 'shutdown';

/**
 * What a transport (XMPP over WebSocket, our JSON protocol) hands the core for one connected
 * client. The core calls these; it never touches a socket itself.
 */
export interface SessionTransport {
  /**
   * Sends one message to the client; must not block (queue or drop inside the transport).
   * `previous`, when known, is the seq of the user's inbox row just before this message
   * (NewMessage.inboxPrevious): a client that has everything up to it can take this one at once.
   */
  deliver(message: RealtimeMessage, previous?: bigint): void;
  /** Hands the client a receipt, presence or contact change; must not block. */
  signal(signal: RealtimeSignal): void;
  /** Ends the connection, telling the client why; the transport then calls `unregister()`. */
  close(reason: CloseReason): void;
}

/** Who a session belongs to. */
export interface SessionKey {
  appId: number;
  /** Compared lower-cased, like every user name. */
  username: string;
  /** XMPP resource (`webim`, `mobile`, …): one session per resource. */
  resource: string;
}

/** The handle a transport keeps for its session. */
export interface Registration {
  readonly key: SessionKey;
  /** Removes the session unless it was already replaced or removed; true if it removed it. */
  unregister(): boolean;
}

/**
 * The sessions connected to this node (not to the deployment: each node knows only its own;
 * the router reaches the others through the bus).
 */
export class SessionRegistry {
  // app id + NUL + lower-cased user name → resource → transport.
  private readonly users = new Map<string, Map<string, SessionTransport>>();
  private total = 0;

  /** Hears a user's first session on this node (`true`) and the end of its last (`false`). */
  onPresence: (appId: number, username: string, online: boolean) => void = () => {};

  /** `onError` hears what a transport callback threw; one broken session must not stop a fan-out. */
  constructor(private readonly onError: (error: unknown) => void = () => {}) {}

  /** Registers a session; a session already holding the same resource is closed with 'conflict'. */
  register(key: SessionKey, transport: SessionTransport): Registration {
    const k = userKey(key.appId, key.username);
    let byResource = this.users.get(k);
    if (!byResource) {
      this.users.set(k, (byResource = new Map()));
      this.safely(() => this.onPresence(key.appId, key.username, true));
    }
    const old = byResource.get(key.resource);
    byResource.set(key.resource, transport);
    if (old) this.safely(() => old.close('conflict'));
    else this.total++;
    const frozen: SessionKey = { appId: key.appId, username: key.username.toLowerCase(), resource: key.resource };
    return { key: frozen, unregister: () => this.remove(k, key.resource, transport) };
  }

  /** Whether the user has at least one session on this node. */
  isOnline(appId: number, username: string): boolean {
    return this.users.has(userKey(appId, username));
  }

  /** The user's resources connected to this node. */
  resources(appId: number, username: string): string[] {
    return [...(this.users.get(userKey(appId, username))?.keys() ?? [])];
  }

  /** Hands the message to every session of the user on this node; returns how many took it. */
  deliver(appId: number, username: string, message: RealtimeMessage, previous?: bigint): number {
    return this.each(appId, username, (t) => t.deliver(message, previous));
  }

  /** Hands the signal to every session of the user on this node; returns how many took it. */
  signal(appId: number, username: string, signal: RealtimeSignal): number {
    return this.each(appId, username, (t) => t.signal(signal));
  }

  private each(appId: number, username: string, f: (t: SessionTransport) => void): number {
    const byResource = this.users.get(userKey(appId, username));
    if (!byResource) return 0;
    // Most users have one session: no copy and no loop for them.
    if (byResource.size === 1) return this.safely(() => f(byResource.values().next().value!)) ? 1 : 0;
    let n = 0;
    // A copy: a transport may unregister (or a login replace) a session from inside the call.
    for (const t of [...byResource.values()]) if (this.safely(() => f(t))) n++;
    return n;
  }

  /** Users with at least one session on this node, as (app id, lower-cased name) pairs. */
  *onlineUsers(): IterableIterator<{ appId: number; username: string }> {
    for (const k of this.users.keys()) {
      const i = k.indexOf('\0');
      yield { appId: Number(k.slice(0, i)), username: k.slice(i + 1) };
    }
  }

  /** Closes every session of a user ('removed': an operator's kick) or of the node ('shutdown'). */
  closeUser(appId: number, username: string, reason: CloseReason): number {
    const k = userKey(appId, username);
    const byResource = this.users.get(k);
    if (!byResource) return 0;
    this.users.delete(k);
    this.total -= byResource.size;
    this.safely(() => this.onPresence(appId, username, false));
    for (const t of byResource.values()) this.safely(() => t.close(reason));
    return byResource.size;
  }

  /** Closes every session of this node. */
  closeAll(reason: CloseReason): void {
    const all = [...this.users.values()];
    this.users.clear();
    this.total = 0;
    for (const byResource of all) for (const t of byResource.values()) this.safely(() => t.close(reason));
  }

  /** Sessions connected to this node. */
  get size(): number {
    return this.total;
  }

  private remove(k: string, resource: string, transport: SessionTransport): boolean {
    const byResource = this.users.get(k);
    // Identity, not the key: a replaced session's late unregister must not remove its successor.
    if (!byResource || byResource.get(resource) !== transport) return false;
    byResource.delete(resource);
    this.total--;
    if (byResource.size === 0) {
      this.users.delete(k);
      const i = k.indexOf('\0');
      this.safely(() => this.onPresence(Number(k.slice(0, i)), k.slice(i + 1), false));
    }
    return true;
  }

  private safely(f: () => void): boolean {
    try {
      f();
      return true;
    } catch (e) {
      this.onError(e);
      return false;
    }
  }
}

function userKey(appId: number, username: string): string {
  return `${appId}\0${username.toLowerCase()}`;
}
