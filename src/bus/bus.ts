/** A value that survives a JSON round trip: what a bus message may carry. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Facts about one delivered message. */
export interface Delivery {
  channel: string;
  /** The node id of the bus that published it (this node's own id for its own messages). */
  origin: string;
}

/** Receives the messages of a channel. A throw or rejection is logged and changes nothing else. */
export type BusHandler = (message: Json, delivery: Delivery) => void | Promise<void>;

/** Stops one handler's deliveries; calling it again does nothing. */
export type Unsubscribe = () => Promise<void>;

/** Where a bus tells the operator what it cannot throw to a caller (handler failures, lost connections). */
export interface BusLogger {
  warn(context: string, error?: Error): void;
  info(context: string): void;
}

/**
 * The Bus port: fire-and-forget messages between the nodes of one deployment (cache
 * invalidation now, real-time delivery later).
 *
 * Delivery semantics, the same for every adapter:
 * - **Everywhere, here included.** A message published on a channel reaches every handler
 *   subscribed to that channel on every node of the deployment, the publishing node's own
 *   handlers included (a handler that must ignore its own node compares `delivery.origin` with
 *   `nodeId`). Deployments are isolated from each other (adapters namespace their channels).
 * - **At most once.** Nothing is stored or retried: a node that is disconnected, starting or
 *   stopping when a message is published never sees it. Consumers keep their own safety net
 *   (a cache TTL, a re-read of the store) for lost messages.
 * - **Per-publisher order.** Messages published by one bus reach each handler in the order
 *   they were published (across channels too); messages of different nodes interleave freely.
 * - **Never re-entrant.** Handlers run later, on their own turn of the event loop, never inside
 *   `publish()`. A handler's returned promise is not awaited: the next message does not wait
 *   for it. Handlers of one node share one parsed message and must not change it.
 * - **A new message object per node.** The message is carried as JSON, so what arrives is a
 *   copy (with JSON's losses: `undefined` fields vanish, `NaN` becomes `null`).
 */
export interface Bus {
  /** This node's id, carried as the origin of every message it publishes. */
  readonly nodeId: string;
  /** Sends `message` to the subscribers of `channel` on every node; rejects if the transport refuses it now. */
  publish(channel: string, message: Json): Promise<void>;
  /** Calls `handler` for the channel's messages; resolves once the subscription is active everywhere. */
  subscribe(channel: string, handler: BusHandler): Promise<Unsubscribe>;
  /** Stops every delivery and releases connections after sending what was published; idempotent. */
  close(): Promise<void>;
}

/** The error of a bus used after close(). */
export function busClosed(): Error {
  return new Error('the bus is closed');
}

/** Checks a channel name (any non-empty string without control characters). */
export function checkChannel(channel: string): void {
  // Control characters would make channel names unreadable in `PUBSUB CHANNELS` and logs.
  // eslint-disable-next-line no-control-regex
  if (typeof channel !== 'string' || channel === '' || /[\u0000-\u001f\u007f]/.test(channel)) {
    throw new TypeError(`not a bus channel name: ${JSON.stringify(channel)}`);
  }
}

/** The JSON text of a message; throws a TypeError for what JSON cannot carry (a cycle, a bare `undefined`). */
export function toJson(message: Json): string {
  const text: string | undefined = JSON.stringify(message);
  if (text === undefined) throw new TypeError('a bus message must be a JSON value');
  return text;
}

/** Logs bus warnings on stderr: the default when no logger is given. */
export const stderrBusLogger: BusLogger = {
  warn(context, error) {
    process.stderr.write(`chatvault bus: ${context}${error ? `: ${error.message}` : ''}\n`);
  },
  info() {},
};
