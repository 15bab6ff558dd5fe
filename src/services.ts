import type { Bus } from './bus/bus.js';
import type { Config } from './config.js';
import { CacheInvalidation } from './domain/cache-invalidation.js';
import { ContactService } from './domain/contacts.js';
import { AppCache } from './domain/app-cache.js';
import { CursorCodec } from './domain/cursor.js';
import { ChatFileService } from './domain/files.js';
import path from 'node:path';
import { ArchiveService } from './export/archives.js';
import { ChatQueryEngine } from './export/chat-query.js';
import { FilesystemBlobStore } from './files/blob-store.js';
import { GroupService } from './domain/groups.js';
import { MessageService } from './domain/messages.js';
import { TenantService } from './domain/tenants.js';
import { TokenService } from './domain/tokens.js';
import { UserService } from './domain/users.js';
import type { Store } from './store/store.js';
import { MsgIdGenerator } from './util/ids.js';
import { Realtime } from './realtime/realtime.js';

/** The domain services and ports one server process works with. */
export interface Services {
  config: Config;
  store: Store;
  /** Messages between the nodes of the deployment (in-process without REDIS_URL). */
  bus: Bus;
  /** Clears node-local caches here and on the other nodes after a change. */
  invalidation: CacheInvalidation;
  tokens: TokenService;
  cursors: CursorCodec;
  tenants: TenantService;
  users: UserService;
  groups: GroupService;
  contacts: ContactService;
  messages: MessageService;
  chatQuery: ChatQueryEngine;
  files: ChatFileService;
  archives: ArchiveService;
  /** Real-time delivery core: sessions of this node, router, undelivered messages. */
  realtime: Realtime;
}

/**
 * Wires the domain services over an opened store and bus, with the server's signing key.
 * Invalidations from other nodes apply once `invalidation.start()` resolved.
 */
export function buildServices(config: Config, store: Store, key: Buffer, bus: Bus, nodeId = 0): Services {
  const invalidation = new CacheInvalidation(bus);
  const apps = new AppCache(store, invalidation);
  const tokens = new TokenService(key, store, apps, invalidation);
  const cursors = new CursorCodec(key);
  const groups = new GroupService(store, cursors);
  const realtimeError = (context: string, e: unknown): void => {
    if (config.logLevel !== 'silent') process.stderr.write(`chatvault realtime: ${context}: ${e instanceof Error ? e.message : String(e)}\n`);
  };
  // Without Redis the node is alone: nobody else to tell.
  const realtime = new Realtime(store, bus, { crossNode: config.redisUrl !== null, onError: realtimeError });
  const users = new UserService(store, tokens, cursors, config.tokenTtlSeconds, (ids) => groups.deleteOwnedBy(ids), async (appId, names) => {
    for (const name of names) await realtime.router.closeUser(appId, name, 'removed');
  });
  const contacts = new ContactService(store, users);
  // Both sides' connected clients see the change as a roster push (spec §8), wherever it came from.
  contacts.onChange = (app, a, b, subscription) => {
    for (const [to, contact] of [[a, b], [b, a]] as const) {
      realtime.router.signal(app.id, to.username, { kind: 'contact', to: to.username, contact: contact.username, subscription })
        .catch((e: unknown) => realtimeError('contact change', e));
    }
  };
  return {
    config,
    store,
    bus,
    invalidation,
    tokens,
    cursors,
    tenants: new TenantService(store, tokens, config.tokenTtlSeconds, apps),
    users,
    groups,
    contacts,
    messages: new MessageService(store, new MsgIdGenerator(nodeId), groups, tokens, (rows, seqs) => realtime.router.routeStored(rows, seqs)),
    chatQuery: new ChatQueryEngine(store, cursors),
    files: new ChatFileService(store, store.sharedBlobStore() ?? new FilesystemBlobStore(path.join(config.dataDir, 'files')), config.fileMaxBytes),
    archives: new ArchiveService(store, path.join(config.dataDir, 'archives'), key, config.archiveLinkTtlSeconds, config.archiveTz),
    realtime,
  };
}

/**
 * Closes what buildServices was given: real-time sessions first (closed with 'shutdown'), then the
 * bus (no handler runs against a closed store, and notices published by the last requests still go
 * out), then the store, even when the bus fails.
 */
export async function closeServices(s: Services): Promise<void> {
  try {
    await s.realtime.stop();
    await s.bus.close();
  } finally {
    await s.store.close();
  }
}
