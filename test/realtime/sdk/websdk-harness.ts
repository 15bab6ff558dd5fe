import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * The historical Easemob web SDK (npm `easemob-websdk` 1.4.x, Strophe 1.2.8 inside) driven
 * headlessly: one jsdom window per client, as one browser tab per user would be (spec §12,
 * route 1). 1.4.15 keeps its Strophe connection in a module-level variable and both versions keep
 * their pending sends in one module-level table, so two clients must never share a window.
 */

/** The SDK versions under test: 1.4.15 is the last 1.4.x (extra bind children), 1.4.6 the first on npm. */
export const SDK_VERSIONS = ['1.4.15', '1.4.6'] as const;
export type SdkVersion = (typeof SDK_VERSIONS)[number];

/** `WebIM.statusCode` values the tests branch on (the same numbers in both versions). */
export const SDK_CODE = {
  /** The REST token request failed (a wrong password when logging in with `pwd`). */
  OPEN_ERROR: 1,
  /** SASL said not-authorized (a wrong token). */
  AUTH_ERROR: 2,
  /** A stream error (Strophe ERROR), e.g. conflict. */
  SERVER_ERROR: 8,
} as const;

// What the tests use of the SDK, typed (the bundle is untyped browser code).

interface SdkConnectionOptions {
  url: string;
  apiUrl: string;
  isAutoLogin: boolean;
  isMultiLoginSessions: boolean;
  autoReconnectNumMax: number;
  heartBeatWait: number;
}

interface SdkOpenOptions {
  user: string;
  appKey: string;
  apiUrl: string;
  accessToken?: string;
  pwd?: string;
}

/** What `onTextMessage` hands the app. */
export interface SdkTextMessage {
  /** The server message id (the stanza `id`). */
  id: string;
  /** `chat`, `groupchat` or `chatroom`. */
  type: string;
  from: string;
  to: string;
  data: string;
  /** The `<delay stamp>` of a message stored while the user was offline. */
  delay?: string;
  ext: Record<string, unknown>;
  error: boolean;
  errorCode: string;
  errorText: string;
}

/** What `onError` hands the app. */
export interface SdkError {
  type: number;
  msg?: string;
  conflict?: boolean;
  reconnect?: boolean;
  data?: unknown;
}

/** What `onPresence` hands the app (only the fields read here; the SDK adds more per kind). */
export interface SdkPresence {
  type?: string;
  from?: string;
  to?: string;
  status?: string;
  [key: string]: unknown;
}

/** A server ack (spec §6 shape A) as the app sees it: client id and the server's msg_id. */
export interface ServerAck {
  id: string;
  mid: string;
}

type WindowFunction = (...args: unknown[]) => void;

interface SdkTextSetOptions {
  msg: string;
  to: string;
  roomType?: boolean;
  success: WindowFunction;
  fail: WindowFunction;
}

interface SdkMessage {
  id: string;
  body: object;
  set(options: SdkTextSetOptions): void;
  setGroup(group: 'groupchat'): void;
}

interface SdkHandlers {
  onOpened: () => void;
  onClosed: () => void;
  onTextMessage: (m: SdkTextMessage) => void;
  onPresence: (p: SdkPresence) => void;
  onReceivedMessage: (m: unknown) => void;
  onError: (e: SdkError) => void;
}

interface SdkConnection {
  listen(handlers: SdkHandlers): void;
  open(options: SdkOpenOptions): void;
  send(body: object): void;
  close(reason?: string): void;
  getUniqueId(prefix?: string): string;
  isOpened(): boolean;
}

interface WebIm {
  connection: new (options: SdkConnectionOptions) => SdkConnection;
  message: new (type: 'txt', id: string) => SdkMessage;
}

/** One REST request the SDK made (its token call when logging in with a password). */
export interface SdkRequest {
  method: string;
  url: string;
  body: string | undefined;
}

/** One WebSocket frame as the SDK's socket saw it. */
export interface Frame {
  dir: 'in' | 'out';
  data: string;
}

export interface WebSdkClientOptions {
  version: SdkVersion;
  /** The REST origin, e.g. `http://127.0.0.1:PORT`: also the window's URL, so the SDK's REST calls are same-origin. */
  restUrl: string;
  /** Defaults to `ws://{restUrl host}/ws/`. */
  wsUrl?: string;
  appKey: string;
}

export type Credentials = { user: string; token: string } | { user: string; password: string };

export type OpenOutcome = { ok: true } | { ok: false; error: SdkError };

/** Where to send a text: a user, a group or a chat room (by id). */
export type TextTarget = { user: string } | { group: string } | { chatroom: string };

// jsdom is loaded untyped on purpose: its type package pulls the DOM lib into the whole
// compilation, which retypes fetch and friends in every other file. What is used is typed here.
interface VirtualConsoleLike {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}
interface SdkWindow {
  eval(code: string): unknown;
  close(): void;
  WebSocket: { prototype: { send(data: unknown): void } };
  XMLHttpRequest: { prototype: { open(method: string, url: string, ...rest: unknown[]): void; send(body?: unknown): void } };
}
interface JsdomModule {
  JSDOM: new (html: string, options: { url: string; runScripts: 'outside-only'; virtualConsole: VirtualConsoleLike }) => { window: SdkWindow };
  VirtualConsole: new () => VirtualConsoleLike;
}

const require = createRequire(import.meta.url);
const { JSDOM, VirtualConsole } = require('jsdom') as JsdomModule;
const scripts = new Map<SdkVersion, { strophe: string; websdk: string }>();

/** The two bundles of one version, read once per process. */
function sdkScripts(version: SdkVersion): { strophe: string; websdk: string } {
  let s = scripts.get(version);
  if (!s) {
    const dist = path.join(path.dirname(require.resolve(`easemob-websdk-${version}/package.json`)), 'dist');
    s = {
      strophe: fs.readFileSync(path.join(dist, 'strophe-1.2.8.js'), 'utf8'),
      websdk: fs.readFileSync(path.join(dist, `websdk-${version}.js`), 'utf8'),
    };
    scripts.set(version, s);
  }
  return s;
}

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
  readonly frames: Frame[] = [];
  readonly requests: SdkRequest[] = [];
  opened = 0;
  closed = 0;
  user = '';

  private readonly conn: SdkConnection;
  private readonly webim: WebIm;
  private readonly inWindow: (f: WindowFunction) => WindowFunction;
  private disposed = false;

  private constructor(
    private readonly dom: { window: SdkWindow },
    private readonly opts: WebSdkClientOptions,
    /** The window's console output and jsdom errors (a throwing SDK callback shows up here). */
    readonly log: string[],
  ) {
    const window = dom.window;
    this.recordFrames(window);
    this.recordRequests(window);
    const { strophe, websdk } = sdkScripts(opts.version);
    window.eval(strophe);
    window.eval(websdk);
    this.webim = (window as unknown as { WebIM: WebIm }).WebIM;
    // The SDK calls per-message callbacks only if `cb instanceof Function` in its own realm.
    this.inWindow = window.eval('(function (f) { return function () { f.apply(null, arguments); }; })') as (f: WindowFunction) => WindowFunction;
    const wsUrl = opts.wsUrl ?? `${opts.restUrl.replace(/^http/, 'ws')}/ws/`;
    this.conn = new this.webim.connection({
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

  /** Loads the SDK into a fresh window whose origin is the REST server. */
  static create(opts: WebSdkClientOptions): WebSdkClient {
    const log: string[] = [];
    const vc = new VirtualConsole();
    for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      vc.on(level, (...args: unknown[]) => log.push(`${level}: ${args.map(String).join(' ')}`));
    }
    vc.on('jsdomError', (e) => log.push(`jsdomError: ${e instanceof Error ? e.stack ?? e.message : String(e)}`));
    const dom = new JSDOM('<!DOCTYPE html><html><head></head><body></body></html>', {
      url: `${opts.restUrl}/`, runScripts: 'outside-only', virtualConsole: vc,
    });
    // The bundle reads WebIM.config while it loads.
    (dom.window as unknown as { WebIM: unknown }).WebIM = { config: { isDebug: false, isSandBox: false } };
    return new WebSdkClient(dom, opts, log);
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
    const msg = new this.webim.message('txt', id);
    const to = 'user' in target ? target.user : 'group' in target ? target.group : target.chatroom;
    return new Promise<ServerAck>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for the send-success callback of ${id} from ${this.describe()}\n${this.transcript()}`)), timeoutMs);
      const options: SdkTextSetOptions = {
        msg: text, to,
        success: this.inWindow((ackId, mid) => {
          clearTimeout(timer);
          resolve({ id: String(ackId), mid: String(mid) });
        }),
        fail: this.inWindow((failedId) => {
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
    this.dom.window.close();
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
      ...this.log.map((l) => `console ${l}`),
    ].join('\n');
  }

  private describe(): string {
    return `websdk ${this.opts.version} user ${this.user || '(not logged in)'}`;
  }

  /** Records the SDK's XMLHttpRequests (method, URL, body) as they are sent. */
  private recordRequests(window: SdkWindow): void {
    const requests = this.requests;
    const proto = window.XMLHttpRequest.prototype;
    const open = proto.open;
    const send = proto.send;
    const pending = new WeakMap<object, { method: string; url: string }>();
    proto.open = function (this: object, method: string, url: string, ...rest: unknown[]) {
      pending.set(this, { method, url });
      open.call(this, method, url, ...rest);
    };
    proto.send = function (this: object, body?: unknown) {
      const r = pending.get(this);
      if (r) requests.push({ ...r, body: body === undefined || body === null ? undefined : String(body) });
      send.call(this, body);
    };
  }

  /**
   * Records every frame on the window's WebSocket: `send` on the prototype, and every
   * `onmessage` handler Strophe installs wrapped on the way in.
   */
  private recordFrames(window: SdkWindow): void {
    const frames = this.frames;
    const proto = window.WebSocket.prototype;
    const send = proto.send;
    proto.send = function (this: unknown, data: unknown) {
      frames.push({ dir: 'out', data: String(data) });
      send.call(this, data);
    };
    const desc = Object.getOwnPropertyDescriptor(proto, 'onmessage');
    if (!desc?.set || !desc.get) throw new Error('jsdom WebSocket has no onmessage accessor');
    const { get, set } = desc;
    Object.defineProperty(proto, 'onmessage', {
      configurable: true,
      enumerable: desc.enumerable ?? true,
      get,
      set(this: unknown, handler: unknown) {
        if (typeof handler !== 'function') return set.call(this, handler);
        const h = handler as (e: { data: unknown }) => unknown;
        set.call(this, function (this: unknown, e: { data: unknown }) {
          frames.push({ dir: 'in', data: String(e.data) });
          return h.call(this, e);
        });
      },
    });
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
