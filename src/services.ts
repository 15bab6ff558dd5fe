import type { Config } from './config.js';
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

/** The domain services and ports one server process works with. */
export interface Services {
  config: Config;
  store: Store;
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
}

/** Wires the domain services over an opened store, with the server's signing key. */
export function buildServices(config: Config, store: Store, key: Buffer, nodeId = 0): Services {
  const apps = new AppCache(store);
  const tokens = new TokenService(key, store, apps);
  const cursors = new CursorCodec(key);
  const groups = new GroupService(store, cursors);
  const users = new UserService(store, tokens, cursors, config.tokenTtlSeconds, (ids) => groups.deleteOwnedBy(ids));
  return {
    config,
    store,
    tokens,
    cursors,
    tenants: new TenantService(store, tokens, config.tokenTtlSeconds, apps),
    users,
    groups,
    contacts: new ContactService(store, users),
    messages: new MessageService(store, new MsgIdGenerator(nodeId), groups, tokens),
    chatQuery: new ChatQueryEngine(store, cursors),
    files: new ChatFileService(store, new FilesystemBlobStore(path.join(config.dataDir, 'files')), config.fileMaxBytes),
    archives: new ArchiveService(store, path.join(config.dataDir, 'archives'), key, config.archiveLinkTtlSeconds, config.archiveTz),
  };
}
