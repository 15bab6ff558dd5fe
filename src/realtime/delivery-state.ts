import type { AckedMessage } from '../store/store.js';
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
  /** The user acknowledged these messages; resolves with those that were pending (with their senders, for receipts). */
  markDelivered(appId: number, username: string, msgIds: readonly string[]): Promise<AckedMessage[]>;
  /**
   * The user's inbox after a position, for a client that resumes: every one-to-one and group
   * message addressed to the user (delivered or not) with seq above `afterSeq`, oldest first, at
   * most `limit`, and never above the store's high-water mark — so that a client walking it page by
   * page while others write sees every message exactly once. `more` is true when the page is full.
   */
  inbox(appId: number, username: string, afterSeq: bigint, limit: number): Promise<{ messages: RealtimeMessage[]; more: boolean }>;
}
