import type { RealtimeMessage } from '../realtime-message.js';
import { esc, xml } from './xml.js';

/** Builders of what the server sends, in the shapes the Easemob web SDKs read (spec §4–§6, §10). */

export const NS = {
  framing: 'urn:ietf:params:xml:ns:xmpp-framing',
  stream: 'http://etherx.jabber.org/streams',
  streams: 'urn:ietf:params:xml:ns:xmpp-streams',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  bind: 'urn:ietf:params:xml:ns:xmpp-bind',
  session: 'urn:ietf:params:xml:ns:xmpp-session',
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  client: 'jabber:client',
  ping: 'urn:xmpp:ping',
  receipts: 'urn:xmpp:receipts',
  roomtype: 'easemob:x:roomtype',
  delay: 'urn:xmpp:delay',
  roster: 'jabber:iq:roster',
  muc: 'http://jabber.org/protocol/muc',
  mucUser: 'http://jabber.org/protocol/muc#user',
  mucAdmin: 'http://jabber.org/protocol/muc#admin',
  discoItems: 'http://jabber.org/protocol/disco#items',
} as const;

/** Who a bound session is, for building JIDs (spec §3). */
export interface Identity {
  org: string;
  app: string;
  /** As stored (the JSON body and JIDs carry the stored spelling). */
  username: string;
  resource: string;
  domain: string;
}

/** `{org}#{app}`: the appkey that prefixes every localpart. */
export function appkey(id: Pick<Identity, 'org' | 'app'>): string {
  return `${id.org}#${id.app}`;
}

export function bareJid(id: Omit<Identity, 'resource'>, username = id.username): string {
  return `${appkey(id)}_${username}@${id.domain}`;
}

export function fullJid(id: Identity): string {
  return `${bareJid(id)}/${id.resource}`;
}

/** The stream header; the SDK wants it as a frame of its own (spec §4.2). */
export function openStream(domain: string, streamId: string): string {
  return xml('open', { xmlns: NS.framing, from: domain, id: streamId, version: '1.0', 'xml:lang': 'en' });
}

export function closeStream(): string {
  return xml('close', { xmlns: NS.framing });
}

/** Features before authentication: SASL PLAIN only. */
export function saslFeatures(): string {
  return xml('stream:features', { 'xmlns:stream': NS.stream }, xml('mechanisms', { xmlns: NS.sasl }, xml('mechanism', {}, 'PLAIN')));
}

/** Features after the restart: bind (web 1.4.13–1.4.15 fail without it) and session. */
export function bindFeatures(): string {
  return xml('stream:features', { 'xmlns:stream': NS.stream }, xml('bind', { xmlns: NS.bind }), xml('session', { xmlns: NS.session }));
}

export function saslSuccess(): string {
  return xml('success', { xmlns: NS.sasl });
}

export type SaslCondition = 'not-authorized' | 'malformed-request' | 'invalid-mechanism' | 'account-disabled';

export function saslFailure(condition: SaslCondition): string {
  return xml('failure', { xmlns: NS.sasl }, xml(condition, {}));
}

/** RFC 6120 §4.9.3 conditions used here. */
export type StreamCondition =
  | 'conflict' | 'not-well-formed' | 'restricted-xml' | 'policy-violation' | 'not-authorized'
  | 'system-shutdown' | 'invalid-namespace' | 'unsupported-version' | 'host-unknown'
  | 'unsupported-stanza-type' | 'bad-format' | 'internal-server-error' | 'resource-constraint';

/** `<stream:error>`; the conflict texts are the ones Easemob sent (spec §10). */
export function streamError(condition: StreamCondition, message?: string): string {
  const parts = [xml(condition, { xmlns: NS.streams })];
  if (message) parts.push(xml('text', { xmlns: NS.streams }, esc(message)));
  return xml('stream:error', { 'xmlns:stream': NS.stream }, ...parts);
}

/** Result of the bind iq: the full JID. */
export function bindResult(iqId: string | undefined, jid: string): string {
  return xml('iq', { xmlns: NS.client, type: 'result', id: iqId }, xml('bind', { xmlns: NS.bind }, xml('jid', {}, esc(jid))));
}

/** An empty iq result (session, ping). */
export function iqResult(iqId: string | undefined, from?: string, to?: string): string {
  return xml('iq', { xmlns: NS.client, type: 'result', id: iqId, from, to });
}

/** An iq error; `type` per RFC 6120 §8.3.2. */
export function iqError(iqId: string | undefined, type: ErrorType, condition: string, to?: string, from?: string): string {
  return xml('iq', { xmlns: NS.client, type: 'error', id: iqId, from, to }, stanzaError(type, condition));
}

/** RFC 6120 §8.3.2 error types. */
export type ErrorType = 'cancel' | 'modify' | 'auth' | 'wait';

/** The `<error>` child of a stanza error, with the legacy `code` web 1.4.x reads (spec §10). */
export function stanzaError(type: ErrorType, condition: string, message?: string): string {
  const parts = [xml(condition, { xmlns: NS.stanzas })];
  if (message) parts.push(xml('text', { xmlns: NS.stanzas }, esc(message)));
  return xml('error', { type, code: LEGACY_CODES[condition] }, ...parts);
}
const LEGACY_CODES: Record<string, string> = {
  'bad-request': '400', 'jid-malformed': '400', 'not-authorized': '401', forbidden: '403', 'registration-required': '407',
  'item-not-found': '404', 'not-allowed': '405', 'not-acceptable': '406', 'service-unavailable': '503', 'feature-not-implemented': '501',
  'internal-server-error': '500', 'resource-constraint': '500',
};

/** A presence stanza (`type` left out for available). */
export function presence(attrs: { from?: string; to?: string; type?: string; id?: string }, ...content: string[]): string {
  return xml('presence', { xmlns: NS.client, from: attrs.from, to: attrs.to, type: attrs.type, id: attrs.id }, ...content);
}

/** A presence error answering `id`, from the address it was sent to. */
export function presenceError(from: string, to: string, id: string | undefined, type: ErrorType, condition: string, message?: string, ...extra: string[]): string {
  return presence({ from, to, type: 'error', id }, ...extra, stanzaError(type, condition, message));
}

/**
 * Ack A (spec §6): the server stored the message. Client id both in `<body>` and in the text of
 * `<received>`, server id in `mid`, no `id` on the wrapper: every SDK version reads one of them.
 */
export function serverAck(domain: string, to: string, clientId: string, msgId: string): string {
  return xml('message', { xmlns: NS.client, from: domain, to }, xml('body', {}, esc(clientId)), xml('received', { xmlns: NS.receipts, mid: msgId }, esc(clientId)));
}

/**
 * A send that failed (validation, a missing group). The original `<body>` is echoed (RFC 6120
 * §8.3.1 allows it): web 1.4.x reports the error to the app (`onTextMessage` with `error`,
 * `errorCode` from `<error code>` and `errorText` from `<text>`) only for an error stanza that
 * carries the message it refers to, and reads it as a presence otherwise (spec §10).
 */
export function messageError(domain: string, to: string, clientId: string | undefined, code: number, condition: string, message: string, originalBody?: string): string {
  const type = code >= 500 ? 'wait' : code === 403 || code === 404 ? 'cancel' : 'modify';
  const error = xml('error', { type, code: String(code) }, xml(condition, { xmlns: NS.stanzas }), xml('text', { xmlns: NS.stanzas }, esc(message)));
  const parts = originalBody === undefined ? [error] : [xml('body', {}, esc(originalBody)), error];
  return xml('message', { xmlns: NS.client, from: domain, to, id: clientId, type: 'error' }, ...parts);
}

/**
 * A stored message as the recipient's SDK receives it (spec §5.3): `id` = the server msg_id, the
 * JSON body re-built from the export record with keys in alphabetical order as Easemob sent them.
 * Group and room messages come from the room JID with the sender as its resource (MUC style).
 */
export function incomingMessage(m: RealtimeMessage, recipient: Identity, delayed = false): string {
  const record = JSON.parse(m.record) as { payload?: { bodies?: unknown; ext?: unknown } };
  const body = JSON.stringify({ bodies: record.payload?.bodies ?? [], ext: record.payload?.ext ?? {}, from: m.from, to: m.to });
  const key = appkey(recipient);
  const roomDomain = `conference.${recipient.domain}`;
  const from = m.chatType === 'chat' ? `${key}_${m.from}@${recipient.domain}` : `${key}_${m.to}@${roomDomain}/${m.from}`;
  const parts = [xml('body', {}, esc(body))];
  if (m.chatType === 'chatroom') parts.push(xml('roomtype', { xmlns: NS.roomtype, type: 'chatroom' }));
  // Offline (replayed) messages say when they were sent (XEP-0203; web exposes it as `delay`).
  if (delayed) parts.push(xml('delay', { xmlns: NS.delay, stamp: new Date(m.timestamp).toISOString() }));
  return xml('message', { xmlns: NS.client, from, to: fullJid(recipient), type: m.chatType === 'chat' ? 'chat' : 'groupchat', id: m.msgId }, ...parts);
}
