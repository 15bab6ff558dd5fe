import { busClosed, checkChannel, stderrBusLogger, toJson, type Bus, type BusHandler, type BusLogger, type Json, type Unsubscribe } from './bus.js';
import { newNodeId } from './node-id.js';
import { Subscriptions } from './subscriptions.js';

interface Queued {
  channel: string;
  text: string;
}

/**
 * The in-process bus, the default when no Redis is configured: one node, so "every node" is
 * this one. It keeps the semantics of the Redis bus (JSON copies, delivery on a later turn of
 * the event loop, per-publisher order) so that code written against it behaves the same on
 * several nodes.
 */
export class LocalBus implements Bus {
  readonly nodeId: string;
  private readonly subs: Subscriptions;
  private queue: Queued[] = [];
  private scheduled: NodeJS.Immediate | null = null;
  private closed = false;

  constructor(opts: { nodeId?: string; log?: BusLogger } = {}) {
    this.nodeId = opts.nodeId ?? newNodeId();
    this.subs = new Subscriptions(opts.log ?? stderrBusLogger);
  }

  /** Queues the message for this process's subscribers. */
  async publish(channel: string, message: Json): Promise<void> {
    if (this.closed) throw busClosed();
    checkChannel(channel);
    // Serialized now, so that the publisher changing its object afterwards changes nothing.
    this.queue.push({ channel, text: toJson(message) });
    // setImmediate rather than a microtask: like a network round trip, it lets I/O run first, and
    // a handler that publishes again cannot starve the event loop.
    this.scheduled ??= setImmediate(() => this.drain());
  }

  /** Adds a handler; active at once. */
  async subscribe(channel: string, handler: BusHandler): Promise<Unsubscribe> {
    if (this.closed) throw busClosed();
    checkChannel(channel);
    const { entry } = this.subs.add(channel, handler);
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      this.subs.remove(channel, entry);
    };
  }

  /** Drops queued messages and handlers. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = null;
    this.queue = [];
    this.subs.clear();
  }

  private drain(): void {
    this.scheduled = null;
    // Messages published by handlers during this drain wait for the next turn.
    const batch = this.queue;
    this.queue = [];
    for (const q of batch) {
      if (this.closed) return;
      if (!this.subs.has(q.channel)) continue;
      this.subs.deliver(q.channel, JSON.parse(q.text) as Json, this.nodeId);
    }
  }
}
