import type { AppRow, Store } from '../store/store.js';
import type { CacheInvalidation } from './cache-invalidation.js';

const TTL_MS = 1000;

/**
 * Apps looked up on every request (path and token), kept for a second. An app changes rarely
 * (credentials, registration mode); changes made through this process are seen at once, changes
 * made on another node (or a CLI with the same REDIS_URL) as soon as the bus brings the notice,
 * and changes made elsewhere within the TTL.
 */
export class AppCache {
  private readonly byName = new Map<string, { app: AppRow | null; at: number }>();
  private readonly byIdMap = new Map<number, { app: AppRow | null; at: number }>();

  constructor(private readonly store: Store, private readonly invalidation: CacheInvalidation, private readonly ttlMs = TTL_MS) {
    invalidation.register('apps', () => this.clearHere());
  }

  /** The app of `/{org}/{app}` (name or uuid), or null. */
  async get(orgName: string, nameOrUuid: string): Promise<AppRow | null> {
    const key = `${orgName.toLowerCase()}\0${nameOrUuid.toLowerCase()}`;
    const hit = this.byName.get(key);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.app;
    const app = await this.store.getApp(orgName, nameOrUuid);
    if (this.byName.size > 10_000) this.byName.clear();
    this.byName.set(key, { app, at: Date.now() });
    return app;
  }

  /** The app with this id, or null. */
  async byId(id: number): Promise<AppRow | null> {
    const hit = this.byIdMap.get(id);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.app;
    const app = await this.store.getAppById(id);
    if (this.byIdMap.size > 10_000) this.byIdMap.clear();
    this.byIdMap.set(id, { app, at: Date.now() });
    return app;
  }

  /** Forgets everything, here and on the other nodes (after this process changed an app). */
  clear(): void {
    this.invalidation.invalidate('apps');
  }

  private clearHere(): void {
    this.byName.clear();
    this.byIdMap.clear();
  }
}
