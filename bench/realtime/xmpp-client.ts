import type { ChatProtocol, ClientOptions } from './chat-client.js';
import { SocketChatClient } from './socket-chat-client.js';

/*
 * The Easemob XMPP-over-WebSocket dialect as the web SDK 1.4 speaks it (spec §4–§6), reduced to
 * what a load generator needs. The server's frames have fixed shapes, so they are recognised by
 * prefix and a few regular expressions instead of an XML parser: the client must stay cheaper
 * than the server it measures.
 */

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const DOMAIN = 'easemob.com';
const OPEN = `<open xmlns="${FRAMING}" to="${DOMAIN}" version="1.0"/>`;
const READY_PING_ID = 'ready';

type Step = 'open-1' | 'features-1' | 'sasl' | 'open-2' | 'features-2' | 'bind' | 'session' | 'presence' | 'ready' | 'closed';


const ENTITIES: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&quot;': '"', '&apos;': "'", '&amp;': '&' };

function unescapeXml(s: string): string {
  return s.indexOf('&') < 0 ? s : s.replace(/&(?:lt|gt|quot|apos|amp);/g, (e) => ENTITIES[e]!);
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

class XmppClient extends SocketChatClient {
  private step: Step = 'open-1';
  private nextId = 0;
  private readonly prefix: string;

  constructor(opts: ClientOptions) {
    super(opts, '/ws/', 'xmpp');
    this.prefix = `${opts.org}#${opts.app}_`;
  }

  get ready(): boolean {
    return this.step === 'ready';
  }

  protected describeStep(): string {
    return `at step ${this.step}`;
  }

  protected opened(): void {
    this.write(OPEN);
  }

  protected socketClosed(): void {
    this.step = 'closed';
  }

  protected nextSendId(): string {
    return `B${(this.nextId++).toString(36)}`;
  }

  protected sendFrame(id: string, to: string, text: string): string {
    const body = JSON.stringify({ from: this.username, to, bodies: [{ type: 'txt', msg: text }], ext: {} });
    return `<message type="chat" to="${this.prefix}${to}@${DOMAIN}" id="${id}" xmlns="jabber:client"><body>${escapeXml(body)}</body></message>`;
  }

  protected override beforeClose(): void {
    this.write(`<close xmlns="${FRAMING}"/>`);
  }

  protected onFrame(f: string, receivedAt: number): void {
    // A message may arrive as soon as the presence went through, before the ping behind it returns.
    if (this.step === 'ready' || this.step === 'presence') {
      if (f.startsWith('<message')) return this.onMessageFrame(f, receivedAt);
    }
    if (this.step === 'ready') {
      if (f.startsWith('<stream:error') || f.startsWith('<close')) this.step = 'closed';
      return;
    }
    this.onLoginFrame(f);
  }

  private onMessageFrame(f: string, receivedAt: number): void {
    const receipt = f.indexOf('<received xmlns="urn:xmpp:receipts" mid="');
    if (receipt >= 0) {
      // Ack A: the client id is the text of <received>, the server id its mid.
      const mid = /mid="(\d+)">([^<]*)<\/received>/.exec(f.slice(receipt));
      if (mid) this.acked(mid[2]!, mid[1]!, receivedAt);
      return;
    }
    const head = f.slice(0, f.indexOf('>') + 1);
    if (head.includes('type="error"')) {
      const id = /\sid="([^"]*)"/.exec(head)?.[1];
      if (id !== undefined) this.refused(id, f);
      return;
    }
    const mid = /\sid="([^"]+)"/.exec(head)?.[1];
    // Ack B for every incoming message with an id, as the SDKs do, so the server's pending state stays empty.
    if (mid) this.write(`<message id="${mid}" to="${DOMAIN}"><received xmlns="urn:xmpp:receipts" id="${mid}"/></message>`);
    const b0 = f.indexOf('<body>');
    const b1 = f.lastIndexOf('</body>');
    if (!mid || b0 < 0 || b1 < b0) return;
    let from = '';
    let text = '';
    try {
      const json = JSON.parse(unescapeXml(f.slice(b0 + 6, b1))) as { from?: unknown; bodies?: { msg?: unknown }[] };
      from = typeof json.from === 'string' ? json.from : '';
      const msg = json.bodies?.[0]?.msg;
      text = typeof msg === 'string' ? msg : '';
    } catch {
      // Not one of ours: still counted, with no text.
    }
    this.handler({ id: mid, from, text, receivedAt });
  }

  private onLoginFrame(f: string): void {
    const fail = (why: string): void => this.loginDone?.(new Error(`login of ${this.username}: ${why}: ${f.slice(0, 300)}`));
    if (f.startsWith('<stream:error') || f.startsWith('<failure') || f.startsWith('<close')) return fail('refused');
    switch (this.step) {
      case 'open-1':
      case 'open-2':
        if (!f.startsWith('<open ')) return fail('expected the stream header');
        this.step = this.step === 'open-1' ? 'features-1' : 'features-2';
        return;
      case 'features-1': {
        if (!f.includes('<mechanism>PLAIN</mechanism>')) return fail('PLAIN not offered');
        const local = `${this.prefix}${this.username}`;
        const plain = Buffer.from(`${local}@${DOMAIN}\0${local}\0$t$${this.opts.token}`).toString('base64');
        this.step = 'sasl';
        return this.write(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${plain}</auth>`);
      }
      case 'sasl':
        if (!f.startsWith('<success')) return fail('expected SASL success');
        this.step = 'open-2';
        return this.write(OPEN);
      case 'features-2':
        if (!f.includes('urn:ietf:params:xml:ns:xmpp-bind')) return fail('bind not offered');
        this.step = 'bind';
        return this.write('<iq type="set" id="_bind_auth_2" xmlns="jabber:client"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>webim</resource></bind></iq>');
      case 'bind':
        if (!f.includes('id="_bind_auth_2"') || !f.includes('type="result"')) return fail('bind failed');
        this.step = 'session';
        return this.write('<iq type="set" id="_session_auth_2" xmlns="jabber:client"><session xmlns="urn:ietf:params:xml:ns:xmpp-session"/></iq>');
      case 'session':
        if (!f.includes('id="_session_auth_2"') || !f.includes('type="result"')) return fail('session failed');
        this.step = 'presence';
        // Delivery starts with the initial presence (spec §4.5); the ping behind it returns once
        // the server has handled the presence, since a stream's frames are handled in order.
        this.write('<presence xmlns="jabber:client"/>');
        return this.write(`<iq type="get" id="${READY_PING_ID}" to="${DOMAIN}"><ping xmlns="urn:xmpp:ping"/></iq>`);
      case 'presence':
        if (f.includes(`id="${READY_PING_ID}"`)) {
          this.step = 'ready';
          this.loginDone?.();
        }
        return;
      default:
        return;
    }
  }
}

/** The Easemob XMPP dialect over WebSocket at `/ws/`, logging in with `$t$` + a REST user token. */
export const xmppProtocol: ChatProtocol = {
  name: 'xmpp',
  create: (opts) => new XmppClient(opts),
};
