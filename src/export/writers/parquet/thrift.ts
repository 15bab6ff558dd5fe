/**
 * A writer of the Thrift compact protocol, as much of it as Parquet metadata needs: structs of
 * i32/i64/binary/bool/list/struct fields. Written from the Thrift compact protocol specification
 * (field headers with id deltas, zigzag varints, short list headers).
 */

/** Compact protocol type codes of a field header or a list's elements. */
export const T = {
  TRUE: 1,
  FALSE: 2,
  I32: 5,
  I64: 6,
  BINARY: 8,
  LIST: 9,
  STRUCT: 12,
} as const;

const TWO32 = 2 ** 32;

export class CompactWriter {
  private buf: Buffer;
  private pos = 0;
  /** The last field id of each struct being written, innermost last. */
  private readonly ids: number[] = [];
  private last = 0;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  get length(): number {
    return this.pos;
  }

  /** The bytes written so far (a view: copy it before writing on). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  reset(): void {
    this.pos = 0;
    this.ids.length = 0;
    this.last = 0;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  /** An unsigned varint of any safe integer. */
  varint(v: number): void {
    this.room(10);
    while (v >= 128) {
      this.buf[this.pos++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  /** A zigzag varint (i16, i32, and i64 within the safe integers). */
  zigzag(v: number): void {
    if (!Number.isSafeInteger(v)) throw new RangeError(`not a safe integer: ${v}`);
    this.varint(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  private header(id: number, type: number): void {
    const delta = id - this.last;
    if (delta > 0 && delta <= 15) this.byte((delta << 4) | type);
    else {
      this.byte(type);
      this.zigzag(id);
    }
    this.last = id;
  }

  i32(id: number, v: number): void {
    this.header(id, T.I32);
    this.zigzag(v);
  }

  i64(id: number, v: number): void {
    this.header(id, T.I64);
    this.zigzag(v);
  }

  bool(id: number, v: boolean): void {
    this.header(id, v ? T.TRUE : T.FALSE);
  }

  binary(id: number, v: Uint8Array | string): void {
    this.header(id, T.BINARY);
    this.rawBinary(v);
  }

  /** A binary value without a field header (a list element). */
  rawBinary(v: Uint8Array | string): void {
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    this.varint(b.length);
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A list field's header; the caller writes `size` elements of `elemType` after it. */
  list(id: number, elemType: number, size: number): void {
    this.header(id, T.LIST);
    this.listHeader(elemType, size);
  }

  listHeader(elemType: number, size: number): void {
    if (size < 15) this.byte((size << 4) | elemType);
    else {
      this.byte(0xf0 | elemType);
      this.varint(size);
    }
  }

  /** Opens a struct field; close it with `end()`. */
  struct(id: number): void {
    this.header(id, T.STRUCT);
    this.begin();
  }

  /** Opens a struct without a field header (a list element, or the top-level struct). */
  begin(): void {
    this.ids.push(this.last);
    this.last = 0;
  }

  /** Ends the innermost struct (the stop field). */
  end(): void {
    this.byte(0);
    this.last = this.ids.pop() ?? 0;
  }
}

/** 8 bytes, little-endian, of a 64-bit two's complement integer given as a safe integer. */
export function int64Bytes(v: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32LE(v >>> 0, 0);
  b.writeInt32LE(Math.floor(v / TWO32) | 0, 4);
  return b;
}
