import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { req } from '../helpers.js';

export const APPKEY = 'demo#chat';
export const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';

/** A raw RFC 7395 client: every received frame queued, read in order. */
export class XmppClient {
  readonly frames: string[] = [];
  closed = false;
  private waiters: (() => void)[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      this.frames.push(String(d));
      this.wake();
    });
    ws.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(port: number, path = '/ws/'): Promise<XmppClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, 'xmpp');
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        // Browsers drop a connection whose sub-protocol is not echoed (spec §4.1).
        assert.equal(ws.protocol, 'xmpp');
        resolve(new XmppClient(ws));
      });
      ws.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(data: string): void {
    this.ws.send(data);
  }

  /** The first received frame matching `pattern` (consumed with everything before it). */
  async expect(pattern: RegExp, timeoutMs = 3000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex((f) => pattern.test(f));
      if (i >= 0) return this.frames.splice(0, i + 1)[i]!;
      if (this.closed) throw new Error(`closed before ${pattern}; got ${JSON.stringify(this.frames)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${pattern}; got ${JSON.stringify(this.frames)}`);
      await this.sleep(left);
    }
  }

  /**
   * Asserts that nothing matching `pattern` arrives before a ping round trip: the server handles
   * a stream's frames in order, so what the frames before the ping caused is out by then.
   */
  async expectNone(pattern: RegExp, id = `none${Math.random().toString(36).slice(2)}`): Promise<void> {
    this.send(`<iq type="get" id="${id}"><ping xmlns="urn:xmpp:ping"/></iq>`);
    const i = this.frames.findIndex((f) => pattern.test(f));
    assert.equal(i, -1, `unexpected ${this.frames[i]}`);
    const before = await this.takeUntil(new RegExp(`id="${id}"`));
    const bad = before.find((f) => pattern.test(f));
    assert.equal(bad, undefined, `unexpected ${bad}`);
  }

  /** Every frame up to and including the first matching `pattern`. */
  async takeUntil(pattern: RegExp, timeoutMs = 3000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex((f) => pattern.test(f));
      if (i >= 0) return this.frames.splice(0, i + 1);
      if (this.closed) throw new Error(`closed before ${pattern}; got ${JSON.stringify(this.frames)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${pattern}; got ${JSON.stringify(this.frames)}`);
      await this.sleep(left);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        r();
      });
    });
  }

  /** Resolves once the server closed the socket. */
  async closedBy(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('socket not closed');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Closes the socket and waits until it is closed. */
  async close(): Promise<void> {
    this.ws.close();
    await this.closedBy();
  }
}

export function plain(user: string, password: string, domain = 'easemob.com'): string {
  return Buffer.from(`${APPKEY}_${user}@${domain}\0${APPKEY}_${user}\0${password}`).toString('base64');
}

export async function userToken(base: string, user: string): Promise<string> {
  const r = await req(`${base}/demo/chat/token`, 'POST', { grant_type: 'password', username: user, password: `${user}-pw` });
  assert.equal(r.status, 200, r.text);
  return r.body.access_token as string;
}

export interface LoginOptions {
  resource?: string;
  /** Send the initial presence (default true). */
  available?: boolean;
  domain?: string;
  password?: string;
}

/** Open, SASL PLAIN, restart, bind, session, initial presence: the web SDK's login (spec §4). */
export async function xmppLogin(port: number, user: string, o: LoginOptions = {}): Promise<XmppClient> {
  const domain = o.domain ?? 'easemob.com';
  const resource = o.resource ?? 'webim';
  const open = `<open xmlns="${FRAMING}" to="${domain}" version="1.0"/>`;
  const c = await XmppClient.connect(port);
  c.send(open);
  await c.expect(/stream:features/);
  c.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${plain(user, o.password ?? `${user}-pw`, domain)}</auth>`);
  await c.expect(/^<success /);
  c.send(open);
  await c.expect(/stream:features/);
  c.send(`<iq type="set" id="_bind_auth_2" xmlns="jabber:client"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>${resource}</resource></bind></iq>`);
  assert.match(await c.expect(/_bind_auth_2/), new RegExp(`<jid>${APPKEY}_${user}@${domain.replace(/\./g, '\\.')}/${resource}</jid>`));
  c.send('<iq type="set" id="_session_auth_2" xmlns="jabber:client"><session xmlns="urn:ietf:params:xml:ns:xmpp-session"/></iq>');
  await c.expect(/_session_auth_2/);
  if (o.available ?? true) c.send('<presence xmlns="jabber:client"/>');
  return c;
}

/** A web-SDK text message stanza to a user. */
export function chatStanza(to: string, clientId: string, text: string, domain = 'easemob.com'): string {
  const body = JSON.stringify({ from: 'ignored', to, bodies: [{ type: 'txt', msg: text }], ext: {} });
  return `<message type="chat" to="${APPKEY}_${to}@${domain}" id="${clientId}" xmlns="jabber:client"><body>${body.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</body></message>`;
}

/** The JSON body of a received message stanza. */
export function bodyJson(stanza: string): unknown {
  const raw = /<body>(.*)<\/body>/.exec(stanza)?.[1];
  assert.ok(raw !== undefined, stanza);
  return JSON.parse(raw.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'));
}

/** The server msg_id in an ack A. */
export function ackMid(stanza: string): string {
  const mid = /mid="(\d+)"/.exec(stanza)?.[1];
  assert.ok(mid, stanza);
  return mid;
}
