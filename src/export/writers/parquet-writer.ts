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
  rowGroups: RowGroups;
  numRows: bigint;
}

/**
 * Parquet with a typed schema: timestamp and created INT64 epoch milliseconds, lat/lng DOUBLE,
 * length INT32, strings UTF-8, ext and payload JSON text. Rows are buffered up to one row group
 * (memory stays bounded by the group size), then encoded and appended. A checkpoint ends the row
 * group in progress; its state carries the row-group metadata written so far, so a resumed run
 * cuts the file back to the last complete row group, appends further groups and writes the
 * footer over all of them at the end.
 */
export class ParquetFileWriter implements RecordWriter {
  private cols: Cell[][] = COLUMNS.map(() => []);
  private readonly bytes = new Drain(1 << 20);
  private readonly pq: ParquetWriter;
  pending = 0;

  private constructor(private readonly file: OutputFile, private readonly rowGroupSize: number, resume: ParquetResume | undefined) {
    this.pq = new ParquetWriter({ writer: this.bytes, schema: SCHEMA, createdBy: `chatvault version ${VERSION}` });
    if (resume) {
      // The header magic is already in the file: drop the copy the constructor wrote.
      this.bytes.index = 0;
      this.bytes.offset = file.length;
      this.pq.row_groups = resume.rowGroups;
      this.pq.num_rows = resume.numRows;
    }
  }

  /** A writer over a fresh output, or over a resumed one with the checkpoint's `resume` state. */
  static async open(file: OutputFile, rowGroupSize: number, resume: unknown): Promise<ParquetFileWriter> {
    const r = resume as ParquetResume | undefined;
    const valid = file.length > 0 && r !== undefined && Array.isArray(r.rowGroups) && typeof r.numRows === 'bigint';
    if (file.length > 0 && !valid) throw new Error('the checkpoint has no Parquet row groups to go on from');
    const w = new ParquetFileWriter(file, rowGroupSize, valid ? r : undefined);
    await w.drain();
    return w;
  }

  get full(): boolean {
    return this.pending >= this.rowGroupSize;
  }

  async write(lines: Buffer, count: number): Promise<void> {
    eachLine(lines, (l) => {
      const cells = row(parseRecord(l));
      for (let i = 0; i < cells.length; i++) this.cols[i]!.push(cells[i]!);
    });
    this.pending += count;
  }

  private async drain(): Promise<void> {
    const b = this.bytes.take();
    if (b.length > 0) await this.file.append(b);
  }

  private async endRowGroup(): Promise<void> {
    const n = this.cols[0]!.length;
    if (n === 0) return;
    const columnData = COLUMNS.map(([name], i) => ({ name, data: this.cols[i]!, offsetIndex: false }));
    this.cols = COLUMNS.map(() => []);
    await this.pq.write({ columnData, rowGroupSize: n });
    await this.drain();
  }

  async checkpoint(): Promise<WriterMark> {
    await this.endRowGroup();
    await this.file.sync();
    this.pending = 0;
    return { bytes: this.file.length, resume: { rowGroups: this.pq.row_groups, numRows: this.pq.num_rows } satisfies ParquetResume };
  }

  async finish(): Promise<WriterMark> {
    await this.endRowGroup();
    await this.pq.finish();
    await this.drain();
    await this.file.sync();
    this.pending = 0;
    return { bytes: this.file.length };
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
