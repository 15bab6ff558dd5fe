import type { Json } from '../bus/bus.js';

/**
 * Events for a user's sessions that are not stored messages: receipts, presence, contact-list
 * changes. Transport-neutral (each transport renders them in its own frames) and plain JSON, so
 * the bus carries them to the nodes the recipient is connected to unchanged.
 */
export type RealtimeSignal =
  /** `from` got (delivered) or read the message `msgId` that `to` sent it (XMPP receipts C and D). */
  | { kind: 'receipt'; receipt: 'delivered' | 'read'; msgId: string; from: string; to: string }
  /**
   * A presence from `from` to `to`: availability (`available`/`unavailable`, with an optional
   * status text) or a subscription step (XMPP `subscribe`, `subscribed`, … with its status text).
   */
  | { kind: 'presence'; presence: PresenceType; from: string; to: string; status?: string }
  /** `to`'s contact list changed: `contact` is now a friend (`both`) or no longer (`remove`). */
  | { kind: 'contact'; to: string; contact: string; subscription: 'both' | 'remove' };

export type PresenceType = 'available' | 'unavailable' | 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

const PRESENCE_TYPES: readonly string[] = ['available', 'unavailable', 'subscribe', 'subscribed', 'unsubscribe', 'unsubscribed'] satisfies PresenceType[];

const str = (v: Json | undefined): v is string => typeof v === 'string' && v.length <= 4096;

/** A RealtimeSignal read back from a bus message, or null when it is not one (a newer node's shape). */
export function parseSignal(v: Json | undefined): RealtimeSignal | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  if (v.kind === 'receipt') {
    const { receipt, msgId, from, to } = v;
    if ((receipt !== 'delivered' && receipt !== 'read') || !str(msgId) || !str(from) || !str(to)) return null;
    return { kind: 'receipt', receipt, msgId, from, to };
  }
  if (v.kind === 'presence') {
    const { presence, from, to, status } = v;
    if (!str(presence) || !PRESENCE_TYPES.includes(presence) || !str(from) || !str(to) || (status !== undefined && !str(status))) return null;
    const p: RealtimeSignal = { kind: 'presence', presence: presence as PresenceType, from, to };
    if (status !== undefined) p.status = status;
    return p;
  }
  if (v.kind === 'contact') {
    const { to, contact, subscription } = v;
    if (!str(to) || !str(contact) || (subscription !== 'both' && subscription !== 'remove')) return null;
    return { kind: 'contact', to, contact, subscription };
  }
  return null;
}

/** The bus form of a signal (a plain JSON object). */
export function signalJson(s: RealtimeSignal): Json {
  return { ...s };
}
