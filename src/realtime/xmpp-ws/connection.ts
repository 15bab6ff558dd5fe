import { randomBytes } from 'node:crypto';
import type { AppRow, UserRow } from '../../store/store.js';
import type { Services } from '../../services.js';
import type { RealtimeMessage } from '../realtime-message.js';
import type { RealtimeSignal } from '../realtime-signal.js';
import type { CloseReason, Registration, SessionTransport } from '../session-registry.js';
import { authenticatePlain } from './auth.js';
import { DeliveryGate } from './delivery-gate.js';
import { ackedId, handleMessage } from './messages.js';
import { roomAdmin, roomItems } from './muc.js';
import { handlePresence, type PresenceHooks } from './presence.js';
import { rosterIq } from './roster.js';
import { parseAddress, userJid, type SessionContext } from './session-context.js';
import { signalStanza } from './signal-stanza.js';
import * as S from './stanzas.js';
import { child, elements, fastAckId, parseFrame, text, type XmlElement } from './xml.js';

/** The socket side of a connection: the WebSocket in production, anything in a unit test. */
export interface FrameSocket {
  /** Sends one WebSocket text message. */
  send(data: string): void;
  /** Closes the WebSocket (after whatever was sent). */
  end(): void;
  /** Bytes queued and not yet written: a recipient that stops reading must not grow it forever. */
  readonly bufferedAmount: number;
}

export interface ConnectionOptions {
  domain: string;
  onError: (context: string, error: unknown) => void;
}

/*
 * The stream's life (spec §4): open → SASL → restart → bind → bound. Each state accepts only
 * what may come next; anything else ends the stream, since a client that skips a step is either
 * broken or probing.
 */
type State = 'opening' | 'sasl' | 'restart' | 'bind' | 'bound' | 'closed';

// Frames waiting while an earlier one is handled (a login or a send awaits the store), bounded
// in bytes (64 full-size stanzas) and in number. A socket read can hand over hundreds of small
// frames at once (a burst of acks), so the count alone would cut off a well-behaved client.
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
const MAX_QUEUED_FRAMES = 4096;
// Past this much unsent output the client is not reading: drop it; its messages stay pending.
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
// A replay writes while the send buffer is below this, then waits for the client to read.
const REPLAY_LOW_WATER_BYTES = 512 * 1024;
// How long a replay waits for a client that stopped reading before giving up on it.
const DRAIN_TIMEOUT_MS = 30_000;
// Acks waiting for their store write; a client acking faster than the store keeps up is cut off.
const MAX_WAITING_ACKS = 10_000;
// Acks written together in one store call.
const ACK_BATCH = 500;
// Subscription requests remembered per session (each one lets `subscribed` accept it).
const MAX_ASKED = 1000;

/** One client's XMPP stream over one WebSocket; the session it binds is registered with the core. */
export class XmppConnection implements SessionTransport {
  private state: State = 'opening';
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private queuedBytes = 0;
  private login: { app: AppRow; user: UserRow } | null = null;
  private identity: S.Identity | null = null;
  private registration: Registration | null = null;
  private context: SessionContext | null = null;
  private readonly askedBy = new Set<string>();
  private quiet = false;
  private acks: string[] = [];
  private ackFlush: Promise<void> | null = null;
  private readonly gate = new DeliveryGate({
    load: (after, limit) => this.s.realtime.delivery.pending(this.login!.app.id, this.login!.user.username, after, limit),
    push: (m, delayed) => this.push(S.incomingMessage(m, this.identity!, delayed)),
    congested: () => this.socket.bufferedAmount > REPLAY_LOW_WATER_BYTES,
    drained: () => this.drained(),
    overflow: () => this.fail('resource-constraint', 'client not reading'),
  });
  private readonly presenceHooks: PresenceHooks = {
    askedBy: this.askedBy,
    available: (status) => this.becomeAvailable(status),
    unavailable: async (status) => {
      if (!this.gate.open) return;
      this.gate.close();
      await this.announce('unavailable', status);
    },
  };

  constructor(private readonly s: Services, private readonly socket: FrameSocket, private readonly opts: ConnectionOptions) {}

  /** A WebSocket message arrived; frames are handled one after another, in order. */
  receive(data: string): void {
    if (this.state === 'closed') return;
    const bytes = data.length;
    this.queuedBytes += bytes;
    if (++this.queued > MAX_QUEUED_FRAMES || this.queuedBytes > MAX_QUEUED_BYTES) return this.fail('policy-violation', 'too many frames in flight');
    this.queue = this.queue
      .then(() => this.handleFrame(data))
      .catch((e: unknown) => {
        this.opts.onError('xmpp frame', e);
        this.fail('internal-server-error');
      })
      .finally(() => {
        this.queued--;
        this.queuedBytes -= bytes;
      });
  }

  /** A frame that is not XML at all (a binary frame): the stream ends as not well-formed. */
  reject(reason: string): void {
    this.fail('not-well-formed', reason);
  }

  /** The WebSocket closed (either side). */
  socketClosed(): void {
    this.teardown();
  }

  // SessionTransport: called by the core.

  deliver(message: RealtimeMessage): void {
    // Gated until the initial presence (spec §4.5); pending messages come with the replay then.
    if (this.state === 'bound') this.gate.deliver(message);
  }

  signal(signal: RealtimeSignal): void {
    if (this.state !== 'bound' || !this.context) return;
    if (signal.kind === 'presence' && signal.presence === 'subscribe') {
      if (this.askedBy.size >= MAX_ASKED) this.askedBy.delete(this.askedBy.values().next().value!);
      this.askedBy.add(signal.from.toLowerCase());
    }
    if (signal.kind === 'contact' && signal.subscription === 'remove') this.askedBy.delete(signal.contact.toLowerCase());
    // Roster pushes go to every bound session (RFC 6121 §2.1.6); receipts and presence only to available ones.
    if (signal.kind !== 'contact' && !this.gate.open) return;
    this.push(signalStanza(signal, this.context));
    // A new friend's availability, or the end of it (RFC 6121 §3.1.5, §3.3.3).
    if (signal.kind === 'contact' && this.gate.open) {
      const c = this.context;
      const from = userJid(c, signal.contact);
      if (signal.subscription === 'remove') this.push(S.presence({ from, to: S.fullJid(c.identity), type: 'unavailable' }));
      else if (this.s.realtime.presence.isOnline(c.app.id, signal.contact)) this.push(S.presence({ from, to: S.fullJid(c.identity) }));
    }
  }

  close(reason: CloseReason): void {
    // The node is stopping (its store with it): contacts learn from the presence directory instead.
    if (reason === 'shutdown') this.quiet = true;
    if (reason === 'conflict') this.fail('conflict', 'Replaced by new connection');
    else if (reason === 'removed') this.fail('conflict', 'User removed');
    else this.fail('system-shutdown');
  }

  // Internals.

  /** Sends what the core pushes (messages, signals), unless the client stopped reading. */
  private push(data: string): void {
    if (this.state === 'closed') return;
    if (this.socket.bufferedAmount > MAX_BUFFERED_BYTES) return this.fail('resource-constraint', 'client not reading');
    this.send(data);
  }

  private queueAck(msgId: string): void {
    if (msgId === '') return;
    if (this.acks.length >= MAX_WAITING_ACKS) return this.fail('policy-violation', 'too many acks in flight');
    this.acks.push(msgId);
    this.ackFlush ??= this.flushAcks();
  }

  private async flushAcks(): Promise<void> {
    const { app, user } = this.login!;
    try {
      while (this.acks.length > 0) await this.s.realtime.router.ack(app.id, user.username, this.acks.splice(0, ACK_BATCH));
    } catch (e) {
      this.opts.onError('xmpp ack', e);
      this.fail('internal-server-error');
    } finally {
      this.ackFlush = null;
    }
  }

  /** Waits until the client read most of what was sent; false if the stream ended or the wait timed out. */
  private async drained(): Promise<boolean> {
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (this.state !== 'closed' && this.socket.bufferedAmount > REPLAY_LOW_WATER_BYTES) {
      if (Date.now() > deadline) {
        this.fail('resource-constraint', 'client not reading');
        return false;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.state !== 'closed';
  }

  private send(data: string): void {
    try {
      this.socket.send(data);
    } catch (e) {
      this.opts.onError('xmpp send', e);
    }
  }

  /** Ends the stream with a stream error (RFC 7395 §3.6: error, then close, then the socket). */
  private fail(condition: S.StreamCondition, message?: string): void {
    if (this.state === 'closed') return;
    this.send(S.streamError(condition, message));
    this.end();
  }

  private end(): void {
    if (this.state === 'closed') return;
    this.send(S.closeStream());
    this.teardown();
    try {
      this.socket.end();
    } catch (e) {
      this.opts.onError('xmpp close', e);
    }
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private teardown(): void {
    const wasAvailable = this.state === 'bound' && this.gate.open;
    this.state = 'closed';
    this.gate.close();
    this.registration?.unregister();
    this.registration = null;
    // Contacts hear the user leave, unless another of its sessions here is still on.
    if (wasAvailable && !this.quiet && this.context && !this.s.realtime.sessions.isOnline(this.context.app.id, this.context.user.username)) {
      this.announce('unavailable', undefined).catch((e: unknown) => this.opts.onError('xmpp unavailable presence', e));
    }
  }

  /** The first available presence opens delivery; every one is told to the user's contacts. */
  private async becomeAvailable(status: string | undefined): Promise<void> {
    const c = this.context!;
    const first = !this.gate.open;
    if (first) {
      // Opened before anything is awaited, so that no live message slips between the replay and live.
      this.gate.openGate().catch((e: unknown) => {
        this.opts.onError('xmpp replay', e);
        this.fail('internal-server-error');
      });
    }
    const contacts = await this.announce('available', status);
    if (!first || this.state !== 'bound') return;
    // The contacts already online, as an XMPP server answers its own probes.
    for (const name of contacts) if (this.s.realtime.presence.isOnline(c.app.id, name)) this.push(S.presence({ from: userJid(c, name), to: S.fullJid(c.identity) }));
  }

  /** Tells the user's contacts (on every node) its availability; resolves with the contacts. */
  private async announce(presence: 'available' | 'unavailable', status: string | undefined): Promise<string[]> {
    const c = this.context!;
    const contacts = await this.s.contacts.list(c.app, c.user.username);
    await Promise.all(contacts.map((to) => this.s.realtime.router.signal(c.app.id, to, {
      kind: 'presence', presence, from: c.user.username, to, ...(status === undefined ? {} : { status }),
    })));
    return contacts;
  }

  private async handleFrame(data: string): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state === 'bound') {
      const ack = fastAckId(data);
      if (ack !== null) return this.queueAck(ack.slice(0, 64));
    }
    const parsed = parseFrame(data);
    if (!parsed.ok) return this.fail(parsed.error, parsed.reason);
    for (const el of parsed.elements) {
      // An earlier element of the frame may have ended the stream (TS cannot see that through await).
      if (this.isClosed()) return;
      await this.handleElement(el);
    }
  }

  private async handleElement(el: XmlElement): Promise<void> {
    if (el.name === 'open') return this.onOpen(el);
    if (el.name === 'close') return this.end();
    switch (this.state) {
      case 'sasl':
        if (el.name === 'auth' && el.attrs.xmlns === S.NS.sasl) return this.onAuth(el);
        return this.fail('not-authorized');
      case 'bind':
        if (el.name === 'iq' && child(el, 'bind', S.NS.bind)) return this.onBind(el);
        if (el.name === 'iq') return this.onIq(el);
        return this.fail('not-authorized');
      case 'bound': {
        // Acks B do not wait in the frame queue: a client acking a long replay sends hundreds at
        // once. They are written in batches; every other stanza waits for the acks before it.
        const ack = el.name === 'message' ? ackedId(el) : null;
        if (ack !== null) return this.queueAck(ack);
        if (this.ackFlush) await this.ackFlush;
        if (this.isClosed()) return;
        if (el.name === 'message') return handleMessage(this.s, this.context!, el, (d) => this.send(d));
        if (el.name === 'iq') return this.onIq(el);
        if (el.name === 'presence') return handlePresence(this.context!, el, this.presenceHooks);
        return this.fail('unsupported-stanza-type');
      }
      default:
        // Before the stream is open, or between SASL success and the restart.
        return this.fail('bad-format', 'stream not open');
    }
  }

  private onOpen(el: XmlElement): void {
    const { domain } = this.opts;
    if (el.attrs.xmlns !== S.NS.framing) return this.fail('invalid-namespace');
    if (el.attrs.version !== '1.0') return this.fail('unsupported-version');
    if (el.attrs.to !== undefined && el.attrs.to.toLowerCase() !== domain) return this.fail('host-unknown');
    if (this.state !== 'opening' && this.state !== 'restart') return this.fail('bad-format', 'unexpected stream restart');
    // The header alone in its frame, then the features (spec §4.2).
    this.send(S.openStream(domain, randomBytes(8).toString('hex')));
    if (this.state === 'opening') {
      this.send(S.saslFeatures());
      this.state = 'sasl';
    } else {
      this.send(S.bindFeatures());
      this.state = 'bind';
    }
  }

  private async onAuth(el: XmlElement): Promise<void> {
    if (el.attrs.mechanism !== 'PLAIN') {
      this.send(S.saslFailure('invalid-mechanism'));
      return this.end();
    }
    const outcome = await authenticatePlain(this.s, text(el), this.opts.domain);
    if (this.state !== 'sasl') return;
    if (!outcome.ok) {
      this.send(S.saslFailure(outcome.condition));
      return this.end();
    }
    this.login = { app: outcome.app, user: outcome.user };
    this.send(S.saslSuccess());
    this.state = 'restart';
  }

  private onBind(el: XmlElement): void {
    const { app, user } = this.login!;
    const bind = child(el, 'bind', S.NS.bind)!;
    const requested = child(bind, 'resource');
    // Unknown bind children (os, device_uuid, is_manual_login: web 1.4.13+) are ignored.
    let resource = requested ? text(requested).trim() : '';
    if (resource.length > 256 || /[\u0000-\u001f/@]/.test(resource)) return this.send(S.iqError(el.attrs.id, 'modify', 'bad-request'));
    if (resource === '') resource = `cv${randomBytes(6).toString('hex')}`;
    this.identity = { org: app.orgName, app: app.name, username: user.username, resource, domain: this.opts.domain };
    const errorsCarryBody = child(bind, 'os') !== undefined;
    this.context = { app, user, identity: this.identity, domain: this.opts.domain, errorsCarryBody, s: this.s, send: (d) => this.send(d) };
    this.registration = this.s.realtime.sessions.register({ appId: app.id, username: user.username, resource }, this);
    this.state = 'bound';
    this.send(S.bindResult(el.attrs.id, S.fullJid(this.identity)));
  }

  private async onIq(el: XmlElement): Promise<void> {
    const type = el.attrs.type;
    // Never answer a result or an error (the SDK sends an unsolicited version result, spec §4.5).
    if (type === 'result' || type === 'error') return;
    const id = el.attrs.id;
    const to = this.identity ? S.fullJid(this.identity) : undefined;
    // RFC 6120 §8.2.3: a request has an id, a known type and exactly one payload.
    if ((type !== 'get' && type !== 'set') || id === undefined || elements(el).length !== 1) return this.send(S.iqError(id, 'modify', 'bad-request', to));
    if (child(el, 'ping', S.NS.ping) || child(el, 'session', S.NS.session)) return this.send(S.iqResult(id, this.opts.domain, to));
    if (child(el, 'bind', S.NS.bind)) return this.send(S.iqError(id, 'cancel', 'not-allowed', to));
    if (this.state === 'bound') {
      const roster = child(el, 'query', S.NS.roster);
      if (roster) return rosterIq(this.context!, el, roster);
      if (type === 'get' && child(el, 'query', S.NS.discoItems) && el.attrs.to?.toLowerCase() === `conference.${this.opts.domain}`) return roomItems(this.context!, el);
      const admin = child(el, 'query', S.NS.mucAdmin);
      const room = parseAddress(el.attrs.to, this.context!);
      if (admin && room?.kind === 'room' && room.resource === null) return roomAdmin(this.context!, el, room, admin);
    }
    // Privacy lists, MUC administration and the rest are not served.
    this.send(S.iqError(id, 'cancel', 'service-unavailable', to));
  }
}
