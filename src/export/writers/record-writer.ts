/** How far an output is durable, and what a resumed writer needs to go on from there. */
export interface WriterMark {
  /** The length of the output at that point. */
  bytes: number;
  /** Format state beyond the bytes (Parquet: the number of row groups journaled). */
  resume?: unknown;
}

/**
 * An export output that takes records as JSON lines (the paged entity shape) and can be made
 * durable at any record boundary: the contract behind checkpoints and `--resume`.
 */
export interface RecordWriter {
  /** Appends complete records, each a JSON line ending with `\n`. */
  write(lines: Buffer, count: number): Promise<void>;
  /** Records written since the last checkpoint. */
  readonly pending: number;
  /** Makes every record written so far durable. */
  checkpoint(): Promise<WriterMark>;
  /** Completes the file (a Parquet footer) and makes it durable. */
  finish(): Promise<WriterMark>;
  /** Releases the file, finished or not. */
  close(): Promise<void>;
}

/** Calls `fn` with each line of a block of JSON lines. */
export function eachLine(lines: Buffer, fn: (line: string) => void): void {
  let start = 0;
  for (let i = lines.indexOf(10); i >= 0; i = lines.indexOf(10, start)) {
    if (i > start) fn(lines.toString('utf8', start, i));
    start = i + 1;
  }
}
