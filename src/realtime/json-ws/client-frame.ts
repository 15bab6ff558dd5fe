import type { TargetType } from '../../domain/messages.js';

/** The WebSocket sub-protocol of the JSON protocol (docs/realtime.md). */
export const JSON_WS_PROTOCOL = 'chatvault.v1';

/** Largest frame a client may send (bytes); ws closes the socket with 1009 above it. */
export const MAX_FRAME_BYTES = 64 * 1024;

/** Most message ids one receipt frame may carry. */
export const MAX_RECEIPT_IDS = 100;

/** How a client proves who it is: a REST user token, or the user's password. */
export type Credentials = { token: string } | { appkey: string; username: string; password: string };

/** A frame from the client, parsed and checked (docs/realtime.md lists them). */
export type ClientFrame =
  | { op: 'auth'; credentials: Credentials; resource: string | null; after: bigint | null }
  | { op: 'send'; cid: string; targetType: TargetType; target: string; msg: unknown; ext: unknown }
  | { op: 'delivered' | 'read'; msgIds: string[] }
  | { op: 'presence'; presence: 'available' | 'unavailable'; status: string | null }
  | { op: 'ping'; id: string | number | null };

/** Why a frame was refused: `code` is stable for programs, `message` is for people. */
export interface FrameError {
  code: 'bad_frame' | 'unknown_op' | 'bad_field';
  message: string;
  /** The send's client id, when the frame had a readable one (so the client can fail that send). */
  cid?: string;
}

const MAX_SEQ = (1n << 63n) - 1n;
const TARGET_TYPES: readonly string[] = ['users', 'chatgroups', 'chatrooms'] satisfies TargetType[];

type Obj = Record<string, unknown>;

/** Parses one text frame; an error never ends the connection by itself (the caller decides). */
export function parseClientFrame(text: string): { ok: true; frame: ClientFrame } | { ok: false; error: FrameError } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return bad('bad_frame', 'frame is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('bad_frame', 'frame is not a JSON object');
  const o = v as Obj;
  if (typeof o.op !== 'string') return bad('bad_frame', 'frame has no op');
  try {
    switch (o.op) {
      case 'auth':
        return { ok: true, frame: parseAuth(o) };
      case 'send':
        return parseSendFrame(o);
      case 'delivered':
      case 'read':
        return { ok: true, frame: { op: o.op, msgIds: parseIds(o) } };
      case 'presence': {
        const presence = o.presence ?? 'available';
        if (presence !== 'available' && presence !== 'unavailable') throw new FieldError('presence must be "available" or "unavailable"');
        return { ok: true, frame: { op: 'presence', presence, status: optionalString(o, 'status', 1024) } };
      }
      case 'ping': {
        const id = o.id ?? null;
        if (id !== null && typeof id !== 'number' && !(typeof id === 'string' && id.length <= 64)) throw new FieldError('id must be a number or a short string');
        return { ok: true, frame: { op: 'ping', id } };
      }
      default:
        return bad('unknown_op', `unknown op ${JSON.stringify(o.op.slice(0, 32))}`);
    }
  } catch (e) {
    if (e instanceof FieldError) return bad('bad_field', e.message, typeof o.cid === 'string' && o.cid.length <= 64 ? o.cid : undefined);
    throw e;
  }
}

class FieldError extends Error {}

function bad(code: FrameError['code'], message: string, cid?: string): { ok: false; error: FrameError } {
  const error: FrameError = { code, message };
  if (cid !== undefined) error.cid = cid;
  return { ok: false, error };
}

function optionalString(o: Obj, key: string, max: number): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.length > max) throw new FieldError(`${key} must be a string of at most ${max} characters`);
  return v;
}

function requiredString(o: Obj, key: string, max: number): string {
  const v = optionalString(o, key, max);
  if (v === null || v === '') throw new FieldError(`${key} is required`);
  return v;
}

function parseAuth(o: Obj): ClientFrame {
  let credentials: Credentials;
  if (o.token !== undefined) credentials = { token: requiredString(o, 'token', 2048) };
  else credentials = { appkey: requiredString(o, 'appkey', 256), username: requiredString(o, 'username', 64), password: requiredString(o, 'password', 1024) };
  const resource = optionalString(o, 'resource', 128);
  if (resource !== null && /[\u0000-\u001f/@]/.test(resource)) throw new FieldError('resource must not contain control characters, / or @');
  let after: bigint | null = null;
  if (o.after !== undefined && o.after !== null) {
    // A decimal string: seqs are 64-bit and JSON numbers lose precision above 2^53.
    if (typeof o.after !== 'string' || !/^\d{1,19}$/.test(o.after) || BigInt(o.after) > MAX_SEQ) throw new FieldError('after must be a seq from an earlier push, as a decimal string');
    after = BigInt(o.after);
  }
  return { op: 'auth', credentials, resource: resource === '' ? null : resource, after };
}

function parseSendFrame(o: Obj): { ok: true; frame: ClientFrame } | { ok: false; error: FrameError } {
  const cid = requiredString(o, 'cid', 64);
  const targetType = o.target_type ?? 'users';
  if (typeof targetType !== 'string' || !TARGET_TYPES.includes(targetType)) throw new FieldError("target_type can only be 'users' or 'chatgroups' or 'chatrooms'");
  // One target per send, so that one ack names one msg_id.
  if (typeof o.target !== 'string' || o.target === '') throw new FieldError('target must be one user, group or chat room id (a string)');
  return { ok: true, frame: { op: 'send', cid, targetType: targetType as TargetType, target: o.target, msg: o.msg, ext: o.ext } };
}

function parseIds(o: Obj): string[] {
  const raw = o.msg_ids ?? (o.msg_id === undefined ? undefined : [o.msg_id]);
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_RECEIPT_IDS) throw new FieldError(`msg_id, or msg_ids with 1 to ${MAX_RECEIPT_IDS} ids, is required`);
  if (!raw.every((id): id is string => typeof id === 'string' && /^\d{1,20}$/.test(id))) throw new FieldError('message ids are decimal strings');
  return [...new Set(raw)];
}
