/**
 * Reads the fields the Parquet export needs straight out of a record's JSON bytes, without
 * building objects: strings and the JSON text of `ext` and `payload` are found as byte ranges of
 * the line (copied into the columns as they are), numbers are read in place.
 *
 * It reads compact JSON as JSON.stringify writes it (what both walks deliver: the stream's stored
 * records and the paged walk's re-serialized entities), expecting the keys in the order chatvault
 * stores them but taking any order. It follows the grammar of every value it passes, and gives up
 * (returns false) on anything else: whitespace between tokens, a field of an unusual type, an
 * escaped key, a missing payload, malformed JSON. The caller then takes the line through
 * JSON.parse, which has the last word.
 */

/** Field slots, in the order of the Parquet columns. */
export const F = {
  msg_id: 0, uuid: 1, timestamp: 2, created: 3, from: 4, to: 5, chat_type: 6,
  type: 7, msg: 8, url: 9, filename: 10, lat: 11, lng: 12, addr: 13, length: 14,
  ext: 15, payload: 16,
} as const;
export const FIELDS = 17;

/** What a slot holds after a scan. */
export const K = {
  /** null or absent */
  NONE: 0,
  /** UTF-8 bytes [start, stop) of the line, as they are */
  RAW: 1,
  /** a JSON string with escapes: decode the text [start - 1, stop + 1) */
  ESCAPED: 2,
  /** a number, in `num` */
  NUMBER: 3,
} as const;

const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;
const COMMA = 44;
const LBRACE = 123;
const RBRACE = 125;
const LBRACKET = 91;
const RBRACKET = 93;
const MINUS = 45;
const MAX_DEPTH = 256;
const SKIP = -1;
const BODIES = 100;

/**
 * `"name":` as 32-bit little-endian words and trailing bytes, to recognize an expected key at
 * once. (Names up to 14 bytes: three words and three bytes, unrolled.)
 */
class KeyPattern {
  readonly length: number;
  private readonly words: number;
  private readonly w0: number;
  private readonly w1: number;
  private readonly w2: number;
  private readonly tail: number;
  private readonly t0: number;
  private readonly t1: number;
  private readonly t2: number;

  constructor(name: string, readonly slot: number) {
    const bytes = Buffer.from(`"${name}":`, 'latin1');
    if (bytes.length > 15) throw new Error(`key pattern too long: ${name}`);
    this.length = bytes.length;
    this.words = bytes.length >>> 2;
    const word = (i: number) => (i < this.words ? bytes.readInt32LE(i * 4) : 0);
    this.w0 = word(0);
    this.w1 = word(1);
    this.w2 = word(2);
    this.tail = bytes.length & 3;
    const t = (i: number) => bytes[this.words * 4 + i] ?? 0;
    this.t0 = t(0);
    this.t1 = t(1);
    this.t2 = t(2);
  }

  /** Whether `"name":` is at p (within end). */
  at(b: Uint8Array, dv: DataView, p: number, end: number): boolean {
    if (p + this.length > end) return false;
    const n = this.words;
    if (n > 0 && dv.getInt32(p, true) !== this.w0) return false;
    if (n > 1 && dv.getInt32(p + 4, true) !== this.w1) return false;
    if (n > 2 && dv.getInt32(p + 8, true) !== this.w2) return false;
    const q = p + n * 4;
    const t = this.tail;
    return (t < 1 || b[q] === this.t0) && (t < 2 || b[q + 1] === this.t1) && (t < 3 || b[q + 2] === this.t2);
  }
}

/** Keys of the stored record in their stored order (buildMessage), with their slots. */
const TOP_ORDER = [
  new KeyPattern('uuid', F.uuid), new KeyPattern('type', SKIP), new KeyPattern('created', F.created), new KeyPattern('modified', SKIP),
  new KeyPattern('timestamp', F.timestamp), new KeyPattern('from', F.from), new KeyPattern('msg_id', F.msg_id), new KeyPattern('to', F.to),
  new KeyPattern('chat_type', F.chat_type), new KeyPattern('payload', F.payload),
];
const PAYLOAD_ORDER = [new KeyPattern('bodies', BODIES), new KeyPattern('ext', F.ext)];

/** Whether the key b[k, k + len) is `name`. */
function is(b: Uint8Array, k: number, len: number, name: string): boolean {
  if (len !== name.length) return false;
  for (let i = 1; i < len; i++) if (b[k + i] !== name.charCodeAt(i)) return false;
  return true;
}

// Keys to slots, by first byte (the rest compared by `is`).
function topKey(b: Uint8Array, k: number, len: number): number {
  switch (b[k]) {
    case 117: return is(b, k, len, 'uuid') ? F.uuid : SKIP;
    case 102: return is(b, k, len, 'from') ? F.from : SKIP;
    case 109: return is(b, k, len, 'msg_id') ? F.msg_id : SKIP;
    case 116: return is(b, k, len, 'to') ? F.to : is(b, k, len, 'timestamp') ? F.timestamp : SKIP;
    case 99: return is(b, k, len, 'chat_type') ? F.chat_type : is(b, k, len, 'created') ? F.created : SKIP;
    case 112: return is(b, k, len, 'payload') ? F.payload : SKIP;
    default: return SKIP;
  }
}

function payloadKey(b: Uint8Array, k: number, len: number): number {
  switch (b[k]) {
    case 98: return is(b, k, len, 'bodies') ? BODIES : SKIP;
    case 101: return is(b, k, len, 'ext') ? F.ext : SKIP;
    default: return SKIP;
  }
}

function bodyKey(b: Uint8Array, k: number, len: number): number {
  switch (b[k]) {
    case 116: return is(b, k, len, 'type') ? F.type : SKIP;
    case 109: return is(b, k, len, 'msg') ? F.msg : SKIP;
    case 117: return is(b, k, len, 'url') ? F.url : SKIP;
    case 102: return is(b, k, len, 'filename') ? F.filename : SKIP;
    case 108: return is(b, k, len, 'lat') ? F.lat : is(b, k, len, 'lng') ? F.lng : is(b, k, len, 'length') ? F.length : SKIP;
    case 97: return is(b, k, len, 'addr') ? F.addr : SKIP;
    default: return SKIP;
  }
}

function isNumeric(slot: number): boolean {
  return slot === F.timestamp || slot === F.created || slot === F.lat || slot === F.lng || slot === F.length;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

export class RecordScanner {
  readonly kind = new Uint8Array(FIELDS);
  readonly start = new Int32Array(FIELDS);
  readonly stop = new Int32Array(FIELDS);
  readonly num = new Float64Array(FIELDS);
  private end = 0;
  /** Whether the last string scanned had escapes. */
  private esc = false;

  /**
   * Scans the record `b[s, e)` into the slots; false when the line needs JSON.parse. `dv` is a
   * DataView over the same bytes as `b` (same offsets).
   */
  scan(b: Uint8Array, dv: DataView, s: number, e: number): boolean {
    this.end = e;
    const kind = this.kind;
    for (let i = 0; i < FIELDS; i++) kind[i] = K.NONE;
    if (b[s] !== LBRACE) return false;
    let p = s + 1;
    if (b[p] !== RBRACE) {
      let next = 0;
      for (;;) {
        let id: number;
        const guess = TOP_ORDER[next];
        if (guess !== undefined && guess.at(b, dv, p, e)) {
          id = guess.slot;
          p += guess.length;
          next++;
        } else {
          if (b[p] !== QUOTE) return false;
          const k = p + 1;
          p = this.string(b, dv, p);
          // An escaped key could spell a known name: JSON.parse decides.
          if (p < 0 || this.esc || b[p] !== COLON) return false;
          id = topKey(b, k, p - 1 - k);
          p++;
        }
        if (id === F.payload) {
          const q = this.payload(b, dv, p);
          if (q < 0) return false;
          this.start[F.payload] = p;
          this.stop[F.payload] = q;
          kind[F.payload] = K.RAW;
          p = q;
        } else {
          p = id === SKIP ? this.skip(b, dv, p, 1) : this.field(b, dv, p, id);
          if (p < 0) return false;
        }
        const d = b[p];
        if (d === COMMA) p++;
        else if (d === RBRACE) break;
        else return false;
      }
    }
    return p + 1 === e && kind[F.payload] === K.RAW;
  }

  /** The payload object at p: the first body's fields and the range of ext. */
  private payload(b: Uint8Array, dv: DataView, p: number): number {
    const e = this.end;
    const kind = this.kind;
    // ext and the body fields are absent unless this payload has them (the last "payload" key counts)
    for (let i = F.type; i <= F.ext; i++) kind[i] = K.NONE;
    if (b[p] !== LBRACE) return -1;
    p++;
    if (b[p] === RBRACE) return p + 1;
    let next = 0;
    for (;;) {
      let id: number;
      const guess = PAYLOAD_ORDER[next];
      if (guess !== undefined && guess.at(b, dv, p, e)) {
        id = guess.slot;
        p += guess.length;
        next++;
      } else {
        if (b[p] !== QUOTE) return -1;
        const k = p + 1;
        p = this.string(b, dv, p);
        if (p < 0 || this.esc || b[p] !== COLON) return -1;
        id = payloadKey(b, k, p - 1 - k);
        p++;
      }
      if (id === F.ext) {
        const q = this.skip(b, dv, p, 2);
        if (q < 0) return -1;
        this.start[F.ext] = p;
        this.stop[F.ext] = q;
        kind[F.ext] = K.RAW;
        p = q;
      } else if (id === BODIES) {
        p = this.bodies(b, dv, p);
      } else {
        p = this.skip(b, dv, p, 2);
      }
      if (p < 0) return -1;
      const d = b[p];
      if (d === COMMA) p++;
      else if (d === RBRACE) return p + 1;
      else return -1;
    }
  }

  /** The bodies value at p: when an array, the fields of its first element. */
  private bodies(b: Uint8Array, dv: DataView, p: number): number {
    for (let i = F.type; i < F.ext; i++) this.kind[i] = K.NONE;
    if (b[p] !== LBRACKET) return this.skip(b, dv, p, 2);
    p++;
    if (b[p] === RBRACKET) return p + 1;
    p = b[p] === LBRACE ? this.body(b, dv, p) : this.skip(b, dv, p, 3);
    for (;;) {
      if (p < 0) return -1;
      const d = b[p];
      if (d === RBRACKET) return p + 1;
      if (d !== COMMA) return -1;
      p = this.skip(b, dv, p + 1, 3);
    }
  }

  private body(b: Uint8Array, dv: DataView, p: number): number {
    p++;
    if (b[p] === RBRACE) return p + 1;
    for (;;) {
      if (b[p] !== QUOTE) return -1;
      const k = p + 1;
      p = this.string(b, dv, p);
      if (p < 0 || this.esc || b[p] !== COLON) return -1;
      const id = bodyKey(b, k, p - 1 - k);
      p++;
      p = id === SKIP ? this.skip(b, dv, p, 3) : this.field(b, dv, p, id);
      if (p < 0) return -1;
      const d = b[p];
      if (d === COMMA) p++;
      else if (d === RBRACE) return p + 1;
      else return -1;
    }
  }

  /** A field the export reads: a string (or null) into a string slot, a number (or null) into a numeric one. */
  private field(b: Uint8Array, dv: DataView, p: number, slot: number): number {
    const c = b[p];
    if (c === QUOTE) {
      if (isNumeric(slot)) return -1;
      const q = this.string(b, dv, p);
      if (q < 0) return -1;
      this.start[slot] = p + 1;
      this.stop[slot] = q - 1;
      this.kind[slot] = this.esc ? K.ESCAPED : K.RAW;
      return q;
    }
    if (c === 110) {
      this.kind[slot] = K.NONE;
      return this.literal(b, p, 'null');
    }
    if (!isNumeric(slot) || (c !== MINUS && (c === undefined || !isDigit(c)))) return -1;
    return this.number(b, dv, p, slot);
  }

  /**
   * The string at p (b[p] is a quote); returns the position after its closing quote, or -1.
   * Four bytes at a time while none of them is a quote, a backslash or a control character.
   */
  private string(b: Uint8Array, dv: DataView, p: number): number {
    const end = this.end;
    let i = p + 1;
    while (i + 4 <= end) {
      const v = dv.getInt32(i, true);
      const q = v ^ 0x22222222;
      const s = v ^ 0x5c5c5c5c;
      if ((((q - 0x01010101) & ~q) | ((s - 0x01010101) & ~s) | ((v - 0x20202020) & ~v)) & 0x80808080) break;
      i += 4;
    }
    let esc = false;
    for (;;) {
      if (i >= end) return -1;
      const c = b[i]!;
      if (c > BACKSLASH) {
        i++;
        continue;
      }
      if (c === QUOTE) break;
      if (c < 32) return -1;
      if (c === BACKSLASH) {
        esc = true;
        const x = b[i + 1];
        if (x === 117) {
          // \uXXXX
          if (i + 5 >= end || !isHex(b[i + 2]!) || !isHex(b[i + 3]!) || !isHex(b[i + 4]!) || !isHex(b[i + 5]!)) return -1;
          i += 6;
        } else if (x === QUOTE || x === BACKSLASH || x === 47 || x === 98 || x === 102 || x === 110 || x === 114 || x === 116) {
          i += 2;
        } else {
          return -1;
        }
        continue;
      }
      i++;
    }
    this.esc = esc;
    return i + 1;
  }

  /** The number at p; its value goes to num[slot] (slot < 0: checked and passed over). */
  private number(b: Uint8Array, dv: DataView, p: number, slot: number): number {
    const end = this.end;
    let i = p;
    const neg = b[i] === MINUS;
    if (neg) i++;
    if (i >= end) return -1;
    let v = 0;
    let digits = 0;
    let c = b[i]!;
    if (c === 48) {
      i++;
      digits = 1;
    } else if (isDigit(c)) {
      // Four digits at a time: all of them digits, their value by pairs.
      while (i + 4 <= end) {
        const w = dv.getInt32(i, true);
        if ((w & 0xf0f0f0f0) !== 0x30303030 || ((w + 0x06060606) & 0xf0f0f0f0) !== 0x30303030) break;
        let x = w & 0x0f0f0f0f;
        x = (x * 10 + (x >>> 8)) & 0x00ff00ff;
        x = (x * 100 + (x >>> 16)) & 0xffff;
        v = v * 10000 + x;
        i += 4;
        digits += 4;
      }
      while (i < end && isDigit((c = b[i]!))) {
        v = v * 10 + (c - 48);
        i++;
        digits++;
      }
    } else return -1;
    let simple = digits <= 15;
    if (i < end && b[i] === 46) {
      simple = false;
      i++;
      if (i >= end || !isDigit(b[i]!)) return -1;
      while (i < end && isDigit(b[i]!)) i++;
    }
    if (i < end && (b[i] === 101 || b[i] === 69)) {
      simple = false;
      i++;
      if (i < end && (b[i] === 43 || b[i] === MINUS)) i++;
      if (i >= end || !isDigit(b[i]!)) return -1;
      while (i < end && isDigit(b[i]!)) i++;
    }
    if (slot >= 0) {
      this.num[slot] = simple ? (neg ? -v : v) : Number(Buffer.from(b.buffer, b.byteOffset + p, i - p).toString('latin1'));
      this.kind[slot] = K.NUMBER;
    }
    return i;
  }

  private literal(b: Uint8Array, p: number, word: string): number {
    if (p + word.length > this.end) return -1;
    for (let i = 0; i < word.length; i++) if (b[p + i] !== word.charCodeAt(i)) return -1;
    return p + word.length;
  }

  /** Passes over any JSON value at p (checking it); returns the position after it, or -1. */
  private skip(b: Uint8Array, dv: DataView, p: number, depth: number): number {
    const c = b[p];
    if (c === QUOTE) return this.string(b, dv, p);
    if (c === LBRACE || c === LBRACKET) {
      if (depth >= MAX_DEPTH) return -1;
      const obj = c === LBRACE;
      const close = obj ? RBRACE : RBRACKET;
      p++;
      if (b[p] === close) return p + 1;
      for (;;) {
        if (obj) {
          if (b[p] !== QUOTE) return -1;
          p = this.string(b, dv, p);
          if (p < 0 || b[p] !== COLON) return -1;
          p++;
        }
        p = this.skip(b, dv, p, depth + 1);
        if (p < 0) return -1;
        const d = b[p];
        if (d === COMMA) p++;
        else if (d === close) return p + 1;
        else return -1;
      }
    }
    if (c === MINUS || (c !== undefined && isDigit(c))) return this.number(b, dv, p, -1);
    if (c === 116) return this.literal(b, p, 'true');
    if (c === 102) return this.literal(b, p, 'false');
    if (c === 110) return this.literal(b, p, 'null');
    return -1;
  }
}
