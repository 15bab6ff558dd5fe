import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { CSV_HEADER, csvRow, parseRecord } from '../records.js';
import type { OutputFile } from './output-file.js';
import { eachLine, type RecordWriter, type WriterMark } from './record-writer.js';

const gzip = promisify(gzipCb);
const FLUSH_BYTES = 1 << 20;

/**
 * JSONL or CSV, optionally gzip. Text is buffered up to 1 MiB and then written; with gzip each
 * such block is its own gzip member. A file of concatenated members is one valid gzip file
 * (gunzip, zcat, Python, pandas, DuckDB read it whole), and every checkpoint falls on a member
 * boundary, so cutting the file back to a checkpoint leaves a valid file to append to.
 */
export class LineWriter implements RecordWriter {
  private chunks: Buffer[] = [];
  private size = 0;
  pending = 0;

  private constructor(private readonly file: OutputFile, private readonly csv: boolean, private readonly gz: boolean) {}

  /** A writer over a fresh or resumed output; a fresh CSV starts with its header line. */
  static async open(file: OutputFile, format: 'jsonl' | 'csv', gz: boolean): Promise<LineWriter> {
    const w = new LineWriter(file, format === 'csv', gz);
    if (w.csv && file.length === 0) w.push(Buffer.from(CSV_HEADER));
    return w;
  }

  private push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
  }

  async write(lines: Buffer, count: number): Promise<void> {
    if (this.csv) {
      let s = '';
      eachLine(lines, (l) => (s += csvRow(parseRecord(l))));
      this.push(Buffer.from(s));
    } else {
      this.push(lines);
    }
    this.pending += count;
    if (this.size >= FLUSH_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.size === 0) return;
    const text = Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    this.size = 0;
    await this.file.append(this.gz ? await gzip(text) : text);
  }

  async checkpoint(): Promise<WriterMark> {
    await this.flush();
    await this.file.sync();
    this.pending = 0;
    return { bytes: this.file.length };
  }

  async finish(): Promise<WriterMark> {
    // An export of nothing is still a valid gzip file: one empty member.
    if (this.gz && this.file.length === 0 && this.size === 0) await this.file.append(await gzip(Buffer.alloc(0)));
    return this.checkpoint();
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
