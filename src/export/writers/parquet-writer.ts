import fs from 'node:fs';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { VERSION } from '../../version.js';
import { parseRecord, type StoredRecord } from '../records.js';
import type { OutputFile } from './output-file.js';
import { eachLine, type RecordWriter, type WriterMark } from './record-writer.js';

type Schema = ConstructorParameters<typeof ParquetWriter>[0]['schema'];
type RowGroups = ParquetWriter['row_groups'];

type Cell = string | number | bigint | null;
type ColumnKind = 'string' | 'int64' | 'double' | 'int32';

/** The columns of the Parquet export, in order: the CSV columns typed, plus uuid, created and the whole payload. */
const COLUMNS: [string, ColumnKind][] = [
  ['msg_id', 'string'], ['uuid', 'string'], ['timestamp', 'int64'], ['created', 'int64'],
  ['from', 'string'], ['to', 'string'], ['chat_type', 'string'],
  ['type', 'string'], ['msg', 'string'], ['url', 'string'], ['filename', 'string'],
  ['lat', 'double'], ['lng', 'double'], ['addr', 'string'], ['length', 'int32'],
  ['ext', 'string'], ['payload', 'string'],
];

const PHYSICAL: Record<ColumnKind, Schema[number]> = {
  string: { name: '', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  int64: { name: '', type: 'INT64', repetition_type: 'OPTIONAL' },
  double: { name: '', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
  int32: { name: '', type: 'INT32', repetition_type: 'OPTIONAL' },
};

// Min/max of free text and JSON help no reader skip a row group, and computing them costs a
// large share of the writing time: statistics are kept for ids, names, types and numbers.
const NO_STATS = new Set(['uuid', 'msg', 'url', 'filename', 'addr', 'ext', 'payload']);

const SCHEMA: Schema = [{ name: 'root', num_children: COLUMNS.length }, ...COLUMNS.map(([name, kind]) => ({ ...PHYSICAL[kind], name }))];

function num(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}

function str(v: unknown): string | null {
  if (typeof v === 'string') return v;
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;
}

function int64(v: unknown): bigint | null {
  const n = num(v);
  return n === null ? null : BigInt(Math.trunc(n));
}

function int32(v: unknown): number | null {
  const n = num(v);
  return n === null || Math.abs(n) > 2 ** 31 - 1 ? null : Math.round(n);
}

/** One record as the Parquet row: the first body's fields flattened, ext and payload as JSON text. */
function row(r: StoredRecord): Cell[] {
  const payload = (r.payload ?? { bodies: [] }) as StoredRecord['payload'];
  const b = (Array.isArray(payload.bodies) ? payload.bodies[0] : undefined) ?? {};
  return [
    str(r.msg_id) ?? '', str(r.uuid), int64(r.timestamp), int64(r.created),
    str(r.from), str(r.to), str(r.chat_type),
    str(b.type), str(b.msg), str(b.url), str(b.filename),
    num(b.lat), num(b.lng), str(b.addr), int32(b.length),
    payload.ext === undefined ? null : JSON.stringify(payload.ext), JSON.stringify(payload),
  ];
}

/** A ByteWriter whose bytes are taken out after each row group and appended to the file. */
class Drain extends ByteWriter {
  take(): Buffer {
    const out = Buffer.from(this.buffer.slice(0, this.index));
    this.index = 0;
    return out;
  }
}

interface ParquetResume {
  /** Row groups in the file at the checkpoint (their metadata is in the journal). */
  rowGroups: number;
}

// Row-group metadata holds 64-bit integers and bytes, which JSON has no words for.
function tag(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') };
  return v;
}

function untag(_k: string, v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const o = v as Record<string, unknown>;
  if (typeof o.$bigint === 'string') return BigInt(o.$bigint);
  if (typeof o.$bytes === 'string') return new Uint8Array(Buffer.from(o.$bytes, 'base64'));
  return v;
}

/**
 * The metadata of the row groups already in a Parquet file that has no footer yet, one JSON line
 * per group, appended (and synced) at each checkpoint. A resumed run reads it back to write the
 * footer over every group. Append-only, so a checkpoint costs the same at group 1,000 as at group 1.
 */
class RowGroupJournal {
  constructor(private readonly path: string) {}

  start(): void {
    fs.writeFileSync(this.path, '');
  }

  /** The first `count` groups; lines a crash left after the checkpoint are dropped. */
  load(count: number): RowGroups {
    let text = '';
    try {
      text = fs.readFileSync(this.path, 'utf8');
    } catch {
      // no journal: fine only when no group was written
    }
    const lines = text.split('\n').slice(0, -1);
    if (lines.length < count) throw new Error(`the row-group journal ${this.path} holds ${lines.length} of the checkpoint's ${count} row groups`);
    const kept = lines.slice(0, count);
    fs.writeFileSync(this.path, kept.map((l) => l + '\n').join(''));
    return kept.map((l) => JSON.parse(l, untag) as RowGroups[number]);
  }

  append(groups: RowGroups): void {
    if (groups.length === 0) return;
    const fd = fs.openSync(this.path, 'a');
    try {
      fs.writeSync(fd, groups.map((g) => JSON.stringify(g, tag) + '\n').join(''));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  remove(): void {
    fs.rmSync(this.path, { force: true });
  }
}

/**
 * Parquet with a typed schema: timestamp and created INT64 epoch milliseconds, lat/lng DOUBLE,
 * length INT32, strings UTF-8, ext and payload JSON text. Rows are buffered up to one row group
 * (memory stays bounded by the group size), then encoded and appended. A checkpoint ends the row
 * group in progress and journals the metadata of the groups written since the last one, so a
 * resumed run cuts the file back to the last checkpoint, appends further groups and writes the
 * footer over all of them at the end.
 */
export class ParquetFileWriter implements RecordWriter {
  private cols: Cell[][] = COLUMNS.map(() => []);
  private readonly bytes = new Drain(1 << 20);
  private readonly pq: ParquetWriter;
  private journaled: number;
  pending = 0;

  private constructor(private readonly file: OutputFile, private readonly rowGroupSize: number, private readonly journal: RowGroupJournal, resumed: RowGroups | null) {
    this.pq = new ParquetWriter({ writer: this.bytes, schema: SCHEMA, createdBy: `chatvault version ${VERSION}` });
    if (resumed) {
      // The header magic is already in the file: drop the copy the constructor wrote.
      this.bytes.index = 0;
      this.bytes.offset = file.length;
      this.pq.row_groups = resumed;
      this.pq.num_rows = resumed.reduce((n, g) => n + g.num_rows, 0n);
    }
    this.journaled = this.pq.row_groups.length;
  }

  /**
   * A writer over a fresh output, or over a resumed one with the checkpoint's `resume` state.
   * `journalPath` is where the row-group metadata is kept until the footer is written.
   */
  static async open(file: OutputFile, rowGroupSize: number, journalPath: string, resume: unknown): Promise<ParquetFileWriter> {
    const journal = new RowGroupJournal(journalPath);
    let groups: RowGroups | null = null;
    if (file.length > 0) {
      const count = (resume as ParquetResume | undefined)?.rowGroups;
      if (typeof count !== 'number') throw new Error('the checkpoint has no Parquet row groups to go on from');
      groups = journal.load(count);
    } else {
      journal.start();
    }
    const w = new ParquetFileWriter(file, rowGroupSize, journal, groups);
    await w.drain();
    return w;
  }

  async write(lines: Buffer, count: number): Promise<void> {
    eachLine(lines, (l) => {
      const cells = row(parseRecord(l));
      for (let i = 0; i < cells.length; i++) this.cols[i]!.push(cells[i]!);
    });
    this.pending += count;
    if (this.cols[0]!.length >= this.rowGroupSize) await this.endRowGroup();
  }

  private async drain(): Promise<void> {
    const b = this.bytes.take();
    if (b.length > 0) await this.file.append(b);
  }

  private async endRowGroup(): Promise<void> {
    const n = this.cols[0]!.length;
    if (n === 0) return;
    const columnData = COLUMNS.map(([name], i) => ({ name, data: this.cols[i]!, offsetIndex: false, statistics: !NO_STATS.has(name) }));
    this.cols = COLUMNS.map(() => []);
    await this.pq.write({ columnData, rowGroupSize: n });
    await this.drain();
  }

  async checkpoint(): Promise<WriterMark> {
    await this.endRowGroup();
    await this.file.sync();
    this.journal.append(this.pq.row_groups.slice(this.journaled));
    this.journaled = this.pq.row_groups.length;
    this.pending = 0;
    return { bytes: this.file.length, resume: { rowGroups: this.journaled } satisfies ParquetResume };
  }

  async finish(): Promise<WriterMark> {
    await this.endRowGroup();
    await this.pq.finish();
    await this.drain();
    await this.file.sync();
    this.journal.remove();
    this.pending = 0;
    return { bytes: this.file.length };
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
