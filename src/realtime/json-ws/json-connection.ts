import { randomBytes } from 'node:crypto';
import { ApiError } from '../../errors.js';
import { parseSend } from '../../domain/messages.js';
import type { Services } from '../../services.js';
import type { AckedMessage, AppRow, Store, UserRow } from '../../store/store.js';
import type { RealtimeMessage } from '../realtime-message.js';
import type { PresenceType, RealtimeSignal } from '../realtime-signal.js';
import type { CloseReason, Registration, SessionTransport } from '../session-registry.js';
import { authenticate } from './authenticate.js';
import { MAX_FRAME_BYTES, parseClientFrame, type ClientFrame } from './client-frame.js';
import { CLOSE, errorFrame, pushFrame, signalFrame } from './server-frame.js';

/** The socket side of a connection: the WebSocket in production, anything in a unit test. */
export interface JsonSocket {
  /** Sends one text frame. */
  send(data: string): void;
  /** Closes with a close code and a short reason (at most 123 bytes). */
  close(code: number, reason: string): void;
  /** Bytes queued and not yet written. */
  readonly bufferedAmount: number;
  /** Sends text frames in order with one write (the WebSocket's socket corked around them). */
  sendBatch?(data: readonly string[]): void;
}

export interface JsonConnectionOptions {
  onError: (context: string, error: unknown) => void;
  /** How often the client should ping (told in `welcome`); a connection silent for three of these is closed. */
  heartbeatMs?: number;
  /** How long a connection may stay unauthenticated. */
  authTimeoutMs?: number;
}

export const DEFAULT_HEARTBEAT_MS = 25_000;
const DEFAULT_AUTH_TIMEOUT_MS = 10_000;
// Frames waiting while an earlier one is handled (a login or a send awaits the store).
const MAX_IN_FLIGHT = 256;
// Past this much unsent output the inbox walk pauses: pushes come from the store, so a slow
// reader costs no memory and loses nothing; it just gets them later.
const PAUSE_BUFFERED_BYTES = 1024 * 1024;
// Live-only output (chat-room messages, receipts, presence) cannot wait in the store; past this a
// client is not reading at all and is closed (it reconnects and resumes).
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
// A reader that drains nothing for this long is gone.
const STALL_MS = 30_000;
const PAGE = 200;
// A live message above the high-water mark (an older writer still committing on PostgreSQL) is
// looked for again this often, for at most this long; after that the next push or login finds it.
const HWM_RETRY_MS = 10;
const HWM_PATIENCE_MS = 2_000;
// Receipts, presence and contact changes wait at most this long for the next frame to the same
// client and go out in its write: a chat client busy enough to get many of them gets them for
// free, and a receipt is never urgent (clients batch theirs for longer).
const SIGNAL_DELAY_MS = 50;

/*
 * auth → open → closed. Until `auth` succeeds nothing else is accepted; after it, the session is
 * registered with the core and the inbox walk runs.
 */
type State = 'auth' | 'open' | 'closed';

/**
 * One client of the JSON protocol over one WebSocket (docs/realtime.md). Every one-to-one and
 * group message reaches the client through one walk of its inbox in the store, from the position
 * the client resumed at, under the store's high-water mark: a live delivery from the router only
 * says "look again", so pushes are in seq order, each once per connection, and a position the
 * client reports back can never skip a message.
 */
export class JsonConnection implements SessionTransport {
  private state: State = 'auth';
  private queue: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private app: AppRow | null = null;
  private user: UserRow | null = null;
  private registration: Registration | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private lastHeard = Date.now();
  private readonly heartbeatMs: number;

  // The inbox walk: the last seq pushed, the highest seq the router said is waiting, whether the
  // walk has its start yet, whether it runs, and whether the first walk finished.
  private position = 0n;
  private wanted = 0n;
  private positioned = false;
  private pumping = false;
  private synced = false;
  // Signal frames waiting for the next write to this client (SIGNAL_DELAY_MS at most).
  private signals: string[] = [];
  private signalTimer: NodeJS.Timeout | null = null;
  // Frames of this turn, written together at its end (endOfTurn).
  private out: string[] = [];

  constructor(private readonly s: Services, private readonly socket: JsonSocket, private readonly opts: JsonConnectionOptions) {
    this.heartbeatMs = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    const authTimer = setTimeout(() => {
      if (this.state === 'auth') this.closeWith(CLOSE.authTimeout, 'authentication timeout');
    }, opts.authTimeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS);
    const idleTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > 3 * this.heartbeatMs) this.closeWith(CLOSE.idle, 'no frame for three heartbeats');
    }, this.heartbeatMs);
    authTimer.unref();
    idleTimer.unref();
    this.timers.push(authTimer, idleTimer);
  }

  /** A text frame arrived; frames are handled one after another, in order. */
  receive(text: string): void {
    if (this.state === 'closed') return;
    this.lastHeard = Date.now();
    if (++this.inFlight > MAX_IN_FLIGHT) return this.closeWith(CLOSE.policy, 'too many frames in flight');
    this.queue = this.queue
      .then(() => this.handle(text))
      .catch((e: unknown) => {
        this.opts.onError('json-ws frame', e);
        this.closeWith(CLOSE.internal, 'internal error');
      })
      .finally(() => {
        this.inFlight--;
      });
  }

  /** A binary frame: not this protocol. */
  receiveBinary(): void {
    this.send(errorFrame('bad_frame', 'binary frames are not part of the protocol'));
    this.closeWith(CLOSE.unsupportedData, 'binary frame');
  }

  /** The WebSocket closed (either side). */
  socketClosed(): void {
    this.teardown();
  }

  // SessionTransport: called by the core.

  deliver(message: RealtimeMessage, previous?: bigint): void {
    if (this.state === 'closed' || !this.registration) return;
    if (message.chatType === 'chatroom') {
      if (this.state === 'open') this.sendLive(pushFrame(message, false));
      return;
    }
    const seq = BigInt(message.seq);
    // Pushed already: the walk read it before its route came.
    if (seq <= this.position) return;
    // Everything of the inbox before it has been pushed, and the walk is not running: push it
    // now, with no store read. Otherwise the walk finds it, in order.
    if (previous !== undefined && previous <= this.position && !this.pumping && this.synced && this.socket.bufferedAmount <= PAUSE_BUFFERED_BYTES) {
      this.push(message, seq);
      return;
    }
    if (seq > this.wanted) this.wanted = seq;
    this.kick();
  }

  signal(signal: RealtimeSignal): void {
    if (this.state !== 'open') return;
    const frame = signalFrame(signal);
    if (frame === null || this.notReading()) return;
    this.signals.push(frame);
    this.signalTimer ??= setTimeout(() => this.flushOutput(), SIGNAL_DELAY_MS);
  }

  close(reason: CloseReason): void {
    if (reason === 'conflict') this.closeWith(CLOSE.replaced, 'replaced by a new connection with the same resource');
    else if (reason === 'removed') this.closeWith(CLOSE.removed, 'user removed');
    else this.closeWith(CLOSE.goingAway, 'server shutting down');
  }

  // Frames.

  private async handle(text: string): Promise<void> {
    if (this.state === 'closed') {
      // Receipts that arrived before the socket closed still count: a client that acks and
      // closes at once must not get those messages again as offline ones.
      const late = this.user ? parseClientFrame(text) : null;
      if (late?.ok && (late.frame.op === 'delivered' || late.frame.op === 'read')) await this.onReceipt(late.frame);
      return;
    }
    const parsed = parseClientFrame(text);
    if (!parsed.ok) {
      const { code, message, cid } = parsed.error;
      this.send(errorFrame(code, message, cid === undefined ? {} : { cid }));
      // Before a login a client gets one answer: a broken or probing client is not kept.
      if (this.state === 'auth') this.closeWith(CLOSE.unauthorized, 'authenticate first');
      return;
    }
    const f = parsed.frame;
    if (f.op === 'ping') return this.send(JSON.stringify(f.id === null ? { op: 'pong' } : { op: 'pong', id: f.id }));
    if (this.state === 'auth') {
      if (f.op === 'auth') return this.onAuth(f);
      this.send(errorFrame('unauthorized', `authenticate first (op "auth"), not "${f.op}"`));
      return this.closeWith(CLOSE.unauthorized, 'authenticate first');
    }
    switch (f.op) {
      case 'auth':
        return this.send(errorFrame('bad_frame', 'already authenticated'));
      case 'send':
        return this.onSend(f);
      case 'delivered':
      case 'read':
        return this.onReceipt(f);
      case 'presence':
        return this.broadcastPresence(f.presence, f.status);
    }
  }

  private async onAuth(f: Extract<ClientFrame, { op: 'auth' }>): Promise<void> {
    const r = await authenticate(this.s, f.credentials);
    if (this.state !== 'auth') return;
    if (!r.ok) {
      this.send(errorFrame('unauthorized', r.message));
      return this.closeWith(CLOSE.unauthorized, 'authentication failed');
    }
    this.app = r.app;
    this.user = r.user;
    const resource = f.resource ?? `cv${randomBytes(6).toString('hex')}`;
    // Registered before the start is read: a message stored meanwhile pokes the walk, which
    // waits for its start (`positioned`) and then finds it.
    this.registration = this.s.realtime.sessions.register({ appId: r.app.id, username: r.user.username, resource }, this);
    const start = f.after ?? (await this.freshStart());
    if (this.isClosed()) return;
    this.position = start;
    this.positioned = true;
    this.state = 'open';
    this.send(JSON.stringify({
      op: 'welcome', user: r.user.username, appkey: `${r.app.orgName}#${r.app.name}`, resource, after: start.toString(),
      heartbeat: this.heartbeatMs, max_frame: MAX_FRAME_BYTES,
    }));
    this.kick();
    this.broadcastPresence('available', null).catch((e: unknown) => this.opts.onError('presence', e));
  }

  /**
   * Where a client without a position starts: before the oldest message not yet delivered to
   * any of the user's clients, or at the high-water mark when nothing waits. The mark is read
   * first: a message committed after it has a larger seq, and one committed before it is either
   * below it or still pending.
   */
  private async freshStart(): Promise<bigint> {
    const { app, user } = this.login();
    const hwm = await this.s.store.highWaterMark();
    const [oldest] = await this.s.realtime.delivery.pending(app.id, user.username, 0n, 1);
    if (!oldest) return hwm;
    const before = BigInt(oldest.seq) - 1n;
    return before < hwm ? before : hwm;
  }

  /**
   * Starts a send; resolves once the frame after it may be handled. Where the store keeps call
   * order (Store.insertsInCallOrder) that is as soon as the message is handed to the store, so
   * a client's sends are stored in the order it sent them while several wait for the disk
   * together; elsewhere it is once the send is durable. The ack goes out when it is durable.
   */
  private onSend(f: Extract<ClientFrame, { op: 'send' }>): Promise<void> {
    if (!this.s.store.insertsInCallOrder) return this.sendDurably(f, () => {});
    let handed!: () => void;
    const handedOver = new Promise<void>((resolve) => (handed = resolve));
    const durable = this.sendDurably(f, handed);
    // Counted until durable: a client can not pile up unacknowledged sends without limit.
    this.inFlight++;
    durable
      .catch((e: unknown) => {
        this.opts.onError('json-ws send', e);
        this.closeWith(CLOSE.internal, 'internal error');
      })
      .finally(() => {
        this.inFlight--;
        handed();
      });
    return handedOver;
  }

  private async sendDurably(f: Extract<ClientFrame, { op: 'send' }>, handedOver: () => void): Promise<void> {
    const { app, user } = this.login();
    // The sender is the logged-in user, always.
    const raw: Record<string, unknown> = { target_type: f.targetType, target: [f.target], msg: f.msg, from: user.username };
    if (f.ext !== undefined && f.ext !== null) raw.ext = f.ext;
    let frame: string;
    try {
      // A user's own connection speaks only in groups and rooms the user belongs to. The stored
      // message: this one, or for a repeated client id the first send's.
      const sent = (await this.s.messages.send(app, parseSend(raw), { clientId: f.cid, fromMember: true, handedOver })).values().next().value!;
      frame = JSON.stringify({ op: 'ack', cid: f.cid, msg_id: sent.msgId, timestamp: sent.timestamp });
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      frame = errorFrame(e.code, e.description ?? e.code, { cid: f.cid, status: e.status });
    }
    this.send(frame);
  }

  private async onReceipt(f: Extract<ClientFrame, { op: 'delivered' | 'read' }>): Promise<void> {
    const { app, user } = this.login();
    // `delivered` is also the ack of receipt (offline counts): the store answers with the
    // messages it changed and their senders, so its receipt goes out once, the first time (a
    // client resuming and acking again does not repeat it), with no read of its own. A `read`
    // changes nothing stored: each message is looked up.
    const acked = f.op === 'delivered' ? await this.s.realtime.router.ack(app.id, user.username, f.msgIds) : await readMessages(this.s.store, app.id, f.msgIds);
    const me = user.username.toLowerCase();
    for (const m of acked) {
      // Receipts are one-to-one: a group's sender would get one per member.
      if (m.chatType !== 'chat' || m.to.toLowerCase() !== me) continue;
      await this.s.realtime.router.signal(app.id, m.from, { kind: 'receipt', receipt: f.op, msgId: m.msgId, from: user.username, to: m.from });
    }
  }

  /** Tells the user's contacts (their sessions on every node) that this user came or went. */
  private async broadcastPresence(presence: PresenceType, status: string | null): Promise<void> {
    const { app, user } = this.login();
    for (const contact of await this.s.store.listContacts(user.id)) {
      const signal: RealtimeSignal = { kind: 'presence', presence, from: user.username, to: contact };
      if (status !== null) signal.status = status;
      await this.s.realtime.router.signal(app.id, contact, signal);
    }
  }

  // The inbox walk.

  private kick(): void {
    if (this.pumping || !this.positioned || this.state !== 'open') return;
    this.pumping = true;
    this.pump().catch((e: unknown) => {
      this.opts.onError('json-ws inbox walk', e);
      this.closeWith(CLOSE.internal, 'internal error');
    });
  }

  private async pump(): Promise<void> {
    // `pumping` is cleared in the same turn as the last check of `wanted`, so a poke arriving
    // after that check starts a new walk instead of being missed.
    try {
      const { app, user } = this.login();
      let waitingSince = 0;
      let stalledSince = 0;
      while (!this.isClosed()) {
        if (this.socket.bufferedAmount > PAUSE_BUFFERED_BYTES) {
          stalledSince ||= Date.now();
          if (Date.now() - stalledSince > STALL_MS) return this.closeWith(CLOSE.tryAgain, 'client not reading');
          await sleep(20);
          continue;
        }
        stalledSince = 0;
        const page = await this.s.realtime.delivery.inbox(app.id, user.username, this.position, PAGE);
        if (this.isClosed()) return;
        for (const m of page.messages) {
          const seq = BigInt(m.seq);
          if (seq > this.position) this.push(m, seq);
        }
        if (page.more) continue;
        if (!this.synced) {
          this.synced = true;
          this.send(JSON.stringify({ op: 'synced', seq: this.position.toString() }));
        }
        if (this.position >= this.wanted) return;
        waitingSince ||= Date.now();
        if (Date.now() - waitingSince > HWM_PATIENCE_MS) {
          this.wanted = this.position;
          return;
        }
        await sleep(HWM_RETRY_MS);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Pushes the next message of the inbox and moves the position to it. */
  private push(m: RealtimeMessage, seq: bigint): void {
    this.send(pushFrame(m, true));
    this.position = seq;
  }

  // Internals.

  private login(): { app: AppRow; user: UserRow } {
    if (!this.app || !this.user) throw new Error('not logged in');
    return { app: this.app, user: this.user };
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private sendLive(frame: string): void {
    if (!this.notReading()) this.send(frame);
  }

  /** Live-only output can not wait in the store: a client this far behind is closed (it resumes). */
  private notReading(): boolean {
    if (this.socket.bufferedAmount <= MAX_BUFFERED_BYTES) return false;
    this.closeWith(CLOSE.tryAgain, 'client not reading');
    return true;
  }

  /**
   * Queues a frame for the end of this turn of the event loop: whatever else this client gets in
   * the same turn (the ack of its send and a message pushed to it, say) leaves in the same write.
   */
  private send(data: string): void {
    if (this.state === 'closed') return;
    if (this.out.push(data) === 1) endOfTurn.add(this);
  }

  /** Writes the queued frames (waiting signals first: frames keep the order they were made in). */
  flushOutput(): void {
    if (this.state === 'closed' || (this.out.length === 0 && this.signals.length === 0)) return;
    const frames = this.signals.length === 0 ? this.out : [...this.takeSignals(), ...this.out];
    this.out = [];
    try {
      if (frames.length === 1) this.socket.send(frames[0]!);
      else if (this.socket.sendBatch) this.socket.sendBatch(frames);
      else for (const f of frames) this.socket.send(f);
    } catch (e) {
      this.opts.onError('json-ws send', e);
    }
  }

  private takeSignals(): string[] {
    const frames = this.signals;
    this.signals = [];
    if (this.signalTimer) clearTimeout(this.signalTimer);
    this.signalTimer = null;
    return frames;
  }

  private closeWith(code: number, reason: string): void {
    if (this.state === 'closed') return;
    // What was said before the close (an error frame, say) goes first.
    this.flushOutput();
    this.teardown();
    try {
      this.socket.close(code, reason);
    } catch (e) {
      this.opts.onError('json-ws close', e);
    }
  }

  private teardown(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const t of this.timers) clearTimeout(t);
    if (this.signalTimer) clearTimeout(this.signalTimer);
    const removed = this.registration?.unregister() ?? false;
    this.registration = null;
    const { app, user } = this;
    // The user's last session here went away (not replaced): tell the contacts.
    if (removed && app && user && !this.s.realtime.sessions.isOnline(app.id, user.username)) {
      this.broadcastPresence('unavailable', null).catch((e: unknown) => this.opts.onError('presence', e));
    }
  }
}

/** The stored messages of these msg_ids (for a read receipt's sender); unknown ids are left out. */
async function readMessages(store: Store, appId: number, msgIds: readonly string[]): Promise<AckedMessage[]> {
  const out: AckedMessage[] = [];
  for (const msgId of new Set(msgIds)) {
    const seq = await store.messageSeq(appId, msgId);
    if (seq === null) continue;
    const [row] = await store.messagesAfter(appId, seq - 1n, 1);
    if (row && row.seq === seq) out.push({ msgId, from: row.from, to: row.to, chatType: row.chatType });
  }
  return out;
}

/**
 * The connections that have frames queued in this turn of the event loop, written when it ends:
 * one timer for all of them rather than one each.
 */
const endOfTurn = new (class {
  private readonly waiting: JsonConnection[] = [];

  add(c: JsonConnection): void {
    if (this.waiting.push(c) === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const all = this.waiting.splice(0);
    for (const c of all) c.flushOutput();
  }
})();

function sleep(ms: number): Promise<void> {
  return new Promise((ok) => setTimeout(ok, ms));
}
