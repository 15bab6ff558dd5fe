import type { BusHandler, BusLogger, Json } from './bus.js';

/** One subscribe() call: the same function subscribed twice is two entries, unsubscribed one by one. */
export interface Entry {
  readonly handler: BusHandler;
}

/** The handlers of each channel on one node, and their error-isolated delivery (shared by the bus adapters). */
export class Subscriptions {
  private readonly byChannel = new Map<string, Set<Entry>>();

  constructor(private readonly log: BusLogger) {}

  /** Adds a handler; `first` tells whether the channel had none before (the adapter must subscribe). */
  add(channel: string, handler: BusHandler): { entry: Entry; first: boolean } {
    let set = this.byChannel.get(channel);
    const first = set === undefined;
    if (!set) this.byChannel.set(channel, (set = new Set()));
    const entry: Entry = { handler };
    set.add(entry);
    return { entry, first };
  }

  /** Removes a handler; true when that left the channel without any (the adapter may unsubscribe). */
  remove(channel: string, entry: Entry): boolean {
    const set = this.byChannel.get(channel);
    if (!set || !set.delete(entry)) return false;
    if (set.size > 0) return false;
    this.byChannel.delete(channel);
    return true;
  }

  /** True when some handler listens on the channel. */
  has(channel: string): boolean {
    return this.byChannel.has(channel);
  }

  /** The channels with handlers. */
  channels(): string[] {
    return [...this.byChannel.keys()];
  }

  /** Calls the channel's handlers; one failing is logged and does not keep the others from running. */
  deliver(channel: string, message: Json, origin: string): void {
    const set = this.byChannel.get(channel);
    if (!set) return;
    const delivery = { channel, origin };
    // A handler may unsubscribe itself or others while the message is being delivered.
    for (const entry of [...set]) {
      if (!set.has(entry)) continue;
      try {
        const r = entry.handler(message, delivery);
        if (r instanceof Promise) r.catch((e: unknown) => this.failed(channel, e));
      } catch (e) {
        this.failed(channel, e);
      }
    }
  }

  /** Drops every handler (the bus is closing). */
  clear(): void {
    this.byChannel.clear();
  }

  private failed(channel: string, e: unknown): void {
    this.log.warn(`a handler of channel ${channel} failed`, e instanceof Error ? e : new Error(String(e)));
  }
}
