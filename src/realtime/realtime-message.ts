import type { Json } from '../bus/bus.js';
import type { NewMessage } from '../store/store.js';

/** A stored message on its way to recipients' sessions: what every transport renders from. */
export interface RealtimeMessage {
  appId: number;
  msgId: string;
  /** The store's insertion sequence (decimal): the message's place in the one order every export and resume walks. */
  seq: string;
  from: string;
  to: string;
  chatType: NewMessage['chatType'];
  /** Send time, ms. */
  timestamp: number;
  /**
   * The export record JSON (the `chatmessages` entity), as stored. Kept as text so that every
   * transport renders from the very bytes the export returns, and the bus carries it unchanged.
   */
  record: string;
}

/** The realtime form of a message that was just stored. */
export function fromStored(row: NewMessage, seq: bigint): RealtimeMessage {
  return {
    appId: row.appId, msgId: row.msgId, seq: seq.toString(), from: row.from, to: row.to, chatType: row.chatType, timestamp: row.timestamp,
    record: row.entity.toString('utf8'),
  };
}

const CHAT_TYPES: readonly string[] = ['chat', 'groupchat', 'chatroom'] satisfies NewMessage['chatType'][];

/** A RealtimeMessage read back from a bus message, or null when it is not one (a newer node's shape). */
export function parseRealtimeMessage(v: Json | undefined): RealtimeMessage | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const { appId, msgId, seq, from, to, chatType, timestamp, record } = v;
  if (typeof appId !== 'number' || typeof msgId !== 'string' || typeof seq !== 'string' || !/^\d{1,20}$/.test(seq) || typeof from !== 'string' || typeof to !== 'string') return null;
  if (typeof chatType !== 'string' || !CHAT_TYPES.includes(chatType) || typeof timestamp !== 'number' || typeof record !== 'string') return null;
  return { appId, msgId, seq, from, to, chatType: chatType as RealtimeMessage['chatType'], timestamp, record };
}

/** The bus form of a message (a plain JSON object). */
export function toJsonMessage(m: RealtimeMessage): Json {
  return { appId: m.appId, msgId: m.msgId, seq: m.seq, from: m.from, to: m.to, chatType: m.chatType, timestamp: m.timestamp, record: m.record };
}
