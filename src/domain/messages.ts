import { errors } from '../errors.js';
import type { AppRow, GroupKind, NewMessage, SentMessage, Store } from '../store/store.js';
import { uuidV1, type MsgIdGenerator } from '../util/ids.js';
import type { TokenService } from './tokens.js';
import type { GroupService } from './groups.js';

export type ChatType = NewMessage['chatType'];
export type TargetType = 'users' | 'chatgroups' | 'chatrooms';
const CHAT_TYPES: Record<TargetType, ChatType> = { users: 'chat', chatgroups: 'groupchat', chatrooms: 'chatroom' };
const GROUP_KINDS: Partial<Record<TargetType, GroupKind>> = { chatgroups: 'group', chatrooms: 'room' };
export const MAX_TARGETS = 600;
const MAX_CONTENT_BYTES = 4096;

type Json = Record<string, unknown>;

/** A validated send request: who sends what to whom. */
export interface SendRequest {
  targetType: TargetType;
  targets: string[];
  body: Json;
  from: string;
  ext: Json | undefined;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function requireString(body: Json, key: string, optional = false): void {
  const v = body[key];
  if (v === undefined && optional) return;
  if (typeof v !== 'string') throw errors.illegalArgument(`msg.${key} must be a string`);
}

function requireNumber(body: Json, key: string, optional = false): void {
  const v = body[key];
  if (v === undefined && optional) return;
  const ok = (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)));
  if (!ok) throw errors.illegalArgument(`msg.${key} must be a number`);
}

// Per type, the fields a body must carry (spec §4.1); other fields are kept as the client sent them.
const BODY_RULES: Record<string, (b: Json) => void> = {
  txt: (b) => requireString(b, 'msg'),
  img: (b) => {
    requireString(b, 'url');
    requireString(b, 'filename', true);
    requireString(b, 'secret', true);
    if (b.size !== undefined && !isObject(b.size)) throw errors.illegalArgument('msg.size must be an object {width, height}');
  },
  audio: (b) => {
    requireString(b, 'url');
    requireString(b, 'filename', true);
    requireNumber(b, 'length', true);
  },
  video: (b) => {
    requireString(b, 'url');
    requireString(b, 'filename', true);
    requireNumber(b, 'length', true);
    requireNumber(b, 'file_length', true);
  },
  loc: (b) => {
    requireNumber(b, 'lat');
    requireNumber(b, 'lng');
    requireString(b, 'addr', true);
  },
  cmd: (b) => requireString(b, 'action'),
  file: (b) => {
    requireString(b, 'url');
    requireString(b, 'filename', true);
  },
  custom: (b) => {
    if (typeof b.customEvent !== 'string' || !/^[a-zA-Z0-9\-_/.]{1,32}$/.test(b.customEvent)) {
      throw errors.illegalArgument('msg.customEvent must be 1-32 characters of [a-zA-Z0-9-_/.]');
    }
    const exts = b.customExts;
    if (exts === undefined) return;
    if (!isObject(exts) || Object.keys(exts).length > 16 || !Object.values(exts).every((v) => typeof v === 'string')) {
      throw errors.illegalArgument('msg.customExts must be a map of at most 16 string values');
    }
  },
};

/** Validates a message body of any type; `text` (the pre-2014 spelling) becomes `txt`. */
export function parseBody(raw: unknown, topLevelSize?: unknown): Json {
  if (!isObject(raw)) throw errors.illegalArgument('msg must be provided');
  const body: Json = { ...raw };
  if (body.type === 'text') body.type = 'txt';
  const type = body.type;
  if (typeof type !== 'string') throw errors.illegalArgument('msg.type must be provided');
  // Own keys only: a type such as "constructor" or "__proto__" must not find Object.prototype members.
  const rule = Object.hasOwn(BODY_RULES, type) ? BODY_RULES[type] : undefined;
  if (!rule) throw errors.illegalArgument(`msg.type can only be one of ${Object.keys(BODY_RULES).join(', ')}`);
  // Some clients put an image's size next to msg instead of inside it.
  if (type === 'img' && body.size === undefined && isObject(topLevelSize)) body.size = topLevelSize;
  rule(body);
  return body;
}

/** Parses `POST /messages` (spec §4.1) into a SendRequest, with every documented error. */
export function parseSend(raw: unknown): SendRequest {
  if (!isObject(raw)) throw errors.illegalArgument('this is an invalid request.');
  const tt = raw.target_type;
  if (tt === undefined || tt === null || tt === '') throw errors.illegalArgument('target_type must be provided');
  if (tt !== 'users' && tt !== 'chatgroups' && tt !== 'chatrooms') {
    throw errors.illegalArgument("target_type can only be 'users' or 'chatgroups' or 'chatrooms'");
  }
  const t = typeof raw.target === 'string' ? [raw.target] : raw.target;
  if (!Array.isArray(t) || t.length === 0) throw errors.illegalArgument('target must be a non-empty array');
  if (t.length > MAX_TARGETS) throw errors.illegalArgument(`target can hold at most ${MAX_TARGETS} entries`);
  if (!t.every((x): x is string => typeof x === 'string' && x !== '' && x.length <= 64 && !x.includes('\u0000'))) {
    throw errors.illegalArgument('every target must be a non-empty string of at most 64 characters, without NUL');
  }
  // One message per distinct target (ids are case-insensitive): the answer has one key per target,
  // so a repeated target would store a message the client never learns about.
  const byKey = new Map<string, string>();
  for (const x of t) if (!byKey.has(x.toLowerCase())) byKey.set(x.toLowerCase(), x);
  const targets = [...byKey.values()];
  const from = raw.from === undefined || raw.from === null ? 'admin' : raw.from;
  if (typeof from !== 'string') throw errors.illegalArgument('from must be a string');
  if (from === '') throw errors.illegalArgument("from can't be empty");
  if (from.length > 64) throw errors.illegalArgument('from is longer than 64 characters');
  if (from.includes('\u0000')) throw errors.illegalArgument('from must not contain the NUL character');
  if ('ext' in raw && !isObject(raw.ext)) throw errors.illegalArgument('ext must be a JSON object');
  const ext = raw.ext as Json | undefined;
  const body = parseBody(raw.msg, raw.size);
  if (Buffer.byteLength(JSON.stringify(body)) + (ext ? Buffer.byteLength(JSON.stringify(ext)) : 0) > MAX_CONTENT_BYTES) {
    throw errors.illegalArgument('message is too large');
  }
  return { targetType: tt, targets, body, from, ext };
}

function finite(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}

/** What the store indexes of a message's bodies: first body type, txt text, loc position. */
export function indexFields(bodies: Json[]): Pick<NewMessage, 'bodyType' | 'text' | 'lat' | 'lng'> {
  const first = bodies[0];
  const texts = bodies.filter((b) => b.type === 'txt' && typeof b.msg === 'string').map((b) => b.msg as string);
  const loc = bodies.find((b) => b.type === 'loc');
  const lat = loc ? finite(loc.lat) : null;
  const lng = loc ? finite(loc.lng) : null;
  const valid = lat !== null && lng !== null && Math.abs(lat) <= 90 && Math.abs(lng) <= 180;
  return {
    bodyType: typeof first?.type === 'string' ? first.type.toLowerCase() : null,
    text: texts.length > 0 ? texts.join('\n') : null,
    lat: valid ? lat : null,
    lng: valid ? lng : null,
  };
}

/** A message to store, as any sender (REST, sockets, an import) describes it. */
export interface MessageSpec {
  from: string;
  to: string;
  chatType: ChatType;
  bodies: Json[];
  ext?: Json | undefined;
  /** Send time, ms. */
  timestamp: number;
  /** Storage time, ms (defaults to timestamp). */
  created?: number;
  msgId: string;
  uuid?: string;
}

/**
 * The stored form of a message. Its export record is rendered once here, in the shape every
 * export reads, so that reads splice bytes instead of building JSON per message.
 */
export function buildMessage(appId: number, m: MessageSpec): NewMessage {
  const created = m.created ?? m.timestamp;
  const uuid = m.uuid ?? uuidV1(created);
  const payload: Json = { bodies: m.bodies };
  if (m.ext !== undefined) payload.ext = m.ext;
  const entity = Buffer.from(
    `{"uuid":"${uuid}","type":"chatmessage","created":${created},"modified":${created},"timestamp":${m.timestamp},` +
      `"from":${JSON.stringify(m.from)},"msg_id":${JSON.stringify(m.msgId)},"to":${JSON.stringify(m.to)},"chat_type":"${m.chatType}",` +
      `"payload":${JSON.stringify(payload)}}`,
  );
  return {
    appId, uuid, msgId: m.msgId, timestamp: m.timestamp, created, from: m.from, to: m.to, chatType: m.chatType,
    ...indexFields(m.bodies), entity,
  };
}

/** Told of messages once they are durable (the real-time router); must return at once and not throw. */
export type StoredListener = (rows: readonly NewMessage[], seqs: readonly bigint[]) => void;

export interface SendOptions {
  /** Makes the send idempotent: see MessageService.send. */
  clientId?: string;
  /** The sender must belong to the group or room (403 otherwise). */
  fromMember?: boolean;
  /**
   * Called once the messages are handed to the store, before they are durable (not called for
   * a send refused before that, or answered from an earlier one): where the store keeps call
   * order (Store.insertsInCallOrder), the caller's next send may start now.
   */
  handedOver?: () => void;
}

/** Sending and storing chat messages. */
export class MessageService {
  constructor(
    private readonly store: Store,
    private readonly ids: MsgIdGenerator,
    private readonly groups: GroupService,
    tokens: TokenService,
    private readonly onStored: StoredListener = () => {},
  ) {
    // Whatever can revoke a token (a deactivation, a deletion) can change a sender's state too;
    // onForget also runs when another node made the change (CacheInvalidation).
    tokens.onForget(() => this.deactivated.clear());
  }

  // Recent answers to "is this sender deactivated?", for a second, like token principals.
  private readonly deactivated = new Map<string, { name: string | null; at: number }>();

  private async deactivatedSender(app: AppRow, from: string): Promise<string | null> {
    const key = `${app.id}\0${from.toLowerCase()}`;
    const hit = this.deactivated.get(key);
    if (hit && Date.now() - hit.at < 1000) return hit.name;
    const u = await this.store.getUser(app.id, from);
    const name = u && !u.activated ? u.username : null;
    if (this.deactivated.size > 10_000) this.deactivated.clear();
    this.deactivated.set(key, { name, at: Date.now() });
    return name;
  }

  /**
   * Stores one message per target; resolves once all are durable, with each target's msg_id.
   * With a `clientId` the send is idempotent: a repeat of an earlier send (same sender, same id)
   * stores nothing and answers with the earlier messages. With `fromMember` the sender must
   * belong to the group or room (a user's own connection; REST sends are the app admin's, who
   * may post anywhere): 403 otherwise.
   */
  async send(app: AppRow, req: SendRequest, opts: SendOptions = {}): Promise<Map<string, SentMessage>> {
    const { clientId } = opts;
    // A repeated client id is found by the store refusing the insert, so the first send of an id
    // (nearly every send) costs no read.
    let recipients: Map<string, string[]>;
    try {
      // `from` need not be a user (admin sends as anyone), but a deactivated user may not send.
      const blocked = await this.deactivatedSender(app, req.from);
      if (blocked !== null) throw errors.forbiddenOp(`user ${blocked} is deactivated and cannot send messages`);
      recipients = await this.recipients(app, req, opts.fromMember === true);
    } catch (e) {
      // A send that was stored before the sender lost the right (left the group since) is still
      // answered with what was stored.
      const earlier = clientId === undefined ? null : await this.earlierSend(app, req, clientId);
      if (earlier) return earlier;
      throw e;
    }
    const now = Date.now();
    const chatType = CHAT_TYPES[req.targetType];
    const rows = req.targets.map((to) => {
      const row = buildMessage(app.id, { from: req.from, to, chatType, bodies: [req.body], ext: req.ext, timestamp: now, msgId: this.ids.next(now) });
      const r = recipients.get(to.toLowerCase());
      if (r) row.recipients = r;
      if (clientId !== undefined) row.clientId = clientId;
      return row;
    });
    let seqs: bigint[];
    try {
      const inserting = this.store.insertMessages(rows);
      opts.handedOver?.();
      seqs = await inserting;
    } catch (e) {
      // A repeated client id (a resend, or two sends with one id at once): refused as a duplicate.
      const earlier = clientId === undefined ? null : await this.earlierSend(app, req, clientId);
      if (earlier) return earlier;
      throw e;
    }
    // After the commit, never before (delivery must not outrun durability), and without waiting.
    try {
      this.onStored(rows, seqs);
    } catch {
      // The message is stored: a listener's failure must not turn its send into an error.
    }
    const out = new Map<string, SentMessage>();
    for (const r of rows) out.set(r.to, { msgId: r.msgId, timestamp: r.timestamp });
    return out;
  }

  /** What an earlier send with this client id stored, when it covered every target of this one. */
  private async earlierSend(app: AppRow, req: SendRequest, clientId: string): Promise<Map<string, SentMessage> | null> {
    const sent = await this.store.clientSend(app.id, req.from, clientId);
    if (sent.size === 0) return null;
    const out = new Map<string, SentMessage>();
    for (const t of req.targets) {
      const id = sent.get(t.toLowerCase());
      if (id === undefined) throw errors.illegalArgument(`client id ${clientId} was used already for another send`);
      out.set(t, id);
    }
    return out;
  }

  /**
   * Who each target's message is delivered to (lower-cased target → user names): the addressee
   * of a one-to-one message; a group's owner and members but the sender. 404 for a missing group
   * or room. Chat rooms have no inbox (Easemob kept no offline messages for them): the router
   * finds their present members when it delivers.
   */
  private async recipients(app: AppRow, req: SendRequest, fromMember: boolean): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (req.targetType === 'users') {
      for (const t of req.targets) out.set(t.toLowerCase(), [t.toLowerCase()]);
      return out;
    }
    // Users need not exist (spec §10.2), but a group or room does.
    const groups = await this.groups.requireExisting(app, GROUP_KINDS[req.targetType]!, req.targets);
    const rooms = req.targetType === 'chatrooms';
    if (rooms && !fromMember) return out;
    const sender = req.from.toLowerCase();
    for (const g of groups) {
      // One read of the members serves the sender's check and the inbox rows.
      const members = (await this.store.groupMembers(g.id)).map((m) => m.username.toLowerCase());
      if (fromMember && !members.includes(sender)) throw errors.forbiddenOp(`${req.from} is not a member of ${g.groupId}`);
      if (!rooms) out.set(g.groupId.toLowerCase(), members.filter((u) => u !== sender));
    }
    return out;
  }

  /** A new message id for a message sent at `ms`. */
  nextId(ms: number): string {
    return this.ids.next(ms);
  }
}
