/**
 * The Parquet export's rows: records (JSON lines) in, column chunks and row groups out. The
 * schema is fixed (docs/cli.md): the CSV columns typed, plus uuid, created and the whole payload.
 */
import { DoubleColumn, footer, Int32Column, Int64Column, PhysicalType, StringColumn, type ChunkStats, type Column, type ColumnSpec, type PageSink, type RowGroupMeta } from './columns.js';
import { Codec, joinChunks, type CodecId, type EncodedChunk, type EncodedGroup } from './pages.js';
import { F, K, RecordScanner } from './scanner.js';

type Kind = 'string' | 'int64' | 'double' | 'int32';

/** The columns, in order (their positions are the scanner's slots). */
const COLUMNS: [string, Kind][] = [
  ['msg_id', 'string'], ['uuid', 'string'], ['timestamp', 'int64'], ['created', 'int64'],
  ['from', 'string'], ['to', 'string'], ['chat_type', 'string'],
  ['type', 'string'], ['msg', 'string'], ['url', 'string'], ['filename', 'string'],
  ['lat', 'double'], ['lng', 'double'], ['addr', 'string'], ['length', 'int32'],
  ['ext', 'string'], ['payload', 'string'],
];

const PHYSICAL: Record<Kind, number> = { string: PhysicalType.BYTE_ARRAY, int64: PhysicalType.INT64, double: PhysicalType.DOUBLE, int32: PhysicalType.INT32 };

export const SCHEMA: ColumnSpec[] = COLUMNS.map(([name, kind]) => ({ name, type: PHYSICAL[kind], utf8: kind === 'string' }));

const INT64_LIMIT = 2 ** 63;
const INT32_MAX = 2 ** 31 - 1;

// The conversions of a field to its column, shared by both ways of reading a record.

function num(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}

function str(v: unknown): string | null {
  if (typeof v === 'string') return v;
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;
}

/** An INT64 cell from a finite number: truncated; null beyond the 64-bit range. */
function int64(n: number | null): number | null {
  if (n === null) return null;
  const t = Math.trunc(n);
  return t >= INT64_LIMIT || t < -INT64_LIMIT ? null : t;
}

/** An INT32 cell from a finite number: rounded; null beyond the 32-bit range. */
function int32(n: number | null): number | null {
  return n === null || Math.abs(n) > INT32_MAX ? null : Math.round(n);
}

function finite(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Takes records and keeps the columns of the row group in progress. `rows` counts the rows in
 * it; `take` ends it.
 */
export class RowWriter {
  private readonly cols: Column[];
  // The columns by type, each list with the slots of its columns (monomorphic loops).
  private readonly strings: StringColumn[] = [];
  private readonly stringSlots: number[] = [];
  private readonly int64s: Int64Column[] = [];
  private readonly int64Slots: number[] = [];
  private readonly doubles: DoubleColumn[] = [];
  private readonly doubleSlots: number[] = [];
  private readonly int32s: Int32Column[] = [];
  private readonly int32Slots: number[] = [];
  private readonly scanner = new RecordScanner();
  rows = 0;

  /** Pages are compressed with `codec`, here or (with a `sink`) by the sink. */
  constructor(readonly codec: CodecId = Codec.SNAPPY, sink: PageSink | null = null) {
    this.cols = COLUMNS.map(([, kind], i) => {
      if (kind === 'string') {
        const c = new StringColumn(i, codec, sink);
        this.strings.push(c);
        this.stringSlots.push(i);
        return c;
      }
      if (kind === 'int64') {
        const c = new Int64Column(i, codec, sink);
        this.int64s.push(c);
        this.int64Slots.push(i);
        return c;
      }
      if (kind === 'double') {
        const c = new DoubleColumn(i, codec, sink);
        this.doubles.push(c);
        this.doubleSlots.push(i);
        return c;
      }
      const c = new Int32Column(i, codec, sink);
      this.int32s.push(c);
      this.int32Slots.push(i);
      return c;
    });
  }

  /**
   * Appends the records of a block of JSON lines from offset `from`, at most `max` of them;
   * returns the offset after the last line taken.
   */
  addLines(lines: Buffer, from: number, max: number): number {
    let n = 0;
    let s = from;
    const len = lines.length;
    const dv = new DataView(lines.buffer, lines.byteOffset, lines.length);
    while (s < len && n < max) {
      let e = lines.indexOf(10, s);
      if (e < 0) e = len;
      if (e > s) {
        this.addLine(lines, dv, s, e);
        n++;
      }
      s = e + 1;
    }
    return s;
  }

  /** Appends the record `b[s, e)` (one JSON object); `dv` is a DataView over `b`. */
  addLine(b: Buffer, dv: DataView, s: number, e: number): void {
    const sc = this.scanner;
    if (!sc.scan(b, dv, s, e)) {
      this.addParsed(JSON.parse(b.toString('utf8', s, e)) as unknown);
      return;
    }
    const kind = sc.kind;
    const start = sc.start;
    const stop = sc.stop;
    const num = sc.num;
    const strings = this.strings;
    // Strings with escapes are decoded before anything is appended: a row goes in whole or not at all.
    let decoded: string[] | null = null;
    for (let j = 0; j < strings.length; j++) {
      const i = this.stringSlots[j]!;
      if (kind[i] === K.ESCAPED) (decoded ??= [])[j] = JSON.parse(b.toString('utf8', start[i]! - 1, stop[i]! + 1)) as string;
    }
    for (let j = 0; j < strings.length; j++) {
      const i = this.stringSlots[j]!;
      const col = strings[j]!;
      const k = kind[i]!;
      if (k === K.RAW) col.appendBytes(b, dv, start[i]!, stop[i]!);
      else if (k === K.ESCAPED) col.appendString(decoded![j]!);
      else if (i === F.msg_id) col.appendString('');
      else col.appendNull();
    }
    for (let j = 0; j < this.int64s.length; j++) {
      const i = this.int64Slots[j]!;
      const v = kind[i] === K.NUMBER ? int64(finite(num[i]!)) : null;
      if (v === null) this.int64s[j]!.appendNull();
      else this.int64s[j]!.append(v);
    }
    for (let j = 0; j < this.doubles.length; j++) {
      const i = this.doubleSlots[j]!;
      const v = kind[i] === K.NUMBER ? finite(num[i]!) : null;
      if (v === null) this.doubles[j]!.appendNull();
      else this.doubles[j]!.append(v);
    }
    for (let j = 0; j < this.int32s.length; j++) {
      const i = this.int32Slots[j]!;
      const v = kind[i] === K.NUMBER ? int32(finite(num[i]!)) : null;
      if (v === null) this.int32s[j]!.appendNull();
      else this.int32s[j]!.append(v);
    }
    this.rows++;
  }

  /** A number cell of column `i`. */
  private number(i: number, n: number | null): void {
    const col = this.cols[i]!;
    if (col instanceof Int64Column) {
      const v = int64(n);
      if (v === null) col.appendNull();
      else col.append(v);
    } else if (col instanceof Int32Column) {
      const v = int32(n);
      if (v === null) col.appendNull();
      else col.append(v);
    } else if (n === null) col.appendNull();
    else (col as DoubleColumn).append(n);
  }

  /** A record the scanner passed on, from its parsed value (every cell worked out before any is appended). */
  private addParsed(r: unknown): void {
    if (!isObject(r)) throw new Error('a record of the export is not a JSON object');
    const payload = r.payload ?? { bodies: [] };
    const p = isObject(payload) ? payload : {};
    const first: unknown = Array.isArray(p.bodies) ? p.bodies[0] : undefined;
    // A first body that is not an object has no fields.
    const b = isObject(first) ? first : {};
    const cells: (string | number | null)[] = [
      str(r.msg_id) ?? '', str(r.uuid), num(r.timestamp), num(r.created),
      str(r.from), str(r.to), str(r.chat_type),
      str(b.type), str(b.msg), str(b.url), str(b.filename),
      num(b.lat), num(b.lng), str(b.addr), num(b.length),
      p.ext === undefined ? null : JSON.stringify(p.ext), JSON.stringify(payload),
    ];
    for (let i = 0; i < cells.length; i++) {
      const c = cells[i]!;
      const col = this.cols[i]!;
      if (col instanceof StringColumn) {
        if (c === null) col.appendNull();
        else col.appendString(c as string);
      } else this.number(i, c as number | null);
    }
    this.rows++;
  }

  /**
   * Ends the row group in progress (null when empty): its rows, each column's statistics and,
   * when compressed here, its column chunks.
   */
  take(): { rows: number; stats: ChunkStats[]; chunks: EncodedGroup | null } | null {
    if (this.rows === 0) return null;
    const stats: ChunkStats[] = [];
    const chunks: EncodedChunk[] = [];
    for (const c of this.cols) {
      const t = c.takeChunk();
      stats.push(t.stats);
      if (t.chunk) chunks.push(t.chunk);
    }
    const rows = this.rows;
    this.rows = 0;
    return { rows, stats, chunks: chunks.length === this.cols.length ? joinChunks(chunks) : null };
  }
}

/** The metadata of a row group at `offset` from its statistics and chunk sizes. */
export function rowGroupMeta(offset: number, rows: number, codec: CodecId, stats: ChunkStats[], chunks: EncodedGroup): RowGroupMeta {
  let at = offset;
  const columns = stats.map((s, i) => {
    const c = chunks.sizes[i]!;
    const meta = { ...s, offset: at, uncompressed: c.uncompressed, compressed: c.compressed };
    at += c.compressed;
    return meta;
  });
  return { rows, offset, codec, columns };
}

/** The file's footer over its row groups. */
export function fileFooter(groups: RowGroupMeta[], createdBy: string): Buffer {
  return footer(SCHEMA, groups, createdBy);
}
