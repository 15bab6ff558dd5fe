import { randomBytes } from 'node:crypto';
import type { ChatProtocol, ClientOptions } from './chat-client.js';
import { SocketChatClient } from './socket-chat-client.js';

/*
 * The JSON protocol `chatvault.v1` (docs/realtime.md), reduced to what a load generator needs.
 * The server writes its frames with fixed key orders, so the few fields read here are found by
 * `indexOf` instead of parsing each frame: the client must stay cheaper than the server it
 * measures. A value holding an escape falls back to JSON.parse, so an unusual frame costs time,
 * never a wrong answer.
 */

const SUBPROTOCOL = 'chatvault.v1';
// As `chatvault/client` does: one `delivered` frame for a burst (each frame is a store write),
// sent at 100 ids or after 200 ms, whichever comes first.
const RECEIPT_BATCH = 100;
const RECEIPT_DELAY_MS = 200;
// Until `welcome` says otherwise.
const DEFAULT_HEARTBEAT_MS = 25_000;

// Client ids must be unique per sender for the whole life of the data folder: a user logs in
// again in a later phase, and a repeated cid would be answered with the first message's id and
// store nothing. A per-process tag and a per-client number make every client's ids its own.
const PROCESS_TAG = randomBytes(4).toString('hex');
let clientCount = 0;

type Step = 'connecting' | 'auth' | 'syncing' | 'ready' | 'closed';

/** The string value of `"key":"…"` at or after `from`, or null when absent or escaped. */
function stringField(f: string, key: string, from = 0): string | null {
  const k = f.indexOf(key, from);
  if (k < 0) return null;
  const start = k + key.length;
  const end = f.indexOf('"', start);
  if (end < 0) return null;
  const v = f.slice(start, end);
  return v.includes('\\') ? null : v;
}

interface PushFrame {
  message?: { msg_id?: unknown; from?: unknown; chat_type?: unknown; payload?: { bodies?: { msg?: unknown }[] } };
}

class JsonClient extends SocketChatClient {
  private step: Step = 'connecting';
  private nextId = 0;
  private readonly cidPrefix: string;
  private receipts: string[] = [];
  private receiptTimer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(opts: ClientOptions) {
    super(opts, '/ws', SUBPROTOCOL);
    this.cidPrefix = `${PROCESS_TAG}.${(clientCount++).toString(36)}.`;
  }

  get ready(): boolean {
    return this.step === 'ready';
  }

  protected describeStep(): string {
    return `at step ${this.step}`;
  }

  protected opened(): void {
    this.step = 'auth';
    this.write(JSON.stringify({ op: 'auth', token: this.opts.token }));
  }

  protected socketClosed(): void {
    this.step = 'closed';
    this.stopTimers();
  }

  protected nextSendId(): string {
    return this.cidPrefix + (this.nextId++).toString(36);
  }

  protected sendFrame(cid: string, to: string, text: string): string {
    return JSON.stringify({ op: 'send', cid, target: to, msg: { type: 'txt', msg: text } });
  }

  protected override beforeClose(): void {
    // What was received is acknowledged before leaving, so it does not wait as offline.
    this.flushReceipts();
    this.stopTimers();
  }

  protected onFrame(f: string, receivedAt: number): void {
    // Pushes of waiting messages come between `welcome` and `synced`, before the login resolves.
    if (f.startsWith('{"op":"message"')) return this.onPush(f, receivedAt);
    if (f.startsWith('{"op":"ack"')) return this.onAck(f, receivedAt);
    // Receipts for our sends, presence, pongs: nothing the load generator counts.
    if (f.startsWith('{"op":"receipt"') || f.startsWith('{"op":"presence"') || f.startsWith('{"op":"pong"')) return;
    if (f.startsWith('{"op":"welcome"')) return this.onWelcome(f);
    if (f.startsWith('{"op":"synced"')) {
      if (this.step !== 'syncing') return;
      this.step = 'ready';
      this.loginDone?.();
      return;
    }
    if (f.startsWith('{"op":"error"')) return this.onError(f);
  }

  private onWelcome(f: string): void {
    if (this.step !== 'auth') return;
    this.step = 'syncing';
    const m = /"heartbeat":(\d+)/.exec(f);
    const every = m ? Number(m[1]) : DEFAULT_HEARTBEAT_MS;
    // The server closes a connection it heard nothing from for three heartbeats; idle ones too.
    this.heartbeat = setInterval(() => this.write('{"op":"ping"}'), every);
    this.heartbeat.unref();
  }

  private onAck(f: string, receivedAt: number): void {
    const cid = stringField(f, '"cid":"');
    const msgId = stringField(f, '"msg_id":"');
    if (cid !== null && msgId !== null) this.acked(cid, msgId, receivedAt);
  }

  private onError(f: string): void {
    let e: { cid?: unknown; code?: unknown; message?: unknown } = {};
    try {
      e = JSON.parse(f) as typeof e;
    } catch {
      // Reported below with the raw frame.
    }
    if (typeof e.cid === 'string' && this.refused(e.cid, f.slice(0, 300))) return;
    if (this.loginDone) this.loginDone(new Error(`login of ${this.username} refused: ${f.slice(0, 300)}`));
  }

  private onPush(f: string, receivedAt: number): void {
    let msgId = stringField(f, '"msg_id":"');
    let from = stringField(f, '"from":"');
    const bodies = f.indexOf('"bodies":[');
    let text = bodies < 0 ? null : stringField(f, '"msg":"', bodies);
    // Chat-room pushes carry no seq and take no receipt; the scenario sends none.
    let resumable = f.startsWith('{"op":"message","seq":');
    if (msgId === null || from === null || text === null) {
      try {
        const m = (JSON.parse(f) as PushFrame).message;
        msgId = typeof m?.msg_id === 'string' ? m.msg_id : null;
        from = typeof m?.from === 'string' ? m.from : '';
        const t = m?.payload?.bodies?.[0]?.msg;
        text = typeof t === 'string' ? t : '';
        resumable &&= m?.chat_type !== 'chatroom';
      } catch {
        return;
      }
      if (msgId === null) return;
    }
    if (resumable) this.queueReceipt(msgId);
    this.handler({ id: msgId, from, text, receivedAt });
  }

  private queueReceipt(msgId: string): void {
    this.receipts.push(msgId);
    if (this.receipts.length >= RECEIPT_BATCH) return this.flushReceipts();
    this.receiptTimer ??= setTimeout(() => this.flushReceipts(), RECEIPT_DELAY_MS);
  }

  private flushReceipts(): void {
    if (this.receiptTimer) clearTimeout(this.receiptTimer);
    this.receiptTimer = null;
    if (this.receipts.length === 0) return;
    const ids = this.receipts;
    this.receipts = [];
    this.write(JSON.stringify({ op: 'delivered', msg_ids: ids }));
  }

  private stopTimers(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (this.receiptTimer) clearTimeout(this.receiptTimer);
    this.receiptTimer = null;
  }
}

/** The JSON protocol `chatvault.v1` over WebSocket at `/ws`, logging in with a REST user token. */
export const jsonProtocol: ChatProtocol = {
  name: 'json',
  create: (opts) => new JsonClient(opts),
};
