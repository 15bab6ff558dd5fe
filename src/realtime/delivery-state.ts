import type { RealtimeMessage } from './realtime-message.js';

/**
 * Which messages a user has not yet acknowledged (spec §7: "offline" messages). A transport
 * replays `pending()` after login and calls `markDelivered()` on the client's ack (XMPP ack B);
 * `users/{u}/offline_msg_count` and `offline_msg_status` can read it.
 */
export interface DeliveryState {
  /** Records the message as not yet delivered to each of `usernames`. */
  add(message: RealtimeMessage, usernames: readonly string[]): void;
  /** The user's undelivered messages, oldest first. */
  pending(appId: number, username: string): RealtimeMessage[];
  /** How many messages wait for the user. */
  count(appId: number, username: string): number;
  /** Whether the message waits for the user. */
  isPending(appId: number, username: string, msgId: string): boolean;
  /** The user acknowledged these messages; returns the ids that were pending. */
  markDelivered(appId: number, username: string, msgIds: readonly string[]): string[];
}

/** Bounds of the in-memory state. */
export interface MemoryDeliveryLimits {
  /** Per user; ejabberd's Easemob deployment kept 100 (spec §7). */
  perUser: number;
  /** Across the node, so that a bulk send to many offline users cannot exhaust memory. */
  total: number;
}

// Kept small while the state lives in memory: every send to an offline user adds an entry, so the
// node-wide bound is what keeps a busy server's memory flat (about 25 MB of records at most).
const DEFAULT_LIMITS: MemoryDeliveryLimits = { perUser: 100, total: 50_000 };

/**
 * DeliveryState in this process's memory.
 *
 * LIMITATIONS (why a later step should persist it in the store):
 * - **Lost on restart.** Undelivered messages are still in the store (nothing is lost from the
 *   export), but after a restart nobody knows they were undelivered: no replay, counts start at 0.
 * - **Bounded.** Past `perUser` for one user, or `total` for the node, the oldest entries are
 *   dropped silently (as ejabberd's `max_user_offline_messages` did): a user long offline misses
 *   the oldest messages on replay.
 * - **One copy per node.** Each node keeps its own copy, fed by the router's bus messages and
 *   acks; a node that was down or disconnected from the bus when a message or ack went out keeps
 *   a different picture (the bus is at-most-once).
 */
export class MemoryDeliveryState implements DeliveryState {
  // user key → msgId → message, insertion (= arrival) order.
  private readonly users = new Map<string, Map<string, RealtimeMessage>>();
  // Every entry, oldest first, for the node-wide bound: user key + NUL + msgId → user key.
  private readonly order = new Map<string, string>();

  constructor(private readonly limits: MemoryDeliveryLimits = DEFAULT_LIMITS) {}

  add(message: RealtimeMessage, usernames: readonly string[]): void {
    for (const name of usernames) {
      const k = userKey(message.appId, name);
      let msgs = this.users.get(k);
      if (!msgs) this.users.set(k, (msgs = new Map()));
      if (msgs.has(message.msgId)) continue;
      msgs.set(message.msgId, message);
      this.order.set(`${k}\0${message.msgId}`, k);
      if (msgs.size > this.limits.perUser) this.drop(k, msgs.keys().next().value!);
    }
    while (this.order.size > this.limits.total) {
      const [entry, k] = this.order.entries().next().value!;
      this.drop(k, entry.slice(k.length + 1));
    }
  }

  pending(appId: number, username: string): RealtimeMessage[] {
    return [...(this.users.get(userKey(appId, username))?.values() ?? [])];
  }

  count(appId: number, username: string): number {
    return this.users.get(userKey(appId, username))?.size ?? 0;
  }

  isPending(appId: number, username: string, msgId: string): boolean {
    return this.users.get(userKey(appId, username))?.has(msgId) ?? false;
  }

  markDelivered(appId: number, username: string, msgIds: readonly string[]): string[] {
    const k = userKey(appId, username);
    const msgs = this.users.get(k);
    if (!msgs) return [];
    const done: string[] = [];
    for (const id of msgIds) {
      if (!msgs.has(id)) continue;
      this.drop(k, id);
      done.push(id);
    }
    return done;
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
