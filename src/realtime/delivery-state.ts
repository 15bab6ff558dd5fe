import type { RealtimeMessage } from './realtime-message.js';

/** Whether a message addressed to a user has reached one of the user's clients. */
export type DeliveryStatus = 'delivered' | 'undelivered';

/**
 * Which messages a user has not yet acknowledged (spec §7: "offline" messages). A transport
 * replays `pending()` once the client is ready (XMPP: after the initial presence) and reports the
 * client's acks through the router; `users/{u}/offline_msg_count` and `offline_msg_status` read it.
 * Messages become pending when they are stored (one-to-one and group messages, written with the
 * message; chat rooms have no offline messages in Easemob).
 */
export interface DeliveryState {
  /** The user's undelivered messages with seq above `afterSeq`, oldest first, at most `limit`. */
  pending(appId: number, username: string, afterSeq: bigint, limit: number): Promise<RealtimeMessage[]>;
  /** How many messages wait for the user. */
  count(appId: number, username: string): Promise<number>;
  /** The message's state for the user, or null when it was never addressed to the user. */
  status(appId: number, username: string, msgId: string): Promise<DeliveryStatus | null>;
  /** The user acknowledged these messages; resolves with the ids that were pending. */
  markDelivered(appId: number, username: string, msgIds: readonly string[]): Promise<string[]>;
  /**
   * The user's inbox after a position, for a client that resumes: every one-to-one and group
   * message addressed to the user (delivered or not) with seq above `afterSeq`, oldest first, at
   * most `limit`, and never above the store's high-water mark — so that a client walking it page by
   * page while others write sees every message exactly once. `more` is true when the page is full.
   */
  inbox(appId: number, username: string, afterSeq: bigint, limit: number): Promise<{ messages: RealtimeMessage[]; more: boolean }>;
}

/** Bounds of the in-memory state. */
export interface MemoryDeliveryLimits {
  /** Per user; ejabberd's Easemob deployment kept 100 (spec §7). */
  perUser: number;
  /** Across the node, so that a bulk send to many offline users cannot exhaust memory. */
  total: number;
}

const DEFAULT_LIMITS: MemoryDeliveryLimits = { perUser: 100, total: 50_000 };

/**
 * DeliveryState in this process's memory: lost on restart, one copy per node, bounded (the
 * oldest entries are dropped past the limits), fed by `add`. For unit tests of transports;
 * servers keep the state in the store (StoreDeliveryState).
 */
export class MemoryDeliveryState implements DeliveryState {
  // user key → msgId → message, insertion (= arrival) order.
  private readonly users = new Map<string, Map<string, RealtimeMessage>>();
  private readonly delivered = new Set<string>();
  // user key → every message added for the user, oldest first (bounded like the pending ones).
  private readonly inboxes = new Map<string, RealtimeMessage[]>();
  // Every entry, oldest first, for the node-wide bound: user key + NUL + msgId → user key.
  private readonly order = new Map<string, string>();

  constructor(private readonly limits: MemoryDeliveryLimits = DEFAULT_LIMITS) {}

  /** Records the message as not yet delivered to each of `usernames`. */
  add(message: RealtimeMessage, usernames: readonly string[]): void {
    for (const name of usernames) {
      const k = userKey(message.appId, name);
      let msgs = this.users.get(k);
      if (!msgs) this.users.set(k, (msgs = new Map()));
      if (msgs.has(message.msgId)) continue;
      msgs.set(message.msgId, message);
      let inbox = this.inboxes.get(k);
      if (!inbox) this.inboxes.set(k, (inbox = []));
      inbox.push(message);
      if (inbox.length > this.limits.total) inbox.shift();
      this.order.set(`${k}\0${message.msgId}`, k);
      if (msgs.size > this.limits.perUser) this.drop(k, msgs.keys().next().value!);
    }
    while (this.order.size > this.limits.total) {
      const [entry, k] = this.order.entries().next().value!;
      this.drop(k, entry.slice(k.length + 1));
    }
  }

  async pending(appId: number, username: string, afterSeq: bigint, limit: number): Promise<RealtimeMessage[]> {
    const all = [...(this.users.get(userKey(appId, username))?.values() ?? [])];
    return all.filter((m) => BigInt(m.seq) > afterSeq).slice(0, limit);
  }

  async count(appId: number, username: string): Promise<number> {
    return this.users.get(userKey(appId, username))?.size ?? 0;
  }

  async status(appId: number, username: string, msgId: string): Promise<DeliveryStatus | null> {
    const k = userKey(appId, username);
    if (this.users.get(k)?.has(msgId)) return 'undelivered';
    return this.delivered.has(`${k}\0${msgId}`) ? 'delivered' : null;
  }

  async markDelivered(appId: number, username: string, msgIds: readonly string[]): Promise<string[]> {
    const k = userKey(appId, username);
    const msgs = this.users.get(k);
    if (!msgs) return [];
    const done: string[] = [];
    for (const id of msgIds) {
      if (!msgs.has(id)) continue;
      this.drop(k, id);
      this.delivered.add(`${k}\0${id}`);
      done.push(id);
    }
    return done;
  }

  async inbox(appId: number, username: string, afterSeq: bigint, limit: number): Promise<{ messages: RealtimeMessage[]; more: boolean }> {
    const after = (this.inboxes.get(userKey(appId, username)) ?? []).filter((m) => BigInt(m.seq) > afterSeq);
    return { messages: after.slice(0, limit), more: after.length > limit };
  }

  private drop(k: string, msgId: string): void {
    const msgs = this.users.get(k);
    if (!msgs?.delete(msgId)) return;
    this.order.delete(`${k}\0${msgId}`);
    if (msgs.size === 0) this.users.delete(k);
  }
}

function userKey(appId: number, username: string): string {
  return `${appId}\0${username.toLowerCase()}`;
}
