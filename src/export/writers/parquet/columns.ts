/**
 * Column chunks of an all-OPTIONAL flat Parquet schema, built one value at a time: PLAIN values,
 * definition levels (RLE/bit-packed hybrid, bit width 1), DataPage v1 pages of about 1 MiB. Each
 * page is handed on as it is cut — compressed into the chunk here, or sent to the compression
 * worker — so a row group in progress holds one open page per column plus compressed pages.
 * Written from the Apache Parquet format specification.
 */
import { ChunkEncoder, ENCODING_PLAIN, ENCODING_RLE, type CodecId, type EncodedChunk } from './pages.js';
import { CompactWriter, T } from './thrift.js';

/** Physical types (parquet.thrift `Type`). */
export const PhysicalType = { INT32: 1, INT64: 2, DOUBLE: 5, BYTE_ARRAY: 6 } as const;

/** Values bytes at which a page is cut. */
export const PAGE_BYTES = 1 << 20;
/** Rows at which a page is cut (columns of small values). */
export const PAGE_ROWS = 20_000;

/** What the writer's thread knows of a column chunk at the end of a row group. */
export interface ChunkStats {
  /** Values including nulls (= rows). */
  values: number;
  nulls: number;
  /** min/max of a numeric column with at least one value (INT64: only when every value is a safe integer). */
  min?: number;
  max?: number;
}

/** What the footer says about one column chunk; plain JSON (the checkpoint journal holds it). */
export interface ChunkMeta extends ChunkStats {
  /** Offset of the chunk's first page in the file. */
  offset: number;
  /** Bytes of the chunk, page headers included, before and after compression. */
  uncompressed: number;
  compressed: number;
}

/** Where finished pages go when they are compressed elsewhere (the worker). */
export interface PageSink {
  /**
   * The body of a page of column `column` with `values` values: `buf[from, to)`. The sink takes
   * `buf` (with its whole ArrayBuffer, which it may transfer) and gives the column another buffer
   * of at least `size` bytes to go on with.
   */
  page(column: number, buf: Buffer, from: number, to: number, values: number, size: number): Buffer;
}

function grow(b: Buffer, used: number, need: number): Buffer {
  if (used + need <= b.length) return b;
  // A buffer of its own (not a slice of Node's pool): the worker may be handed its ArrayBuffer.
  const next = Buffer.allocUnsafeSlow(Math.max(b.length * 2, used + need));
  b.copy(next, 0, 0, used);
  return next;
}

/**
 * Room kept before a column's values for the page's definition levels and their length, so that
 * a page is one contiguous run of bytes without copying the values: the 2,500 groups of 8 levels
 * of a full page take at most 2 bytes each (one-group RLE runs, the worst case).
 */
const LEVELS_ROOM = 8192;

// Shared scratch: a page's levels.
const levelBuf = Buffer.allocUnsafe(LEVELS_ROOM);

/**
 * Writes definition levels 0/1 for `n` values from a bitmap (bit i of byte i>>3 set = defined) as
 * the RLE/bit-packed hybrid: runs of whole all-equal bytes as RLE runs, the rest bit-packed in
 * groups of 8. Only the last run may end inside a group (bit-packed padding, or an RLE count).
 */
function writeLevels(bits: Uint8Array, n: number, out: Buffer, at: number): number {
  const groups = (n + 7) >>> 3;
  const full = n >>> 3;
  const rem = n & 7;
  let o = at;
  const varint = (v: number) => {
    while (v >= 128) {
      out[o++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    out[o++] = v;
  };
  const uniform = (g: number) => g < full && (bits[g] === 0 || bits[g] === 0xff);
  let g = 0;
  while (g < groups) {
    if (uniform(g)) {
      const b = bits[g]!;
      let k = g + 1;
      while (k < full && bits[k] === b) k++;
      let count = (k - g) * 8;
      if (k === full && rem > 0 && bits[full] === (b === 0 ? 0 : (1 << rem) - 1)) {
        count += rem;
        k++;
      }
      varint(count * 2);
      out[o++] = b === 0 ? 0 : 1;
      g = k;
    } else {
      let k = g + 1;
      // Bit-pack until two equal uniform bytes start a run worth its RLE header.
      while (k < groups && !(uniform(k) && uniform(k + 1) && bits[k] === bits[k + 1])) k++;
      varint((k - g) * 2 + 1);
      for (let i = g; i < k; i++) out[o++] = bits[i]!;
      g = k;
    }
  }
  return o;
}

/** The levels and values of the page being filled; finished pages go to an encoder or a sink. */
export abstract class Column {
  protected vals: Buffer;
  /** A DataView over `vals` (same offsets). */
  protected vdv: DataView;
  /** End of the values in `vals` (they start at LEVELS_ROOM). */
  protected vlen = LEVELS_ROOM;
  private bits = new Uint8Array(PAGE_ROWS >>> 3);
  /** Rows in the open page. */
  protected rows = 0;
  private chunkValues = 0;
  private chunkNulls = 0;
  private readonly encoder: ChunkEncoder | null;

  /**
   * Column `index` of the schema. Its pages are compressed with `codec` into its chunk, or, with
   * a `sink`, given to the sink.
   */
  constructor(readonly index: number, readonly type: number, codec: CodecId, private readonly sink: PageSink | null, size = 64 * 1024) {
    this.vals = Buffer.allocUnsafeSlow(LEVELS_ROOM + size);
    this.vdv = new DataView(this.vals.buffer, this.vals.byteOffset, this.vals.length);
    this.encoder = sink ? null : new ChunkEncoder(codec);
  }

  /** Marks the next row defined (its value is in `vals` already) and cuts the page when full. */
  protected defined(): void {
    const r = this.rows++;
    this.bits[r >>> 3]! |= 1 << (r & 7);
    if (this.vlen >= PAGE_BYTES + LEVELS_ROOM || this.rows >= PAGE_ROWS) this.cutPage();
  }

  appendNull(): void {
    this.rows++;
    this.chunkNulls++;
    if (this.rows >= PAGE_ROWS) this.cutPage();
  }

  protected room(n: number): void {
    if (this.vlen + n <= this.vals.length) return;
    this.vals = grow(this.vals, this.vlen, n);
    this.vdv = new DataView(this.vals.buffer, this.vals.byteOffset, this.vals.length);
  }

  /** Ends the open page: a DataPage v1 body (levels, then values), to the encoder or the sink. */
  private cutPage(): void {
    const n = this.rows;
    if (n === 0) return;
    // v1 data page: [4-byte length][definition levels][values], the levels put right before the values.
    const lvLen = writeLevels(this.bits, n, levelBuf, 0);
    if (lvLen + 4 > LEVELS_ROOM) throw new Error(`definition levels of ${n} values took ${lvLen} bytes`);
    const from = LEVELS_ROOM - lvLen - 4;
    this.vals.writeUInt32LE(lvLen, from);
    levelBuf.copy(this.vals, from + 4, 0, lvLen);
    if (this.sink) {
      // The sink takes the buffer; the column goes on in another.
      this.vals = this.sink.page(this.index, this.vals, from, this.vlen, n, this.vals.length);
      this.vdv = new DataView(this.vals.buffer, this.vals.byteOffset, this.vals.length);
    } else {
      this.encoder!.addPage(this.vals.subarray(from, this.vlen), n);
    }
    this.chunkValues += n;

    this.bits.fill(0, 0, (n + 7) >>> 3);
    this.rows = 0;
    this.vlen = LEVELS_ROOM;
  }

  /**
   * Ends the chunk: its statistics, and its bytes when compressed here (a view, valid until the
   * next value is appended).
   */
  takeChunk(): { stats: ChunkStats; chunk: EncodedChunk | null } {
    this.cutPage();
    const stats: ChunkStats = { values: this.chunkValues, nulls: this.chunkNulls };
    this.stats(stats);
    this.chunkValues = 0;
    this.chunkNulls = 0;
    return { stats, chunk: this.encoder ? this.encoder.take() : null };
  }

  /** Adds the chunk's min/max to its statistics and starts over. */
  protected stats(_stats: ChunkStats): void {}
}

/** BYTE_ARRAY: a 4-byte little-endian length, then the bytes. */
export class StringColumn extends Column {
  constructor(index: number, codec: CodecId, sink: PageSink | null) {
    super(index, PhysicalType.BYTE_ARRAY, codec, sink, 256 * 1024);
  }

  /** The UTF-8 bytes `src[s, e)`; `sdv` is a DataView over `src` (same offsets). */
  appendBytes(src: Buffer, sdv: DataView, s: number, e: number): void {
    const n = e - s;
    this.room(n + 4);
    const dv = this.vdv;
    let o = this.vlen;
    dv.setInt32(o, n, true);
    o += 4;
    if (n < 1024) {
      // Eight bytes at a time: for strings of this size as fast as a native copy, whose call
      // allocates a view of the source each time (garbage, at one or two per row).
      let i = s;
      for (; i + 8 <= e; i += 8, o += 8) {
        dv.setInt32(o, sdv.getInt32(i, true), true);
        dv.setInt32(o + 4, sdv.getInt32(i + 4, true), true);
      }
      if (i + 4 <= e) {
        dv.setInt32(o, sdv.getInt32(i, true), true);
        i += 4;
        o += 4;
      }
      const v = this.vals;
      for (; i < e; i++) v[o++] = src[i]!;
    } else {
      src.copy(this.vals, o, s, e);
      o += n;
    }
    this.vlen = o;
    this.defined();
  }

  appendString(str: string): void {
    this.room(str.length * 3 + 4);
    const n = this.vals.write(str, this.vlen + 4, 'utf8');
    this.vals.writeUInt32LE(n, this.vlen);
    this.vlen += n + 4;
    this.defined();
  }
}

/** INT64: 8 bytes little-endian two's complement. */
export class Int64Column extends Column {
  private min = Infinity;
  private max = -Infinity;
  private exact = true;

  constructor(index: number, codec: CodecId, sink: PageSink | null) {
    super(index, PhysicalType.INT64, codec, sink);
  }

  /** An integer: a safe one as is; a larger one (|v| < 2^63) by way of BigInt. */
  append(v: number): void {
    this.room(8);
    if (Number.isSafeInteger(v)) {
      this.vdv.setInt32(this.vlen, v | 0, true);
      this.vdv.setInt32(this.vlen + 4, Math.floor(v / 4294967296) | 0, true);
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
    } else {
      this.vals.writeBigInt64LE(BigInt(v), this.vlen);
      this.exact = false;
    }
    this.vlen += 8;
    this.defined();
  }

  protected override stats(meta: ChunkStats): void {
    if (this.exact && this.min <= this.max) {
      meta.min = this.min;
      meta.max = this.max;
    }
    this.min = Infinity;
    this.max = -Infinity;
    this.exact = true;
  }
}

/** DOUBLE: 8 bytes IEEE 754 little-endian. */
export class DoubleColumn extends Column {
  private min = Infinity;
  private max = -Infinity;

  constructor(index: number, codec: CodecId, sink: PageSink | null) {
    super(index, PhysicalType.DOUBLE, codec, sink);
  }

  append(v: number): void {
    this.room(8);
    this.vdv.setFloat64(this.vlen, v, true);
    this.vlen += 8;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    this.defined();
  }

  protected override stats(meta: ChunkStats): void {
    if (this.min <= this.max) {
      meta.min = this.min;
      meta.max = this.max;
    }
    this.min = Infinity;
    this.max = -Infinity;
  }
}

/** INT32: 4 bytes little-endian two's complement. */
export class Int32Column extends Column {
  private min = Infinity;
  private max = -Infinity;

  constructor(index: number, codec: CodecId, sink: PageSink | null) {
    super(index, PhysicalType.INT32, codec, sink);
  }

  append(v: number): void {
    this.room(4);
    this.vdv.setInt32(this.vlen, v, true);
    this.vlen += 4;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    this.defined();
  }

  protected override stats(meta: ChunkStats): void {
    if (this.min <= this.max) {
      meta.min = this.min;
      meta.max = this.max;
    }
    this.min = Infinity;
    this.max = -Infinity;
  }
}

/** The statistics of a chunk: null count, and min/max as PLAIN bytes for numeric columns. */
function writeStatistics(w: CompactWriter, type: number, c: ChunkMeta): void {
  w.struct(12);
  w.i64(3, c.nulls);
  if (c.min !== undefined && c.max !== undefined) {
    const bytes = (v: number, zero: number): Buffer => {
      if (type === PhysicalType.INT32) {
        const b = Buffer.allocUnsafe(4);
        b.writeInt32LE(v);
        return b;
      }
      const b = Buffer.allocUnsafe(8);
      if (type === PhysicalType.DOUBLE) b.writeDoubleLE(v === 0 ? zero : v);
      else b.writeBigInt64LE(BigInt(v));
      return b;
    };
    // A float min of zero is written -0.0, a max of zero +0.0 (the format's rule for signed zeros).
    w.binary(5, bytes(c.max, 0));
    w.binary(6, bytes(c.min, -0));
  }
  w.end();
}

/** A column of the schema: its name, physical type and whether it is UTF-8 text. */
export interface ColumnSpec {
  name: string;
  type: number;
  utf8: boolean;
}

/** One row group as the footer describes it; plain JSON. */
export interface RowGroupMeta {
  rows: number;
  /** Offset of the row group's first column chunk. */
  offset: number;
  codec: number;
  columns: ChunkMeta[];
}

/**
 * The footer: FileMetaData (Thrift compact), its 4-byte length and the closing magic. Every column
 * is OPTIONAL; UTF-8 columns carry both the STRING logical type and the UTF8 converted type.
 */
export function footer(schema: ColumnSpec[], groups: RowGroupMeta[], createdBy: string): Buffer {
  const w = new CompactWriter(4096 + groups.length * schema.length * 48);
  w.begin();
  w.i32(1, 1);
  w.list(2, T.STRUCT, schema.length + 1);
  w.begin();
  w.binary(4, 'root');
  w.i32(5, schema.length);
  w.end();
  for (const c of schema) {
    w.begin();
    w.i32(1, c.type);
    w.i32(3, 1); // OPTIONAL
    w.binary(4, c.name);
    if (c.utf8) {
      w.i32(6, 0); // ConvertedType UTF8
      w.struct(10); // LogicalType
      w.struct(1); // STRING
      w.end();
      w.end();
    }
    w.end();
  }
  w.i64(3, groups.reduce((n, g) => n + g.rows, 0));
  w.list(4, T.STRUCT, groups.length);
  for (const g of groups) {
    w.begin();
    w.list(1, T.STRUCT, schema.length);
    let uncompressed = 0;
    let compressed = 0;
    g.columns.forEach((c, i) => {
      const spec = schema[i]!;
      uncompressed += c.uncompressed;
      compressed += c.compressed;
      w.begin();
      w.i64(2, c.offset);
      w.struct(3);
      w.i32(1, spec.type);
      w.list(2, T.I32, 2);
      w.zigzag(ENCODING_PLAIN);
      w.zigzag(ENCODING_RLE);
      w.list(3, T.BINARY, 1);
      w.rawBinary(spec.name);
      w.i32(4, g.codec);
      w.i64(5, c.values);
      w.i64(6, c.uncompressed);
      w.i64(7, c.compressed);
      w.i64(9, c.offset);
      writeStatistics(w, spec.type, c);
      w.end();
      w.end();
    });
    w.i64(2, uncompressed);
    w.i64(3, g.rows);
    w.i64(5, g.offset);
    w.i64(6, compressed);
    w.end();
  }
  w.binary(6, createdBy);
  // Column orders: type-defined for every column, so readers trust min_value/max_value.
  w.list(7, T.STRUCT, schema.length);
  for (let i = 0; i < schema.length; i++) {
    w.begin();
    w.struct(1);
    w.end();
    w.end();
  }
  w.end();
  const meta = w.bytes();
  const out = Buffer.allocUnsafe(meta.length + 8);
  meta.copy(out, 0);
  out.writeUInt32LE(meta.length, meta.length);
  out.write('PAR1', meta.length + 4, 'latin1');
  return out;
}
