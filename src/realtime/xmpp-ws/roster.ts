import { createHash } from 'node:crypto';
import { ApiError } from '../../errors.js';
import type { PresenceType } from '../realtime-signal.js';
import { parseAddress, userJid, type Address, type SessionContext } from './session-context.js';
import * as S from './stanzas.js';
import { child, elements, text, xml, type XmlElement } from './xml.js';

/**
 * Contacts over XMPP (spec §8): the roster is the REST contacts store (every friend is
 * `subscription="both"`, friendship being mutual), and the subscription handshake of the
 * Easemob SDKs (`subscribe`, then `subscribed` plus a reverse `subscribe` marked `[resp:true]`)
 * makes or ends friendships in that store. Pushes to both users come from ContactService's
 * change hook, so REST changes and socket changes look the same to clients.
 */

// Status texts ride along with subscription requests; SDKs send a short reason.
const MAX_STATUS_CHARS = 1024;

/** The roster version: changes whenever the contact list does (RFC 6121 §2.6). */
export function rosterVersion(contacts: readonly string[]): string {
  return createHash('sha1').update([...contacts].map((c) => c.toLowerCase()).sort().join('\n')).digest('hex');
}

/** A `jabber:iq:roster` get or set. */
export async function rosterIq(c: SessionContext, el: XmlElement, query: XmlElement): Promise<void> {
  const me = S.fullJid(c.identity);
  const id = el.attrs.id;
  const error = (type: S.ErrorType, condition: string): void => c.send(S.iqError(id, type, condition, me));
  // One's own roster only (RFC 6121 §2.1.3: `to` absent or the user's bare JID).
  if (el.attrs.to !== undefined && el.attrs.to.toLowerCase() !== userJid(c, c.user.username).toLowerCase()) return error('auth', 'forbidden');
  const contacts = await c.s.contacts.list(c.app, c.user.username);
  if (el.attrs.type === 'get') {
    const ver = rosterVersion(contacts);
    // The client's cached copy is current: an empty result (RFC 6121 §2.6.3).
    if (query.attrs.ver === ver) return c.send(S.iqResult(id, undefined, me));
    const items = contacts.map((name) => xml('item', { jid: userJid(c, name), name, subscription: 'both' }));
    return c.send(xml('iq', { xmlns: S.NS.client, type: 'result', id, to: me }, xml('query', { xmlns: S.NS.roster, ver }, ...items)));
  }
  const items = elements(query);
  if (items.length !== 1 || items[0]!.name !== 'item') return error('modify', 'bad-request');
  const item = items[0]!;
  const peer = parseAddress(item.attrs.jid, c);
  if (!peer || peer.kind !== 'user' || peer.resource !== null) return error('modify', 'bad-request');
  // Friends are made by the subscription handshake (or REST), which asks the other side; a
  // roster set could only add a one-sided contact, which the store has no place for.
  if (item.attrs.subscription !== 'remove') return error('cancel', 'not-allowed');
  if (!contacts.some((n) => n.toLowerCase() === peer.name.toLowerCase())) return error('cancel', 'item-not-found');
  try {
    await c.s.contacts.remove(c.app, c.user.username, peer.name);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return error('cancel', 'item-not-found');
    throw e;
  }
  c.send(S.iqResult(id, undefined, me));
}

/**
 * A subscription presence to another user (`subscribe`, `subscribed`, `unsubscribe`,
 * `unsubscribed`). `askedBy` holds the users who asked this session for a subscription: only
 * they can be accepted (or declined), so nobody is made someone's friend unasked.
 */
export async function subscriptionPresence(c: SessionContext, el: XmlElement, type: PresenceType, peer: Address, askedBy: Set<string>): Promise<void> {
  const me = S.fullJid(c.identity);
  const peerJid = userJid(c, peer.name);
  const error = (errType: S.ErrorType, condition: string, message?: string): void => c.send(S.presenceError(peerJid, me, el.attrs.id, errType, condition, message));
  if (peer.name.toLowerCase() === c.user.username.toLowerCase()) return error('modify', 'bad-request', 'one cannot subscribe to oneself');
  const target = await c.s.store.getUser(c.app.id, peer.name);
  if (!target || target.username.toLowerCase() !== peer.name.toLowerCase()) return error('cancel', 'item-not-found', `no user ${peer.name}`);
  const statusEl = child(el, 'status');
  const status = statusEl ? text(statusEl).slice(0, MAX_STATUS_CHARS) : undefined;
  const friends = (await c.s.contacts.list(c.app, c.user.username)).some((n) => n.toLowerCase() === target.username.toLowerCase());
  const asked = askedBy.has(target.username.toLowerCase());
  if (type === 'subscribed') {
    if (!asked && !friends) return error('cancel', 'not-allowed', `${target.username} did not ask`);
    askedBy.delete(target.username.toLowerCase());
    if (!friends) await c.s.contacts.add(c.app, c.user.username, target.username);
  } else if (type === 'unsubscribed' || type === 'unsubscribe') {
    // Declining a request, or ending a friendship; anything else would only be noise for the peer.
    if (!asked && !friends) return;
    askedBy.delete(target.username.toLowerCase());
    if (friends) await c.s.contacts.remove(c.app, c.user.username, target.username);
  }
  const signal = { kind: 'presence', presence: type, from: c.user.username, to: target.username } as const;
  await c.s.realtime.router.signal(c.app.id, target.username, status === undefined ? signal : { ...signal, status });
}
