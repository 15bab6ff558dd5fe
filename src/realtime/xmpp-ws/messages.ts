import { ApiError } from '../../errors.js';
import { parseSend, type TargetType } from '../../domain/messages.js';
import type { Services } from '../../services.js';
import { parseAddress, type BoundSession } from './session-context.js';
import * as S from './stanzas.js';
import { child, text, type XmlElement } from './xml.js';

/**
 * A `<message>` from a bound client (spec §5, §6): an ack B marks delivery, a chat message goes
 * through the same validation and storage as REST `POST /messages`, then ack A carries its msg_id.
 * Send failures answer with a message error; only a store failure escapes (the caller ends the stream).
 */
export async function handleMessage(s: Services, b: BoundSession, el: XmlElement, send: (data: string) => void): Promise<void> {
  // An error bounced by the client (RFC 6120 §8.3.1: never answered).
  if (el.attrs.type === 'error') return;
  const clientId = el.attrs.id;
  const body = child(el, 'body');
  const ack = ackedId(el);
  if (ack !== null) {
    if (ack !== '') await s.realtime.router.ack(b.app.id, b.user.username, [ack]);
    return;
  }
  const receipt = child(el, 'delivery', S.NS.receipts) ?? child(el, 'acked', S.NS.receipts);
  if (receipt) return relayReceipt(s, b, el, receipt, send);
  const to = el.attrs.to;
  // The web 1.0.x heartbeat (`{}` to the domain) and anything else addressed to the server.
  if (!body || !to || to.toLowerCase() === b.domain) return;

  const me = S.fullJid(b.identity);
  const original = text(body);
  const reject = (code: number, condition: string, message: string): void => send(S.messageError(b.domain, me, clientId, code, condition, message, b.errorsCarryBody ? original : undefined));
  const target = parseTarget(to, b, child(el, 'roomtype', S.NS.roomtype)?.attrs.type === 'chatroom');
  if (!target) return reject(400, 'jid-malformed', `not an address of app ${S.appkey(b.identity)}: ${to}`);
  let json: unknown;
  try {
    json = JSON.parse(original);
  } catch {
    return reject(400, 'bad-request', 'message body is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return reject(400, 'bad-request', 'message body is not a JSON object');
  const { bodies, ext } = json as { bodies?: unknown; ext?: unknown };
  // Every SDK reads only bodies[0] (spec §5.2), as REST stores one body per message.
  if (!Array.isArray(bodies) || bodies.length === 0) return reject(400, 'bad-request', 'message body has no bodies');
  // The sender is the logged-in user, whatever the JSON `from` says.
  const raw: Record<string, unknown> = { target_type: target.type, target: [target.name], msg: bodies[0], from: b.user.username };
  if (ext !== undefined && ext !== null) raw.ext = ext;
  let msgId: string | undefined;
  try {
    // A user's own connection speaks only in groups and rooms the user belongs to (REST sends
    // are the app admin's, who may post anywhere).
    const ids = await s.messages.send(b.app, parseSend(raw), { fromMember: true });
    msgId = ids.values().next().value?.msgId;
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    return reject(e.status, CONDITIONS[e.status] ?? 'bad-request', e.description ?? e.code);
  }
  if (msgId !== undefined) send(S.serverAck(b.domain, me, clientId ?? '', msgId));
}

/**
 * The server id an ack B (`<received>` without a body: "I got the message with this id")
 * acknowledges, '' for one naming none, null when the message is not an ack B.
 */
export function ackedId(el: XmlElement): string | null {
  const received = child(el, 'received', S.NS.receipts);
  if (!received || child(el, 'body')) return null;
  return (received.attrs.id ?? el.attrs.id ?? '').slice(0, 64);
}

/**
 * A delivery (C) or read (D) receipt for the message's sender (spec §6): relayed as a signal, so
 * the sender gets it on whichever transport and node it is connected to; never stored. Only
 * for a message that was addressed to this user, so receipts cannot be made up for others' mail.
 */
async function relayReceipt(s: Services, b: BoundSession, el: XmlElement, receipt: XmlElement, send: (data: string) => void): Promise<void> {
  const me = S.fullJid(b.identity);
  const reject = (code: number, condition: string, message: string): void => send(S.messageError(b.domain, me, el.attrs.id, code, condition, message));
  const to = parseAddress(el.attrs.to, b);
  if (!to || to.kind !== 'user') return reject(400, 'jid-malformed', 'a receipt goes to the sender\'s JID');
  const body = child(el, 'body');
  const msgId = (receipt.attrs.id ?? (body ? text(body) : '')).trim();
  if (!/^\d{1,20}$/.test(msgId)) return reject(400, 'bad-request', 'a receipt names a server message id');
  if ((await s.realtime.delivery.status(b.app.id, b.user.username, msgId)) === null) {
    return reject(404, 'item-not-found', `no message ${msgId} was sent to ${b.user.username}`);
  }
  await s.realtime.router.signal(b.app.id, to.name, {
    kind: 'receipt', receipt: receipt.name === 'delivery' ? 'delivered' : 'read', msgId, from: b.user.username, to: to.name,
  });
}

const CONDITIONS: Record<number, string> = { 400: 'bad-request', 401: 'not-authorized', 403: 'forbidden', 404: 'item-not-found', 413: 'policy-violation' };

/**
 * The REST target of a `to` JID (spec §3): a user, a group, or a chat room with the `roomtype`
 * child. Routed by the domain, not the stanza type (web 1.0.7 sends files to groups with
 * type="chat", spec §5.1).
 */
function parseTarget(jid: string, b: BoundSession, chatroom: boolean): { type: TargetType; name: string } | null {
  const a = parseAddress(jid, b);
  if (!a) return null;
  if (a.kind === 'user') return { type: 'users', name: a.name };
  return { type: chatroom ? 'chatrooms' : 'chatgroups', name: a.name };
}
