import fs from 'node:fs';
import path from 'node:path';
import { CliError, EXIT } from './cli-error.js';

export type ExportFormat = 'jsonl' | 'csv' | 'parquet';
/** `stream`: chatvault's streaming endpoint; `paged`: `GET chatmessages` with cursors. */
export type WalkMode = 'stream' | 'paged';

/** What makes two runs the same export: a checkpoint only resumes the export that wrote it. */
export interface ExportTarget {
  url: string;
  org: string;
  app: string;
  ql: string;
  format: ExportFormat;
  gzip: boolean;
}

/** Where an incremental run starts: a chatvault watermark, or (other servers) a timestamp. */
export interface SinceMark {
  watermark?: string | undefined;
  timestamp?: number | undefined;
}

/**
 * The checkpoint file next to the output. Everything in it describes the output as it was at its
 * last durable flush: `bytes` of output, `count` records, and where the walk goes on from.
 */
export interface ExportState {
  version: 1;
  target: ExportTarget;
  mode: WalkMode;
  /** The lower bound of this run (`--since-last`), or null for everything. */
  since: SinceMark | null;
  complete: boolean;
  bytes: number;
  count: number;
  /** Stream walks: the last record written (`after=`). */
  lastMsgId?: string | undefined;
  /** Paged walks: the cursor of the next page to read; absent before the first page. */
  cursor?: string | undefined;
  /** The walk's watermark, once the server has told it. */
  watermark?: string | undefined;
  /** The largest timestamp written so far (for `--since-last` on other servers). */
  maxTimestamp?: number | undefined;
  /** What the output writer needs to go on (Parquet: how many row groups are journaled). */
  writer?: unknown;
  /** Where the last complete run ended: the next `--since-last` starts there. */
  last?: (SinceMark & { count: number; finishedAt: number }) | undefined;
  updatedAt: number;
}

/** The default state file of an output. */
export function statePathFor(out: string): string {
  return `${out}.chatvault-export.json`;
}

/** Reads a state file; null when there is none, exit 2 when it cannot be used. */
export function readState(file: string): ExportState | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CliError(EXIT.usage, `cannot read the checkpoint ${file}: ${(e as Error).message}`);
  }
  let st: ExportState;
  try {
    st = JSON.parse(text) as ExportState;
  } catch {
    throw new CliError(EXIT.usage, `the checkpoint ${file} is not valid JSON; remove it to start over`);
  }
  if (st?.version !== 1 || typeof st.bytes !== 'number' || typeof st.count !== 'number' || typeof st.target !== 'object') {
    throw new CliError(EXIT.usage, `the checkpoint ${file} is not a chatvault export checkpoint`);
  }
  return st;
}

/** Writes a state file atomically and durably: a temp file, fsync, rename, fsync of the folder. */
export function writeState(file: string, st: ExportState): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, JSON.stringify({ ...st, updatedAt: Date.now() }, null, 1) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  try {
    const dir = fs.openSync(path.dirname(path.resolve(file)), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  } catch {
    // Some file systems cannot fsync a folder; the rename is still atomic there.
  }
}

/** The flags of `target` that differ from `other`, for a clear refusal to resume. */
export function targetDiff(a: ExportTarget, b: ExportTarget): string[] {
  return (Object.keys(a) as (keyof ExportTarget)[]).filter((k) => a[k] !== b[k]).map((k) => `--${k}`);
}
