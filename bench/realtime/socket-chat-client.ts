import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import type { ChatClient, ClientOptions, IncomingChat, SendAck } from './chat-client.js';

interface Pending {
  resolve: (a: SendAck) => void;
  reject: (e: Error) => void;
  sentAt: number;
  timer: NodeJS.Timeout;
}

/**
 * What every load client over one WebSocket shares: the login's timeout and outcome, sends
 * waiting for their acks, the message handler and a polite close. A protocol supplies its frames:
 * what to write once the socket opens, how to read a frame, how a send is written.
 */
export abstract class SocketChatClient implements ChatClient {
  readonly username: string;
  protected ws: WebSocket | null = null;
  protected handler: (m: IncomingChat) => void = () => {};
  /** Settles the login in progress (an error fails it); null once it is settled. */
  protected loginDone: ((e?: Error) => void) | null = null;
  private readonly pending = new Map<string, Pending>();

  constructor(protected readonly opts: ClientOptions, private readonly path: string, private readonly subprotocol: string) {
    this.username = opts.username;
  }

  abstract get ready(): boolean;
  /** Written once the socket is open: the first frame of the login. */
  protected abstract opened(): void;
  /** One frame from the server, with the time it arrived. */
  protected abstract onFrame(frame: string, receivedAt: number): void;
  /** The frame of a text send under the client id `id`. */
  protected abstract sendFrame(id: string, to: string, text: string): string;
  /** The next client id for a send. */
  protected abstract nextSendId(): string;
  /** Called when the socket closes (either side). */
  protected abstract socketClosed(): void;
  /** Written before a polite close, while the socket is open (a closing frame, last receipts). */
  protected beforeClose(): void {}

  get inFlight(): number {
    return this.pending.size;
  }

  onMessage(handler: (m: IncomingChat) => void): void {
    this.handler = handler;
  }

  connect(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`login of ${this.username} timed out (${this.describeStep()})`)), timeoutMs);
      const finish = (e?: Error): void => {
        if (!this.loginDone) return;
        this.loginDone = null;
        clearTimeout(timer);
        if (e) {
          this.ws?.terminate();
          reject(e);
        } else resolve();
      };
      this.loginDone = finish;
      const ws = new WebSocket(`${this.opts.baseUrl.replace(/^http/, 'ws')}${this.path}`, this.subprotocol, { perMessageDeflate: false });
      this.ws = ws;
      ws.on('open', () => this.opened());
      ws.on('message', (data) => this.onFrame(String(data), performance.now()));
      ws.on('error', (e) => finish(e));
      ws.on('close', (code, reason) => {
        this.socketClosed();
        finish(new Error(`socket of ${this.username} closed during login (${code} ${String(reason)})`));
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new Error(`socket closed before the ack of ${id}`));
        }
        this.pending.clear();
      });
    });
  }

  send(to: string, text: string, timeoutMs: number): Promise<SendAck> {
    if (!this.ready) return Promise.reject(new Error(`${this.username} is not logged in`));
    const id = this.nextSendId();
    return new Promise<SendAck>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no ack for ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.write(this.sendFrame(id, to, text));
      this.pending.set(id, { resolve, reject, sentAt: performance.now(), timer });
    });
  }

  close(timeoutMs: number): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, timeoutMs);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (ws.readyState === WebSocket.OPEN) this.beforeClose();
      ws.close(1000);
    });
  }

  protected write(frame: string): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(frame);
  }

  /** The server stored the send `id` as `msgId`. */
  protected acked(id: string, msgId: string, receivedAt: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve({ id: msgId, sentAt: p.sentAt, ackedAt: receivedAt });
  }

  /** The server refused the send `id`; false when no such send waits. */
  protected refused(id: string, why: string): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.reject(new Error(`send ${id} refused: ${why}`));
    return true;
  }

  /** Where the login is, for a timeout's message. */
  protected abstract describeStep(): string;
}
