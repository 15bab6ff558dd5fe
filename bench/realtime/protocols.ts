import type { ChatProtocol } from './chat-client.js';
import { jsonProtocol } from './json-client.js';
import { xmppProtocol } from './xmpp-client.js';

/** The client protocols the load generator can speak, by name (`--protocol`). */
export const PROTOCOLS: Record<string, ChatProtocol> = {
  xmpp: xmppProtocol,
  json: jsonProtocol,
};
