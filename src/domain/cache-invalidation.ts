import type { Bus, Json, Unsubscribe } from '../bus/bus.js';

/** The node-local caches a change on another node can make stale. */
export type CacheName = 'apps' | 'principals';

const CACHES: readonly CacheName[] = ['apps', 'principals'];

/** The bus channel of invalidation notices: `{ "cache": CacheName }`. */
export const INVALIDATION_CHANNEL = 'cache-invalidation';

/**
 * Keeps node-local caches honest across nodes. A change made here clears the cache here at once
 * and tells the other nodes through the bus; a notice from another node clears the cache here
 * and is not passed on (no loops). Notices can be lost (the bus is at-most-once), so every cache
 * keeps its short TTL as a safety net.
 */
export class CacheInvalidation {
  private readonly clearers = new Map<CacheName, (() => void)[]>();
  private unsubscribe: Unsubscribe | null = null;
  private readonly stats = { sent: 0, applied: 0 };

  constructor(private readonly bus: Bus) {}

  /** Registers how this node clears `cache`. */
  register(cache: CacheName, clear: () => void): void {
    const list = this.clearers.get(cache) ?? [];
    list.push(clear);
    this.clearers.set(cache, list);
  }

  /** This node changed what `cache` holds: clears it here now, and on the other nodes soon. */
  invalidate(cache: CacheName): void {
    this.clearHere(cache);
    this.stats.sent++;
    // Fire and forget: the change is committed already, and a lost notice costs at most the TTL.
    // The Redis bus logs the outage that makes a publish fail.
    this.bus.publish(INVALIDATION_CHANNEL, { cache }).catch(() => {});
  }

  /** Starts applying the other nodes' notices; resolves once subscribed. */
  async start(): Promise<void> {
    this.unsubscribe ??= await this.bus.subscribe(INVALIDATION_CHANNEL, (message, { origin }) => {
      // This node cleared its caches when it published.
      if (origin === this.bus.nodeId) return;
      const cache = cacheOf(message);
      // A name this version does not know comes from a newer node; it has nothing of ours to clear.
      if (cache === null) return;
      this.stats.applied++;
      this.clearHere(cache);
    });
  }

  /** Stops applying notices. */
  async stop(): Promise<void> {
    const u = this.unsubscribe;
    this.unsubscribe = null;
    await u?.();
  }

  /** Notices sent by this node and applied from other nodes, for operators and tests. */
  counts(): { sent: number; applied: number } {
    return { ...this.stats };
  }

  private clearHere(cache: CacheName): void {
    for (const clear of this.clearers.get(cache) ?? []) clear();
  }
}

function cacheOf(message: Json): CacheName | null {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return null;
  const c = message.cache;
  return CACHES.find((n) => n === c) ?? null;
}
