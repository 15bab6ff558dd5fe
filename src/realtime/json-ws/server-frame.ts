import type { RealtimeMessage } from '../realtime-message.js';
import type { RealtimeSignal } from '../realtime-signal.js';

/**
 * Close codes of the JSON protocol (docs/realtime.md). 1000–1015 are the WebSocket ones; the
 * 4xxx ones tell the client whether reconnecting can help: a client must not reconnect after
 * `unauthorized`, `replaced` or `removed`, and should after every other close.
 */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
  tryAgain: 1013,
  idle: 4000,
  unauthorized: 4001,
  authTimeout: 4002,
  replaced: 4003,
  removed: 4004,
} as const;

/**
 * A message push. The `message` member is the stored export record itself (the bytes
 * `GET /chatmessages` returns), spliced in rather than re-encoded; `seq` is the resume position,
 * present only for messages of the user's inbox (one-to-one and group): chat-room messages are
 * live only, as in Easemob, and must not move a client's position.
 */
export function pushFrame(m: RealtimeMessage, resumable: boolean): string {
  return resumable ? `{"op":"message","seq":"${m.seq}","message":${m.record}}` : `{"op":"message","message":${m.record}}`;
}

/** The frame of a receipt, presence or contact change; null for a signal this protocol does not carry. */
export function signalFrame(s: RealtimeSignal): string | null {
  switch (s.kind) {
    case 'receipt':
      return JSON.stringify({ op: 'receipt', receipt: s.receipt, msg_id: s.msgId, from: s.from });
    case 'presence':
      return JSON.stringify(s.status === undefined ? { op: 'presence', from: s.from, presence: s.presence } : { op: 'presence', from: s.from, presence: s.presence, status: s.status });
    case 'contact':
      return JSON.stringify({ op: 'contact', contact: s.contact, subscription: s.subscription });
  }
}

/** An error: `code` is stable for programs; `status` is the REST status of a refused send. */
export function errorFrame(code: string, message: string, extra: { cid?: string; status?: number } = {}): string {
  return JSON.stringify({ op: 'error', ...(extra.cid === undefined ? {} : { cid: extra.cid }), code, ...(extra.status === undefined ? {} : { status: extra.status }), message });
}
