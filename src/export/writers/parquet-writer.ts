import fs from 'node:fs';
import os from 'node:os';
import { VERSION } from '../../version.js';
import type { OutputFile } from './output-file.js';
import type { RowGroupMeta } from './parquet/columns.js';
import { WorkerCompressor } from './parquet/compressor.js';
import { Codec, type CodecId, type EncodedGroup } from './parquet/pages.js';
import { fileFooter, rowGroupMeta, RowWriter, SCHEMA } from './parquet/row-writer.js';
import type { RecordWriter, WriterMark } from './record-writer.js';

const MAGIC = Buffer.from('PAR1', 'latin1');
/** Marks the journal lines of this writer (row-group metadata of its own shape). */
const JOURNAL_VERSION = 2;

interface ParquetResume {
  /** Row groups in the file at the checkpoint (their metadata is in the journal). */
  rowGroups: number;
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
  load(count: number): RowGroupMeta[] {
    let text = '';
    try {
      text = fs.readFileSync(this.path, 'utf8');
    } catch {
      // no journal: fine only when no group was written
    }
    const lines = text.split('\n').slice(0, -1);
    if (lines.length < count) throw new Error(`the row-group journal ${this.path} holds ${lines.length} of the checkpoint's ${count} row groups`);
    const kept = lines.slice(0, count);
    const groups = kept.map((l) => JSON.parse(l) as RowGroupMeta & { v?: unknown });
    if (groups.some((g) => g.v !== JOURNAL_VERSION)) {
      throw new Error(`the row-group journal ${this.path} was written by another chatvault version: start the export over without --resume`);
    }
    fs.writeFileSync(this.path, kept.map((l) => l + '\n').join(''));
    return groups;
  }

  append(groups: RowGroupMeta[]): void {
    if (groups.length === 0) return;
    const fd = fs.openSync(this.path, 'a');
    try {
      fs.writeSync(fd, groups.map((g) => JSON.stringify({ v: JOURNAL_VERSION, ...g }) + '\n').join(''));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  remove(): void {
    fs.rmSync(this.path, { force: true });
  }
}

/** Options of the writer (the CLI uses the defaults). */
export interface ParquetOptions {
  /** Page compression; default snappy. */
  codec?: 'snappy' | 'uncompressed';
  /** Compress in a worker thread while the next rows are read (default: when there is more than one CPU; snappy only). */
  worker?: boolean;
}

/**
 * Parquet with a typed schema: timestamp and created INT64 epoch milliseconds, lat/lng DOUBLE,
 * length INT32, strings UTF-8, ext and payload JSON text, every column optional, Snappy pages.
 * Records are read straight from their JSON bytes into per-column pages (see parquet/), cut into
 * row groups of `rowGroupSize` rows: memory stays bounded by the group size. Pages are compressed
 * in a worker thread while the next ones are read; the groups are written in order, one at a time.
 * A checkpoint ends the row group in progress and journals the metadata of the groups written
 * since the last one, so a resumed run cuts the file back to the last checkpoint, appends further
 * groups and writes the footer over all of them at the end.
 */
export class ParquetFileWriter implements RecordWriter {
  private readonly rows: RowWriter;
  private readonly groups: RowGroupMeta[];
  private journaled: number;
  /** The last row group handed on: resolves once it is in the file. */
  private written: Promise<void> = Promise.resolve();
  /** Why a write failed part-way, after which nothing more is written. */
  private broken: Error | null = null;
  pending = 0;

  private constructor(
    private readonly file: OutputFile,
    private readonly rowGroupSize: number,
    private readonly journal: RowGroupJournal,
    resumed: RowGroupMeta[] | null,
    private readonly codec: CodecId,
    private readonly compressor: WorkerCompressor | null,
  ) {
    this.rows = new RowWriter(codec, compressor);
    this.groups = resumed ?? [];
    this.journaled = this.groups.length;
  }

  /**
   * A writer over a fresh output, or over a resumed one with the checkpoint's `resume` state.
   * `journalPath` is where the row-group metadata is kept until the footer is written.
   */
  static async open(file: OutputFile, rowGroupSize: number, journalPath: string, resume: unknown, opts: ParquetOptions = {}): Promise<ParquetFileWriter> {
    const journal = new RowGroupJournal(journalPath);
    let groups: RowGroupMeta[] | null = null;
    if (file.length > 0) {
      const count = (resume as ParquetResume | undefined)?.rowGroups;
      if (typeof count !== 'number') throw new Error('the checkpoint has no Parquet row groups to go on from');
      groups = journal.load(count);
    } else {
      journal.start();
    }
    const codec = opts.codec === 'uncompressed' ? Codec.UNCOMPRESSED : Codec.SNAPPY;
    const compressor = codec === Codec.SNAPPY && (opts.worker ?? os.availableParallelism() > 1) ? new WorkerCompressor(codec, SCHEMA.length) : null;
    const w = new ParquetFileWriter(file, rowGroupSize, journal, groups, codec, compressor);
    try {
      if (file.length === 0) await file.append(MAGIC);
    } catch (e) {
      await compressor?.close();
      throw e;
    }
    return w;
  }

  async write(lines: Buffer, count: number): Promise<void> {
    this.usable();
    try {
      let at = 0;
      while (at < lines.length) {
        at = this.rows.addLines(lines, at, this.rowGroupSize - this.rows.rows);
        if (this.rows.rows >= this.rowGroupSize) await this.endRowGroup();
      }
      await this.compressor?.caughtUp();
    } catch (e) {
      // The rows of this block before the failing record are in the columns already, but the
      // caller does not count the block: no later checkpoint may make them durable (a resume
      // would export them twice). The last checkpoint stays the one to resume from.
      this.broken = e as Error;
      throw e;
    }
    this.pending += count;
  }

  private usable(): void {
    if (this.broken) throw new Error(`the Parquet output stopped at a failed write: ${this.broken.message}`);
  }

  /**
   * Ends the row group in progress and hands it on to be written after the one before, which is
   * awaited: at most one group is being compressed while the next is read.
   */
  private async endRowGroup(): Promise<void> {
    const g = this.rows.take();
    if (!g) return;
    const chunks: Promise<EncodedGroup> = g.chunks ? Promise.resolve(g.chunks) : this.compressor!.group();
    const before = this.written;
    this.written = (async () => {
      const c = await chunks;
      await before;
      const meta = rowGroupMeta(this.file.length, g.rows, this.codec, g.stats, c);
      await this.file.append(c.bytes);
      this.groups.push(meta);
    })();
    // A failure surfaces where the group is awaited (here or at the next checkpoint), not as unhandled.
    this.written.catch(() => undefined);
    await before;
  }

  async checkpoint(): Promise<WriterMark> {
    this.usable();
    await this.endRowGroup();
    await this.written;
    await this.file.sync();
    this.journal.append(this.groups.slice(this.journaled));
    this.journaled = this.groups.length;
    this.pending = 0;
    return { bytes: this.file.length, resume: { rowGroups: this.journaled } satisfies ParquetResume };
  }

  async finish(): Promise<WriterMark> {
    this.usable();
    await this.endRowGroup();
    await this.written;
    await this.file.append(fileFooter(this.groups, `chatvault version ${VERSION}`));
    await this.file.sync();
    this.journal.remove();
    this.pending = 0;
    return { bytes: this.file.length };
  }

  async close(): Promise<void> {
    await this.compressor?.close();
    await this.file.close();
  }
}
