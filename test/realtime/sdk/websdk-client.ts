import type {
  SdkConnection, SdkError, SdkOpenOptions, SdkPresence, SdkTextMessage, SdkTextSetOptions, SdkVersion, ServerAck,
} from './websdk-api.js';
import { openSdkWindow, type Frame, type SdkRequest, type SdkWindow } from './websdk-window.js';

/*
 * One historical web SDK user, driven headlessly in a jsdom window of its own, as one browser tab
 * per user would be (spec §12, route 1). Never two clients in one window: 1.4.15 keeps its Strophe
 * connection in a module-level variable, and both versions keep pending sends in one
 * module-level table.
 */

export interface WebSdkClientOptions {
  version: SdkVersion;
  /** The REST origin, e.g. `http://127.0.0.1:PORT`; also the window's origin. */
  restUrl: string;
  /** Defaults to `ws://{restUrl host}/ws/`. */
  wsUrl?: string;
  appKey: string;
}

export type Credentials = { user: string; token: string } | { user: string; password: string };

export type OpenOutcome = { ok: true } | { ok: false; error: SdkError };

/** Where to send a text: a user, a group or a chat room (by id). */
export type TextTarget = { user: string } | { group: string } | { chatroom: string };

const DEFAULT_TIMEOUT_MS = 10_000;

/** Polls `probe` until it returns something other than undefined; the error names `what` and adds `detail()`. */
export async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, detail: () => string = () => '', timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      const d = detail();
      throw new Error(`timed out waiting for ${what}${d ? `\n${d}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One SDK user in a window of its own. */
export class WebSdkClient {
  readonly texts: SdkTextMessage[] = [];
  readonly acks: ServerAck[] = [];
  readonly presences: SdkPresence[] = [];
  readonly errors: SdkError[] = [];
  opened = 0;
  closed = 0;

  private readonly conn: SdkConnection;
  private readonly window: SdkWindow;
  private disposed = false;
  private user = '';

  /** Loads the SDK into a fresh window whose origin is the REST server. */
  constructor(private readonly opts: WebSdkClientOptions) {
    this.window = openSdkWindow(opts.version, opts.restUrl);
    const wsUrl = opts.wsUrl ?? `${opts.restUrl.replace(/^http/, 'ws')}/ws/`;
    this.conn = new this.window.webim.connection({
      url: wsUrl, apiUrl: opts.restUrl, isAutoLogin: true, isMultiLoginSessions: false,
      // No automatic reconnect: a kicked client must stay kicked for the test to see it.
      autoReconnectNumMax: 0, heartBeatWait: 30_000,
    });
    this.conn.listen({
      onOpened: () => {
        this.opened++;
      },
      onClosed: () => {
        this.closed++;
      },
      // Copied out of the window's realm: its objects have another Object.prototype, which
      // strict deep equality in the tests would see.
      onTextMessage: (m) => {
        this.texts.push(JSON.parse(JSON.stringify(m)) as SdkTextMessage);
      },
      onPresence: (p) => {
        this.presences.push(JSON.parse(JSON.stringify(p)) as SdkPresence);
      },
      onReceivedMessage: (m) => {
        const ack = readAck(m);
        if (ack) this.acks.push(ack);
      },
      onError: (e) => {
        this.errors.push({ ...e });
      },
    });
  }

  get frames(): readonly Frame[] {
    return this.window.frames;
  }

  get requests(): readonly SdkRequest[] {
    return this.window.requests;
  }

  get version(): SdkVersion {
    return this.opts.version;
  }

  /** `conn.open()` by token or by password; resolves when the SDK reports opened or an error. */
  async open(creds: Credentials, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<OpenOutcome> {
    this.user = creds.user;
    const errorsBefore = this.errors.length;
    const openedBefore = this.opened;
    const options: SdkOpenOptions = { user: creds.user, appKey: this.opts.appKey, apiUrl: this.opts.restUrl };
    if ('token' in creds) options.accessToken = creds.token;
    else options.pwd = creds.password;
    this.conn.open(options);
    return eventually(`${this.describe()} to open`, (): OpenOutcome | undefined => {
      if (this.opened > openedBefore) return { ok: true };
      const error = this.errors[errorsBefore];
      return error ? { ok: false, error } : undefined;
    }, () => this.transcript(), timeoutMs);
  }

  /** Opens and insists on success. */
  async login(creds: Credentials): Promise<void> {
    const outcome = await this.open(creds);
    if (!outcome.ok) throw new Error(`${this.describe()} failed to log in: ${JSON.stringify(outcome.error)}\n${this.transcript()}`);
  }

  /**
   * Sends a text the way an app does (`new WebIM.message('txt', id)`, `set`, `setGroup` for
   * groups and rooms, `conn.send(msg.body)`) and resolves with the send-success callback's
   * `(id, mid)`, which the SDK fires on the server ack.
   */
  sendText(target: TextTarget, text: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ServerAck> {
    // The SDK's own ids are milliseconds in hex (1.4.6: not unique within one millisecond).
    const id = this.conn.getUniqueId(`CV${Math.random().toString(36).slice(2, 8)}`);
    const msg = new this.window.webim.message('txt', id);
    const to = 'user' in target ? target.user : 'group' in target ? target.group : target.chatroom;
    return new Promise<ServerAck>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for the send-success callback of ${id} from ${this.describe()}\n${this.transcript()}`)), timeoutMs);
      const options: SdkTextSetOptions = {
        msg: text, to,
        success: this.window.inWindow((ackId, mid) => {
          clearTimeout(timer);
          resolve({ id: String(ackId), mid: String(mid) });
        }),
        fail: this.window.inWindow((failedId) => {
          clearTimeout(timer);
          reject(new Error(`the SDK reported the send of ${String(failedId)} failed\n${this.transcript()}`));
        }),
      };
      if ('chatroom' in target) options.roomType = true;
      msg.set(options);
      if (!('user' in target)) msg.setGroup('groupchat');
      this.conn.send(msg.body);
    });
  }

  /**
   * Sends a text without waiting for anything (a send the server is expected to refuse: the SDK
   * reports that through `onTextMessage` with `error`, its own fail callback only on a timeout).
   */
  sendTextRefused(target: TextTarget, text: string): void {
    this.sendText(target, text, 60_000).catch(() => {});
  }

  /** The first received text matching `match`, waiting for it. */
  waitForText(match: (m: SdkTextMessage) => boolean, what = 'a text message'): Promise<SdkTextMessage> {
    return eventually(`${what} at ${this.describe()}`, () => this.texts.find(match), () => this.transcript());
  }

  /** The first error (after index `from`) matching `match`, waiting for it. */
  waitForError(match: (e: SdkError) => boolean, what = 'an error', from = 0): Promise<SdkError> {
    return eventually(`${what} at ${this.describe()}`, () => this.errors.slice(from).find(match), () => this.transcript());
  }

  /** Resolves once the SDK reported onClosed. */
  async waitForClosed(): Promise<void> {
    await eventually(`onClosed at ${this.describe()}`, () => (this.closed > 0 ? true : undefined), () => this.transcript());
  }

  isOpened(): boolean {
    return this.conn.isOpened();
  }

  /** Logs out the way an app does (`conn.close()`), waits for onClosed, then closes the window. */
  async close(): Promise<void> {
    if (this.disposed) return;
    try {
      if (this.conn.isOpened()) {
        this.conn.close('logout');
        await this.waitForClosed();
      }
    } finally {
      this.dispose();
    }
  }

  /** Closes the window: its timers stop and its sockets go away. Safe to call twice. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.window.close();
  }

  /** The frames and events so far, for failure messages. */
  transcript(): string {
    const lines = this.frames.map((f) => `${f.dir === 'in' ? 'S→C' : 'C→S'} ${f.data}`);
    return [
      `-- ${this.describe()}: opened=${this.opened} closed=${this.closed}`,
      ...this.requests.map((r) => `REST ${r.method} ${r.url} ${r.body ?? ''}`),
      ...lines,
      `errors: ${JSON.stringify(this.errors.map(summarizeError))}`,
      `acks: ${JSON.stringify(this.acks)}`,
      `texts: ${JSON.stringify(this.texts.map((t) => ({ id: t.id, type: t.type, from: t.from, to: t.to, data: t.data, delay: t.delay })))}`,
      ...this.window.log.map((l) => `console ${l}`),
    ].join('\n');
  }

  private describe(): string {
    return `websdk ${this.opts.version} user ${this.user || '(not logged in)'}`;
  }
}

/**
 * The server ack as `onReceivedMessage` reports it: 1.4.15 passes `{id, mid}` (id from the
 * ack's `<body>`), 1.4.6 passes the `<message>` element itself, read here the way 1.4.6 reads
 * it for the send callback (id = text of `<received>`, mid = its attribute).
 */
function readAck(m: unknown): ServerAck | undefined {
  if (typeof m !== 'object' || m === null) return undefined;
  const el = m as { getElementsByTagName?: (name: string) => ArrayLike<{ textContent: string | null; getAttribute(n: string): string | null }> };
  if (typeof el.getElementsByTagName === 'function') {
    const received = el.getElementsByTagName('received')[0];
    if (!received) return undefined;
    return { id: received.textContent ?? '', mid: received.getAttribute('mid') ?? '' };
  }
  const { id, mid } = m as { id?: unknown; mid?: unknown };
  return { id: String(id), mid: String(mid) };
}

function summarizeError(e: SdkError): Record<string, unknown> {
  const data = e.data;
  const out: Record<string, unknown> = { type: e.type };
  if (e.msg !== undefined) out.msg = e.msg;
  if (e.conflict !== undefined) out.conflict = e.conflict;
  if (data !== undefined) out.data = typeof data === 'object' && data !== null && 'nodeName' in data ? '(element)' : data;
  return out;
}
