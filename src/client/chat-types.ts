/** Where a message goes: a user, a group or a chat room (the REST `target_type`). */
export type TargetType = 'users' | 'chatgroups' | 'chatrooms';

/** A message body, as REST `POST /messages` takes it in `msg` (`txt`, `img`, `loc`, `audio`, `video`, `file`, `cmd`). */
export interface MessageBody {
  type: string;
  [field: string]: unknown;
}

/** A message as `GET /chatmessages` returns it: the stored record itself. */
export interface ChatMessage {
  uuid: string;
  type: 'chatmessage';
  created: number;
  modified: number;
  /** Send time, ms. */
  timestamp: number;
  from: string;
  msg_id: string;
  to: string;
  chat_type: 'chat' | 'groupchat' | 'chatroom';
  payload: { bodies: MessageBody[]; ext?: Record<string, unknown> };
}

/** What a send is answered with once the message is stored. */
export interface SendAck {
  cid: string;
  msg_id: string;
  timestamp: number | null;
}

/** A peer got (`delivered`) or read one of your one-to-one messages. */
export interface Receipt {
  receipt: 'delivered' | 'read';
  msg_id: string;
  /** Who got or read it. */
  from: string;
}

/** A contact came online, went offline or changed its status text. */
export interface Presence {
  from: string;
  presence: 'available' | 'unavailable' | 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';
  status?: string;
}

/** Your contact list changed. */
export interface ContactChange {
  contact: string;
  subscription: 'both' | 'remove';
}

/**
 * `connecting`: opening a socket or logging in; `online`: logged in, sends go out at once;
 * `offline`: waiting to reconnect (sends queue); `closed`: stopped by close(), a failed login, or
 * the server (replaced by another login with the same resource, user removed).
 */
export type ConnectionState = 'idle' | 'connecting' | 'online' | 'offline' | 'closed';

/** An error from the server or the connection; `code` is stable (docs/realtime.md). */
export class ChatError extends Error {
  constructor(readonly code: string, message: string, readonly status?: number) {
    super(message);
    this.name = 'ChatError';
  }
}

/** The events of a ChatClient and their listeners. */
export interface ChatEvents {
  /** A message for you; `seq` is its resume position (null for chat-room messages, which are live only). */
  message: (message: ChatMessage, info: { seq: string | null }) => void;
  receipt: (receipt: Receipt) => void;
  presence: (presence: Presence) => void;
  contact: (change: ContactChange) => void;
  /** Everything stored for you before this connection has been pushed. */
  synced: (position: string) => void;
  state: (state: ConnectionState, detail: { code?: number; reason?: string }) => void;
  /** Errors not tied to a send (those reject the send's promise), and listeners that threw. */
  error: (error: ChatError) => void;
}
