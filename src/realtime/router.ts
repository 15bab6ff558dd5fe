import type { Bus, Json, Unsubscribe } from '../bus/bus.js';
import type { AckedMessage, NewMessage, Store } from '../store/store.js';
import type { DeliveryState } from './delivery-state.js';
import { fromStored, parseRealtimeMessage, toJsonMessage, type RealtimeMessage } from './realtime-message.js';
import { parseSignal, signalJson, type RealtimeSignal } from './realtime-signal.js';
import type { CloseReason, SessionRegistry } from './session-registry.js';

/** Bus channel of routed messages: `{ routes: [{ message, recipients }] }`. */
export const DELIVER_CHANNEL = 'realtime:deliver';

/** Bus channel of signals for one user's sessions: `{ appId, username, signal }`. */
export const SIGNAL_CHANNEL = 'realtime:signal';
/** Bus channel of kicks: `{ appId, username, reason }` closes the user's sessions on every node. */
export const CLOSE_CHANNEL = 'realtime:close';

/** One message and the users it is for. */
export interface Route {
  message: RealtimeMessage;
  /** Lower-cased user names. */
  recipients: string[];
  /** Parallel to `recipients`: NewMessage.inboxPrevious, where the store knows it (this node's own sends). */
  previous?: bigint[];
}

export interface RouterOptions {
  /**
   * Whether other nodes may exist (a shared bus). Without them the bus would only echo each
   * message back to this node, which ignores it: skipping the publish saves a JSON round trip
   * per message on the single-node send path.
   */
  crossNode: boolean;
  /** Hears what fire-and-forget routing could not do (a store read failing, the bus refusing). */
  onError?: (context: string, error: unknown) => void;
}

/**
 * Sends stored messages to their recipients' sessions: this node's directly, the other nodes'
 * through the bus (each node delivers only to its own sessions). Whether a recipient acked a
 * message is the store's (DeliveryState), which every node shares.
 */
export class Router {
  private subscriptions: Unsubscribe[] = [];
  private readonly onError: (context: string, error: unknown) => void;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly sessions: SessionRegistry,
    private readonly delivery: DeliveryState,
    private readonly options: RouterOptions,
  ) {
    this.onError = options.onError ?? (() => {});
  }

  /**
   * Routes messages that are durable already, without making the caller wait: the sender's
   * answer never depends on delivery, and a routing failure only costs the live push (the
   * message stays in the store and the export).
   */
  routeStored(rows: readonly NewMessage[], seqs: readonly bigint[]): void {
    if (rows.length === 0) return;
    this.route(rows, seqs).catch((e: unknown) => this.onError('routing stored messages', e));
  }

  /**
   * Delivers here and tells the other nodes. One-to-one and group messages know their
   * recipients and are handed over at once, in the order they were stored; chat rooms'
   * recipients are their members now, looked up first.
   */
  private async route(rows: readonly NewMessage[], seqs: readonly bigint[]): Promise<void> {
    const routes: Route[] = [];
    let rooms: RealtimeMessage[] | null = null;
    for (const [i, row] of rows.entries()) {
      const message = fromStored(row, seqs[i]!);
      if (row.recipients) routes.push({ message, recipients: row.recipients, previous: row.inboxPrevious });
      else if (row.chatType === 'chatroom') (rooms ??= []).push(message);
    }
    // Here first, without waiting for the bus: this node's own echo is ignored (no double delivery).
    this.apply(routes);
    if (rooms) {
      const roomRoutes: Route[] = [];
      for (const message of rooms) roomRoutes.push({ message, recipients: await this.roomMembers(message) });
      this.apply(roomRoutes);
      routes.push(...roomRoutes);
    }
    if (this.options.crossNode) {
      const payload: Json = { routes: routes.map((r) => ({ message: toJsonMessage(r.message), recipients: r.recipients })) };
      await this.bus.publish(DELIVER_CHANNEL, payload);
    }
  }

  /**
   * The user acknowledged messages (XMPP ack B, JSON `delivered`): recorded in the store every
   * node reads; resolves with those that were pending, with their senders.
   */
  ack(appId: number, username: string, msgIds: readonly string[]): Promise<AckedMessage[]> {
    return this.delivery.markDelivered(appId, username, msgIds);
  }

  /** Hands a receipt, presence or contact change to the user's sessions on every node. */
  async signal(appId: number, username: string, signal: RealtimeSignal): Promise<void> {
    this.sessions.signal(appId, username, signal);
    if (this.options.crossNode) await this.bus.publish(SIGNAL_CHANNEL, { appId, username: username.toLowerCase(), signal: signalJson(signal) });
  }

  /** Closes the user's sessions on every node (an operator's kick, a deactivation). */
  async closeUser(appId: number, username: string, reason: Extract<CloseReason, 'removed'>): Promise<void> {
    this.sessions.closeUser(appId, username, reason);
    if (this.options.crossNode) await this.bus.publish(CLOSE_CHANNEL, { appId, username: username.toLowerCase(), reason });
  }

  /** Starts handling the other nodes' messages and acks; resolves once subscribed. */
  async start(): Promise<void> {
    if (this.subscriptions.length > 0 || !this.options.crossNode) return;
    this.subscriptions = await Promise.all([
      this.bus.subscribe(DELIVER_CHANNEL, (m, { origin }) => {
        if (origin !== this.bus.nodeId) this.apply(parseRoutes(m));
      }),
      this.bus.subscribe(SIGNAL_CHANNEL, (m, { origin }) => {
        if (origin === this.bus.nodeId || typeof m !== 'object' || m === null || Array.isArray(m)) return;
        const signal = parseSignal(m.signal);
        if (signal && typeof m.appId === 'number' && typeof m.username === 'string') this.sessions.signal(m.appId, m.username, signal);
      }),
      this.bus.subscribe(CLOSE_CHANNEL, (m, { origin }) => {
        if (origin === this.bus.nodeId || typeof m !== 'object' || m === null || Array.isArray(m)) return;
        if (typeof m.appId === 'number' && typeof m.username === 'string' && m.reason === 'removed') this.sessions.closeUser(m.appId, m.username, 'removed');
      }),
    ]);
  }

  /** Stops handling the other nodes' messages. */
  async stop(): Promise<void> {
    const subs = this.subscriptions;
    this.subscriptions = [];
    await Promise.all(subs.map((u) => u()));
  }

  private apply(routes: readonly Route[]): void {
    // Undelivered one-to-one and group messages are in the store's inboxes already (written
    // with the message); chat rooms have none, as in Easemob: only present members get them.
    for (const { message, recipients, previous } of routes) {
      for (let i = 0; i < recipients.length; i++) this.sessions.deliver(message.appId, recipients[i]!, message, previous?.[i]);
    }
  }

  private async roomMembers(m: RealtimeMessage): Promise<string[]> {
    const [group] = await this.store.getGroups(m.appId, 'room', [m.to]);
    // Deleted between the send and now: nobody to deliver to.
    if (!group) return [];
    const sender = m.from.toLowerCase();
    return (await this.store.groupMembers(group.id)).map((g) => g.username.toLowerCase()).filter((u) => u !== sender);
  }
}

function parseRoutes(m: Json): Route[] {
  if (typeof m !== 'object' || m === null || Array.isArray(m) || !Array.isArray(m.routes)) return [];
  const out: Route[] = [];
  for (const r of m.routes) {
    if (typeof r !== 'object' || r === null || Array.isArray(r) || !Array.isArray(r.recipients)) continue;
    const message = parseRealtimeMessage(r.message);
    if (message) out.push({ message, recipients: r.recipients.filter((u): u is string => typeof u === 'string') });
  }
  return out;
}
