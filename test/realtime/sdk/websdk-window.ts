import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { SdkVersion, WebIm, WindowFunction } from './websdk-api.js';

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

/** A jsdom window with one SDK version loaded, and what it recorded. */
export interface SdkWindow {
  readonly webim: WebIm;
  /**
   * Wraps a function so that it belongs to the window's realm: the SDK calls per-message
   * callbacks only if `cb instanceof Function` of its own realm, which Node's functions are not.
   */
  inWindow(f: WindowFunction): WindowFunction;
  readonly frames: Frame[];
  readonly requests: SdkRequest[];
  /** The window's console output and jsdom errors (a throwing SDK callback shows up here). */
  readonly log: string[];
  /** Stops the window's timers and drops its sockets. */
  close(): void;
}

// jsdom is loaded untyped on purpose: its type package pulls the DOM lib into the whole
// compilation, which retypes fetch and friends in every other file. What is used is typed here.
interface VirtualConsoleLike {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}
interface JsdomWindow {
  eval(code: string): unknown;
  close(): void;
  WebSocket: { prototype: { send(data: unknown): void } };
  XMLHttpRequest: { prototype: { open(method: string, url: string, ...rest: unknown[]): void; send(body?: unknown): void } };
}
interface JsdomModule {
  JSDOM: new (html: string, options: { url: string; runScripts: 'outside-only'; virtualConsole: VirtualConsoleLike }) => { window: JsdomWindow };
  VirtualConsole: new () => VirtualConsoleLike;
}

const require = createRequire(import.meta.url);
const { JSDOM, VirtualConsole } = require('jsdom') as JsdomModule;
const scripts = new Map<SdkVersion, { strophe: string; websdk: string }>();

/** The two bundles of one version (Strophe, then the SDK), read once per process. */
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

/**
 * A fresh window at `origin` (the REST server's, so the SDK's token call is same-origin) with
 * Strophe and the SDK evaluated in it, its WebSocket frames and XMLHttpRequests recorded.
 */
export function openSdkWindow(version: SdkVersion, origin: string): SdkWindow {
  const log: string[] = [];
  const frames: Frame[] = [];
  const requests: SdkRequest[] = [];
  const vc = new VirtualConsole();
  for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
    vc.on(level, (...args: unknown[]) => log.push(`${level}: ${args.map(String).join(' ')}`));
  }
  vc.on('jsdomError', (e) => log.push(`jsdomError: ${e instanceof Error ? e.stack ?? e.message : String(e)}`));
  const { window } = new JSDOM('<!DOCTYPE html><html><head></head><body></body></html>', { url: `${origin}/`, runScripts: 'outside-only', virtualConsole: vc });
  recordFrames(window, frames);
  recordRequests(window, requests);
  // The bundle reads WebIM.config while it loads.
  (window as unknown as { WebIM: unknown }).WebIM = { config: { isDebug: false, isSandBox: false } };
  const { strophe, websdk } = sdkScripts(version);
  window.eval(strophe);
  window.eval(websdk);
  const wrap = window.eval('(function (f) { return function () { f.apply(null, arguments); }; })') as (f: WindowFunction) => WindowFunction;
  return {
    webim: (window as unknown as { WebIM: WebIm }).WebIM,
    inWindow: wrap,
    frames, requests, log,
    close: () => window.close(),
  };
}

/** Records the SDK's XMLHttpRequests (method, URL, body) as they are sent. */
function recordRequests(window: JsdomWindow, requests: SdkRequest[]): void {
  const proto = window.XMLHttpRequest.prototype;
  const { open, send } = proto;
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
 * Records every frame on the window's WebSocket: `send` on the prototype, and each `onmessage`
 * handler Strophe installs wrapped on the way in (Strophe swaps it after the stream opens).
 */
function recordFrames(window: JsdomWindow, frames: Frame[]): void {
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
