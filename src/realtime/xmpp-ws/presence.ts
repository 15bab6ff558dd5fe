import type { PresenceType } from '../realtime-signal.js';
import { roomPresence } from './muc.js';
import { subscriptionPresence } from './roster.js';
import { parseAddress, userJid, type SessionContext } from './session-context.js';
import * as S from './stanzas.js';
import { child, text, type XmlElement } from './xml.js';

/** What a presence can change on its connection. */
export interface PresenceHooks {
  /** The initial (or an updated) available presence. */
  available(status: string | undefined): Promise<void>;
  /** The client went unavailable without closing the stream. */
  unavailable(status: string | undefined): Promise<void>;
  /** Users who asked this session for a subscription (lower-cased). */
  askedBy: Set<string>;
}

const SUBSCRIPTION_TYPES: readonly string[] = ['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed'] satisfies PresenceType[];
const MAX_STATUS_CHARS = 1024;

/**
 * A `<presence>` from a bound client: without `to`, the user's own availability (the first one
 * opens delivery, spec §4.5); to a user, a subscription step (§8); to a room, MUC (§9).
 */
export async function handlePresence(c: SessionContext, el: XmlElement, hooks: PresenceHooks): Promise<void> {
  const me = S.fullJid(c.identity);
  const type = el.attrs.type;
  const to = el.attrs.to;
  const error = (from: string, errType: S.ErrorType, condition: string, message: string): void => c.send(S.presenceError(from, me, el.attrs.id, errType, condition, message));
  // Clients do not probe (the server does) and errors are not answered (RFC 6120 §8.3.1).
  if (type === 'probe' || type === 'error') return;
  const statusEl = child(el, 'status');
  const status = statusEl ? text(statusEl).slice(0, MAX_STATUS_CHARS) : undefined;
  if (to === undefined || to.toLowerCase() === userJid(c, c.user.username).toLowerCase()) {
    if (type === undefined) return hooks.available(status);
    if (type === 'unavailable') return hooks.unavailable(status);
    return error(c.domain, 'modify', 'bad-request', `presence type ${type} needs a 'to'`);
  }
  const address = parseAddress(to, c);
  if (!address) return error(to, 'modify', 'jid-malformed', `not an address of app ${S.appkey(c.identity)}: ${to}`);
  if (address.kind === 'room') return roomPresence(c, el, address, type);
  if (type !== undefined && SUBSCRIPTION_TYPES.includes(type)) return subscriptionPresence(c, el, type as PresenceType, address, hooks.askedBy);
  // Directed availability to one user: contacts get the user's presence anyway; nothing to do.
  if (type === undefined || type === 'unavailable') return;
  return error(to, 'modify', 'bad-request', `unknown presence type ${type}`);
}
