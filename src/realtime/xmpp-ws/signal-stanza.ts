import { MsgIdGenerator } from '../../util/ids.js';
import type { RealtimeSignal } from '../realtime-signal.js';
import { userJid, type BoundSession } from './session-context.js';
import * as S from './stanzas.js';
import { esc, xml } from './xml.js';

// Relayed receipts get ids of their own, numeric like message ids (spec §6: "relayed by the
// server with its own new id"); they are never stored, so a per-process sequence is enough.
const relayIds = new MsgIdGenerator();
let pushes = 0;

/**
 * The stanza a signal becomes for this session, built from the signal alone (any transport or
 * node may have emitted it): receipts as §6 C/D, presence from the contact's bare JID, contact
 * changes as roster pushes (§8).
 */
export function signalStanza(signal: RealtimeSignal, b: BoundSession): string {
  const me = S.fullJid(b.identity);
  switch (signal.kind) {
    case 'receipt': {
      const name = signal.receipt === 'delivered' ? 'delivery' : 'acked';
      return xml('message', { xmlns: S.NS.client, from: userJid(b, signal.from), to: me, id: relayIds.next(Date.now()) },
        xml('body', {}, esc(signal.msgId)), xml(name, { xmlns: S.NS.receipts, id: signal.msgId }));
    }
    case 'presence': {
      const type = signal.presence === 'available' ? undefined : signal.presence;
      const status = signal.status === undefined ? [] : [xml('status', {}, esc(signal.status))];
      return S.presence({ from: userJid(b, signal.from), to: me, type }, ...status);
    }
    case 'contact':
      return rosterPush(b, signal.contact, signal.subscription);
  }
}

/** A roster push (RFC 6121 §2.1.6) from the user's bare JID; the client answers with a result we ignore. */
export function rosterPush(b: BoundSession, contact: string, subscription: 'both' | 'remove'): string {
  const item = xml('item', { jid: userJid(b, contact), name: subscription === 'both' ? contact : undefined, subscription });
  return xml('iq', { xmlns: S.NS.client, type: 'set', id: `push${++pushes}`, from: userJid(b, b.user.username), to: S.fullJid(b.identity) },
    xml('query', { xmlns: S.NS.roster }, item));
}
