import type { Config } from './config.js';
import { CursorCodec } from './domain/cursor.js';
import { ChatQueryEngine } from './export/chat-query.js';
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
  messages: MessageService;
  chatQuery: ChatQueryEngine;
}

/** Wires the domain services over an opened store, with the server's signing key. */
export function buildServices(config: Config, store: Store, key: Buffer, nodeId = 0): Services {
  const tokens = new TokenService(key, store);
  const cursors = new CursorCodec(key);
  return {
    config,
    store,
    tokens,
    cursors,
    tenants: new TenantService(store, tokens, config.tokenTtlSeconds),
    users: new UserService(store, tokens, cursors, config.tokenTtlSeconds),
    messages: new MessageService(store, new MsgIdGenerator(nodeId)),
    chatQuery: new ChatQueryEngine(store, cursors),
  };
}
