import { ChatError, type ChatEvents, type ConnectionState, type MessageBody, type Presence, type SendAck, type TargetType } from './chat-types.js';
import { OPEN, type WebSocketConstructor, type WebSocketLike } from './web-socket-like.js';

/** The sub-protocol of the JSON protocol (docs/realtime.md). */
export const PROTOCOL = 'chatvault.v1';

/** How to log in: a REST user token, or appkey (`org#app`) + user name + password. */
export type LoginCredentials = { token: string } | { appkey: string; username: string; password: string };

export interface ChatClientOptions {
  /** The WebSocket endpoint, e.g. `ws://localhost:5080/ws`. */
  url: string;
  /** The WebSocket class: defaults to the global one (browsers); in Node 20 pass `ws`'s. */
  WebSocket?: WebSocketConstructor;
  /** This device's name; one connection per user and resource (a new login replaces the old one). */
  resource?: string;
  /** Where an earlier run stopped (its `position`), to receive exactly what came after. */
  position?: string;
  /** Reconnect delays: doubling from `minDelayMs` up to `maxDelayMs`, with jitter. */
  reconnect?: { minDelayMs?: number; maxDelayMs?: number };
  /** Sends `delivered` for each message once the listeners ran (default true). */
  autoDelivered?: boolean;
}

/** What send() takes: `msg` and `ext` as in REST `POST /messages`. */
export interface SendInput {
  target: string;
  target_type?: TargetType;
  msg: MessageBody;
  ext?: Record<string, unknown>;
  /** Your own idempotency key; one is made when absent. The same cid twice stores one message. */
  cid?: string;
}

interface PendingSend {
  frame: string;
  resolve: (ack: SendAck) => void;
  reject: (e: ChatError) => void;
}

type Listeners = { [K in keyof ChatEvents]: Set<ChatEvents[K]> };
type Frame = Record<string, unknown>;

// Close codes after which reconnecting cannot help (docs/realtime.md).
const FINAL_CLOSES = new Set([4001, 4003, 4004]);
const RECEIPT_BATCH = 100;
// Long enough to gather a burst into one frame (each `delivered` frame is a store write), short
// enough for a sender's "delivered" tick to feel immediate.
const RECEIPT_DELAY_MS = 200;
// Sends written and not yet answered, at most: the server closes a connection with more than 256
// frames waiting (1008), so a burst of sends (or a long offline queue) goes out as answers come.
const SEND_WINDOW = 100;

/**
 * A chat connection that does not lose messages: it resumes after every disconnect from the
 * last message it handed to your listeners, and it keeps every send until the server acknowledged
 * it (stored), resending after a reconnect under the same client id so nothing is stored twice.
 */
export class ChatClient {
  private readonly WS: WebSocketConstructor;
  private readonly resource: string;
  private credentials: LoginCredentials | null = null;
  private ws: WebSocketLike | null = null;
  private current: ConnectionState = 'idle';
  private seq: string | null;
  private readonly pending = new Map<string, PendingSend>();
  // The cids of `pending` written on this connection and not yet answered.
  private readonly unanswered = new Set<string>();
  private readonly receipts = { delivered: new Set<string>(), read: new Set<string>() };
  private receiptTimer: ReturnType<typeof setTimeout> | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private attempts = 0;
  private lastHeard = 0;
  private heartbeatMs = 25_000;
  private presence: { presence: 'available' | 'unavailable'; status?: string } | null = null;
  private loginWait: { resolve: () => void; reject: (e: ChatError) => void } | null = null;
  private cidCounter = 0;
  private readonly instance = randomId(12);
  // The message whose listeners are running: one that closes the client from inside them has still processed it.
  private processing: string | null = null;
  // The server's reason for refusing a login, which the close (4001) that follows does not carry.
  private refusal: ChatError | null = null;
  private readonly listeners: Listeners = {
    message: new Set(), receipt: new Set(), presence: new Set(), contact: new Set(), synced: new Set(), state: new Set(), error: new Set(),
  };

  constructor(private readonly options: ChatClientOptions) {
    const ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!ctor) throw new TypeError('no WebSocket: pass one as the WebSocket option (in Node 20: import WebSocket from "ws")');
    this.WS = ctor;
    this.resource = options.resource ?? `web-${randomId()}`;
    this.seq = options.position ?? null;
  }

  /** The position after the last message your listeners got: keep it to resume a later run. */
  get position(): string | null {
    return this.seq;
  }

  /** The connection's state. */
  get state(): ConnectionState {
    return this.current;
  }

  /** Listens to an event; returns the function that stops listening. */
  on<K extends keyof ChatEvents>(event: K, listener: ChatEvents[K]): () => void {
    this.listeners[event].add(listener);
    return () => this.listeners[event].delete(listener);
  }

  /** Connects and logs in; resolves once logged in, rejects if the server refuses the credentials. Reconnects by itself afterwards. */
  login(credentials: LoginCredentials): Promise<void> {
    if (this.credentials) return Promise.reject(new ChatError('already_logged_in', 'login() was called already'));
    this.credentials = credentials;
    return new Promise((resolve, reject) => {
      this.loginWait = { resolve, reject };
      this.connect();
    });
  }

  /** Sends a message; resolves with its msg_id once it is stored. Queued while offline. */
  send(input: SendInput): Promise<SendAck> {
    if (this.current === 'closed') return Promise.reject(new ChatError('closed', 'the client is closed'));
    // Unique per sender across its devices and runs, and short (the server takes up to 64 characters).
    const cid = input.cid ?? `${this.instance}-${Date.now().toString(36)}-${(this.cidCounter++).toString(36)}`;
    if (this.pending.has(cid)) return Promise.reject(new ChatError('duplicate_cid', `a send with cid ${cid} is already waiting`));
    const frame: Frame = { op: 'send', cid, target_type: input.target_type ?? 'users', target: input.target, msg: input.msg };
    if (input.ext !== undefined) frame.ext = input.ext;
    const text = JSON.stringify(frame);
    return new Promise((resolve, reject) => {
      this.pending.set(cid, { frame: text, resolve, reject });
      this.writeSends();
    });
  }

  /** Sends a text message to a user. */
  sendText(to: string, text: string): Promise<SendAck> {
    return this.send({ target: to, msg: { type: 'txt', msg: text } });
  }

  /** Acknowledges a message yourself (with `autoDelivered: false`): it stops counting as offline, and its sender gets a delivered receipt. */
  markDelivered(msgId: string): void {
    this.queueReceipt('delivered', msgId);
  }

  /** Tells the sender you read a message. */
  markRead(msgId: string): void {
    this.queueReceipt('read', msgId);
  }

  /** Tells your contacts you are available or not, with an optional status text. */
  setPresence(presence: 'available' | 'unavailable', status?: string): void {
    this.presence = status === undefined ? { presence } : { presence, status };
    if (this.current === 'online') this.write(JSON.stringify({ op: 'presence', ...this.presence }));
  }

  /** Closes the connection for good; sends still waiting are rejected. */
  close(): void {
    if (this.current === 'closed') return;
    if (this.processing !== null) this.receipts.delivered.add(this.processing);
    this.flushReceipts();
    const ws = this.ws;
    this.finish('closed', { code: 1000, reason: 'closed by the client' }, new ChatError('closed', 'the client is closed'));
    ws?.close(1000);
  }

  // The connection.

  private connect(): void {
    this.reconnectTimer = null;
    // Whatever was written and not answered is sent again on this connection (same cids).
    this.unanswered.clear();
    this.setState('connecting', {});
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.options.url, PROTOCOL);
    } catch (e) {
      this.emit('error', new ChatError('connect_failed', e instanceof Error ? e.message : String(e)));
      return this.scheduleReconnect({});
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (ws !== this.ws || !this.credentials) return;
      const auth: Frame = { op: 'auth', ...this.credentials, resource: this.resource };
      if (this.seq !== null) auth.after = this.seq;
      ws.send(JSON.stringify(auth));
    });
    ws.addEventListener('message', (ev) => {
      if (ws === this.ws && typeof ev.data === 'string') this.onFrame(ev.data);
    });
    ws.addEventListener('close', (ev) => {
      if (ws === this.ws) this.onClose(ev.code, ev.reason);
    });
    // A failed socket also closes; the close decides what happens next.
    ws.addEventListener('error', () => {});
  }

  private onFrame(text: string): void {
    this.lastHeard = Date.now();
    let f: Frame;
    try {
      f = JSON.parse(text) as Frame;
    } catch {
      return this.emit('error', new ChatError('bad_frame', 'the server sent a frame that is not JSON'));
    }
    switch (f.op) {
      case 'welcome':
        return this.onWelcome(f);
      case 'message':
        return this.onMessage(f);
      case 'synced':
        return this.emit('synced', String(f.seq));
      case 'ack': {
        const p = this.answered(String(f.cid));
        if (!p) return;
        return p.resolve({ cid: String(f.cid), msg_id: String(f.msg_id), timestamp: typeof f.timestamp === 'number' ? f.timestamp : null });
      }
      case 'error':
        return this.onError(f);
      case 'receipt':
        return this.emit('receipt', { receipt: f.receipt === 'read' ? 'read' : 'delivered', msg_id: String(f.msg_id), from: String(f.from) });
      case 'presence': {
        const p: Presence = { from: String(f.from), presence: f.presence as Presence['presence'] };
        return this.emit('presence', typeof f.status === 'string' ? { ...p, status: f.status } : p);
      }
      case 'contact':
        return this.emit('contact', { contact: String(f.contact), subscription: f.subscription === 'remove' ? 'remove' : 'both' });
      default:
        // pong, and ops of a newer server.
        return;
    }
  }

  private onWelcome(f: Frame): void {
    this.attempts = 0;
    // A first login starts where the server put it; keep that, so a reconnect resumes from it.
    if (this.seq === null && typeof f.after === 'string') this.seq = f.after;
    if (typeof f.heartbeat === 'number' && f.heartbeat >= 1000) this.heartbeatMs = f.heartbeat;
    this.startHeartbeat();
    this.setState('online', {});
    const wait = this.loginWait;
    this.loginWait = null;
    wait?.resolve();
    if (this.presence && this.presence.presence !== 'available') this.write(JSON.stringify({ op: 'presence', ...this.presence }));
    this.writeSends();
    this.flushReceipts();
  }

  private onMessage(f: Frame): void {
    const seq = typeof f.seq === 'string' ? f.seq : null;
    const message = f.message as Parameters<ChatEvents['message']>[0];
    // Never twice, whatever a server sends.
    if (seq !== null && this.seq !== null && BigInt(seq) <= BigInt(this.seq)) return;
    const ack = this.options.autoDelivered !== false && message.chat_type !== 'chatroom';
    this.processing = ack ? message.msg_id : null;
    try {
      this.emit('message', message, { seq });
    } finally {
      this.processing = null;
    }
    if (seq !== null) this.seq = seq;
    if (ack) this.queueReceipt('delivered', message.msg_id);
  }

  private onError(f: Frame): void {
    const err = new ChatError(String(f.code), String(f.message), typeof f.status === 'number' ? f.status : undefined);
    const cid = typeof f.cid === 'string' ? f.cid : null;
    const p = cid === null ? undefined : this.answered(cid);
    if (p) return p.reject(err);
    // A refused login is answered by the close (4001) that follows.
    if (err.code === 'unauthorized') {
      this.refusal = err;
      if (this.loginWait) return;
    }
    this.emit('error', err);
  }

  /** The send a server answer is for, taken off the waiting ones; the next waiting send goes out. */
  private answered(cid: string): PendingSend | undefined {
    const p = this.pending.get(cid);
    if (!p) return undefined;
    this.pending.delete(cid);
    this.unanswered.delete(cid);
    this.writeSends();
    return p;
  }

  /**
   * Writes waiting sends while online, up to SEND_WINDOW unanswered, in the order they were made:
   * the server handles a connection's frames in order, so the messages keep it too.
   */
  private writeSends(): void {
    if (this.current !== 'online' || this.unanswered.size >= SEND_WINDOW) return;
    for (const [cid, p] of this.pending) {
      if (this.unanswered.has(cid)) continue;
      this.unanswered.add(cid);
      this.write(p.frame);
      if (this.unanswered.size >= SEND_WINDOW) return;
    }
  }

  private onClose(code: number, reason: string): void {
    this.ws = null;
    this.stopHeartbeat();
    if (FINAL_CLOSES.has(code)) {
      const err = code === 4001 && this.refusal ? this.refusal : new ChatError(code === 4001 ? 'unauthorized' : code === 4003 ? 'replaced' : 'removed', reason || `closed with ${code}`);
      if (!this.loginWait) this.emit('error', err);
      return this.finish('closed', { code, reason }, err);
    }
    this.scheduleReconnect({ code, reason });
  }

  private scheduleReconnect(detail: { code?: number; reason?: string }): void {
    this.setState('offline', detail);
    const min = this.options.reconnect?.minDelayMs ?? 250;
    const max = this.options.reconnect?.maxDelayMs ?? 10_000;
    const base = Math.min(max, min * 2 ** Math.min(this.attempts++, 16));
    // Jitter, so that the clients of a restarted server do not all come back at once.
    this.reconnectTimer = setTimeout(() => this.connect(), base / 2 + Math.random() * (base / 2));
  }

  /** Stops for good: timers off, the login and every waiting send rejected. */
  private finish(state: ConnectionState, detail: { code?: number; reason?: string }, err: ChatError): void {
    this.ws = null;
    this.stopHeartbeat();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.receiptTimer) clearTimeout(this.receiptTimer);
    this.reconnectTimer = this.receiptTimer = null;
    this.setState(state, detail);
    const wait = this.loginWait;
    this.loginWait = null;
    wait?.reject(err);
    const sends = [...this.pending.values()];
    this.pending.clear();
    this.unanswered.clear();
    for (const p of sends) p.reject(err);
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.lastHeard = Date.now();
    this.heartbeatTimer = setInterval(() => {
      const ws = this.ws;
      if (!ws) return;
      // Nothing for two heartbeats, pong included: the connection is dead even if no close came.
      if (Date.now() - this.lastHeard > 2 * this.heartbeatMs) {
        this.ws = null;
        ws.close(4000, 'no answer to heartbeats');
        return this.onClose(4000, 'no answer to heartbeats');
      }
      this.write(JSON.stringify({ op: 'ping' }));
    }, this.heartbeatMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private queueReceipt(kind: 'delivered' | 'read', msgId: string): void {
    if (this.current === 'closed') return;
    this.receipts[kind].add(msgId);
    if (this.receipts[kind].size >= RECEIPT_BATCH) return this.flushReceipts();
    this.receiptTimer ??= setTimeout(() => this.flushReceipts(), RECEIPT_DELAY_MS);
  }

  private flushReceipts(): void {
    if (this.receiptTimer) clearTimeout(this.receiptTimer);
    this.receiptTimer = null;
    // Offline: kept, and sent after the next login.
    if (this.current !== 'online') return;
    for (const kind of ['delivered', 'read'] as const) {
      const ids = [...this.receipts[kind]];
      this.receipts[kind].clear();
      for (let i = 0; i < ids.length; i += RECEIPT_BATCH) this.write(JSON.stringify({ op: kind, msg_ids: ids.slice(i, i + RECEIPT_BATCH) }));
    }
  }

  private write(text: string): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return;
    try {
      ws.send(text);
    } catch {
      // The close event follows; what was not acknowledged is sent again after the reconnect.
    }
  }

  private setState(state: ConnectionState, detail: { code?: number; reason?: string }): void {
    if (this.current === state) return;
    this.current = state;
    this.emit('state', state, detail);
  }

  private emit<K extends keyof ChatEvents>(event: K, ...args: Parameters<ChatEvents[K]>): void {
    for (const l of [...this.listeners[event]]) {
      try {
        (l as (...a: Parameters<ChatEvents[K]>) => void)(...args);
      } catch (e) {
        if (event !== 'error') this.emit('error', new ChatError('listener_failed', e instanceof Error ? e.message : String(e)));
      }
    }
  }
}

function randomId(length = 8): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  const hex = c?.randomUUID ? c.randomUUID().replace(/-/g, '') : Array.from({ length: 4 }, () => Math.random().toString(16).slice(2, 10)).join('');
  return hex.slice(0, length);
}
