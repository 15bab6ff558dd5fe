import { randomBytes } from 'node:crypto';

// Gregorian epoch (1582-10-15) to Unix epoch, in 100 ns ticks: RFC 4122 time base.
const GREGORIAN_OFFSET = 122192928000000000n;
const node = randomBytes(6);
node[0]! |= 0x01; // multicast bit: marks a random node id, as RFC 4122 §4.5 asks
let clockSeq = randomBytes(2).readUInt16BE(0) & 0x3fff;
let lastTicks = 0n;

/** A time-based (version 1) UUID, lower-case, as Usergrid entities carry. */
export function uuidV1(ms: number = Date.now()): string {
  let ticks = BigInt(ms) * 10000n + GREGORIAN_OFFSET;
  if (ticks <= lastTicks) ticks = lastTicks + 1n;
  lastTicks = ticks;
  const timeLow = Number(ticks & 0xffffffffn);
  const timeMid = Number((ticks >> 32n) & 0xffffn);
  const timeHi = Number((ticks >> 48n) & 0x0fffn) | 0x1000;
  const b = Buffer.alloc(16);
  b.writeUInt32BE(timeLow, 0);
  b.writeUInt16BE(timeMid, 4);
  b.writeUInt16BE(timeHi, 6);
  b.writeUInt16BE(clockSeq | 0x8000, 8);
  node.copy(b, 10);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Makes the clock sequence differ from any earlier process (called once per start). */
export function reseedUuid(): void {
  clockSeq = randomBytes(2).readUInt16BE(0) & 0x3fff;
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// Message ids: milliseconds since 2014-01-01 in the high bits, then a node number and a counter,
// so ids are numeric strings (19 digits, like Easemob's), unique per node and growing with time.
const MSG_EPOCH = 1388534400000n;
const NODE_BITS = 10n;
const COUNTER_BITS = 12n;

/** Generates message ids that only grow, even if the wall clock steps back. */
export class MsgIdGenerator {
  private lastMs = 0n;
  private counter = 0n;
  constructor(private readonly nodeId = 0) {
    if (nodeId < 0 || nodeId >= 1 << Number(NODE_BITS)) throw new RangeError('node id out of range');
  }

  /** The next id; `ms` is the message timestamp. */
  next(ms: number): string {
    let t = BigInt(ms) - MSG_EPOCH;
    if (t < this.lastMs) t = this.lastMs;
    if (t === this.lastMs) {
      this.counter += 1n;
      if (this.counter >= 1n << COUNTER_BITS) {
        t += 1n;
        this.counter = 0n;
      }
    } else {
      this.counter = 0n;
    }
    this.lastMs = t;
    return ((t << (NODE_BITS + COUNTER_BITS)) | (BigInt(this.nodeId) << COUNTER_BITS) | this.counter).toString();
  }
}

/** Url-safe base64 secret with Easemob's `YXA6` ("ap:") prefix, for client ids and secrets. */
export function clientSecret(bytes = 20): string {
  return 'YXA6' + randomBytes(bytes).toString('base64url');
}

/** A random url-safe string. */
export function randomToken(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}
