import { setTimeout as sleep } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { LineWriter } from '../export/writers/line-writer.js';
import { OutputFile } from '../export/writers/output-file.js';
import type { RecordWriter } from '../export/writers/record-writer.js';
import { CliError, diskError, EXIT, runCommand, usageExits, wholeNumber } from './cli-error.js';
import { readState, statePathFor, targetDiff, writeState, type ExportFormat, type ExportState, type ExportTarget, type SinceMark, type WalkMode } from './export-state.js';
import { Progress } from './progress.js';
import { Interrupted, RemoteApp, type Batch, type WalkEnd } from './remote-app.js';

interface ExportOptions {
  url: string;
  org: string;
  app: string;
  clientId: string;
  clientSecret?: string;
  ql: string;
  format: ExportFormat;
  gzip?: boolean;
  out: string;
  state?: string;
  resume?: boolean;
  sinceLast?: boolean;
  stream: boolean;
  progress: boolean;
  pageSize: number;
  checkpointEvery: number;
  rowGroupSize: number;
  retries: number;
  retryDelayMs: number;
  maxRate?: number;
}

const CHECKPOINT_MS = 5000;

/**
 * The ql of an incremental run on a server without watermarks: the user's ql with
 * `timestamp > last` added to its condition (best effort: a message stamped in the same
 * millisecond as the last one, but stored later, is missed).
 */
export function qlAfterTimestamp(ql: string, ts: number): string {
  const cond = `timestamp > ${ts}`;
  const order = /\border\s+by\b/i.exec(ql);
  const head = (order ? ql.slice(0, order.index) : ql).trim();
  const tail = order ? ` ${ql.slice(order.index).trim()}` : '';
  const where = /\bwhere\b/i.exec(head);
  if (where) return `${head.slice(0, where.index)}where ${cond} and (${head.slice(where.index + 5).trim()})${tail}`;
  if (head === '' || /^select\b/i.test(head)) return `${head || 'select *'} where ${cond}${tail}`;
  // A bare condition (Usergrid accepts ql without select).
  return `select * where ${cond} and (${head})${tail}`;
}

function sameApp(a: ExportTarget, b: ExportTarget): boolean {
  return a.url === b.url && a.org === b.org && a.app === b.app;
}

function resumeHint(durable: number, out: string): string {
  return `${durable} messages are safely in ${out}; run the same command with --resume to continue`;
}

/** Decides where this run starts: a checkpoint to resume, and the lower bound of an incremental run. */
function startingPoint(o: ExportOptions, target: ExportTarget, statePath: string): { resume: ExportState | null; since: SinceMark | null; prev: ExportState | null } {
  const prev = readState(statePath);
  if (o.resume) {
    if (!prev) throw new CliError(EXIT.usage, `nothing to resume: there is no checkpoint ${statePath}`);
    const diff = targetDiff(prev.target, target);
    if (diff.length > 0) throw new CliError(EXIT.usage, `the checkpoint ${statePath} is of another export (${diff.join(', ')} differ)`);
    return { resume: prev, since: prev.since, prev };
  }
  if (!o.sinceLast) return { resume: null, since: null, prev };
  if (!prev?.last) {
    process.stderr.write(`chatvault export: no complete export recorded in ${statePath}: exporting everything\n`);
    return { resume: null, since: null, prev };
  }
  if (!sameApp(prev.target, target)) throw new CliError(EXIT.usage, `the checkpoint ${statePath} is of another server or app`);
  return { resume: null, since: { watermark: prev.last.watermark, timestamp: prev.last.timestamp }, prev };
}

async function openWriter(o: ExportOptions, statePath: string, resume: ExportState | null): Promise<RecordWriter> {
  let file: OutputFile;
  try {
    file = resume ? await OutputFile.resume(o.out, resume.bytes) : await OutputFile.create(o.out);
  } catch (e) {
    if (resume && (e as NodeJS.ErrnoException).code === 'ENOENT') throw new CliError(EXIT.usage, `${o.out} is gone: start over without --resume`);
    throw diskError(e, o.out) ?? new CliError(EXIT.usage, (e as Error).message);
  }
  if (o.format === 'parquet') {
    const { ParquetFileWriter } = await import('../export/writers/parquet-writer.js');
    return ParquetFileWriter.open(file, o.rowGroupSize, `${statePath.replace(/\.json$/, '')}.rowgroups.jsonl`, resume?.writer);
  }
  return LineWriter.open(file, o.format, o.gzip === true);
}

async function runExport(o: ExportOptions): Promise<number> {
  if (o.format === 'parquet' && o.gzip) throw new CliError(EXIT.usage, '--gzip is for jsonl and csv; Parquet is compressed already');
  const clientSecret = o.clientSecret ?? process.env.CHATVAULT_CLIENT_SECRET;
  if (!clientSecret) throw new CliError(EXIT.usage, 'missing --client-secret (or the CHATVAULT_CLIENT_SECRET environment variable)');
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new CliError(EXIT.usage, `--url is not a URL: ${o.url}`);
  }
  const target: ExportTarget = { url: url.href.replace(/\/+$/, ''), org: o.org, app: o.app, ql: o.ql, format: o.format, gzip: o.gzip === true };
  const statePath = o.state ?? statePathFor(o.out);
  const { resume, since, prev } = startingPoint(o, target, statePath);
  if (resume?.complete) {
    process.stderr.write(`chatvault export: ${o.out} is complete already (${resume.count} messages)\n`);
    process.stdout.write(JSON.stringify({ out: o.out, format: o.format, count: resume.count, complete: true, watermark: resume.watermark }) + '\n');
    return EXIT.ok;
  }

  // Ctrl-C (or SIGTERM) ends the run at the next record boundary; a second one ends it at once.
  const abort = new AbortController();
  const stop = () => {
    if (abort.signal.aborted) process.exit(EXIT.interrupted);
    abort.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  const progress = o.progress ? new Progress({ label: 'export', start: resume?.count ?? 0 }) : null;
  const remote = new RemoteApp({
    url: target.url, org: o.org, app: o.app, clientId: o.clientId, clientSecret, retries: o.retries, retryDelayMs: o.retryDelayMs,
    signal: abort.signal, onRetry: (why) => (progress ? progress.log(`chatvault export: ${why}`) : process.stderr.write(`chatvault export: ${why}\n`)),
  });
  let writer: RecordWriter | undefined;
  let st: ExportState | undefined;
  // Records the last checkpoint holds: what a --resume would start from.
  let durable = resume?.count ?? 0;
  try {
    await remote.authenticate();
    // --no-stream treats the server as a plain Easemob one: no detection, paged walk, timestamps.
    const version = o.stream ? await remote.chatvaultVersion() : null;
    const mode: WalkMode = resume?.mode ?? (version !== null && !/\border\s+by\b/i.test(o.ql) ? 'stream' : 'paged');
    if (mode === 'stream' && version === null) throw new CliError(EXIT.usage, 'the checkpoint is of a chatvault stream, but the server does not answer as chatvault now');
    let ql = o.ql;
    let sinceParam: string | undefined;
    if (since && version !== null && since.watermark) sinceParam = since.watermark;
    else if (since && since.timestamp !== undefined) ql = qlAfterTimestamp(o.ql, since.timestamp);
    else if (since) throw new CliError(EXIT.usage, 'the last run left a chatvault watermark only; run without --no-stream');

    if (!resume) {
      // The new checkpoint goes down before the output is emptied: an old "complete" one must not outlive its file.
      st = { version: 1, target, mode, since, complete: false, bytes: 0, count: 0, last: prev && sameApp(prev.target, target) ? prev.last : undefined, updatedAt: 0 };
      writeState(statePath, st);
    } else {
      st = resume;
    }
    writer = await openWriter(o, statePath, resume);
    const w = writer;
    const checkpoint = async () => {
      const mark = await w.checkpoint();
      st = { ...st!, bytes: mark.bytes, writer: mark.resume };
      writeState(statePath, st);
      durable = st.count;
      lastCheckpoint = Date.now();
    };
    let lastCheckpoint = Date.now();
    await checkpoint();

    const walk: AsyncGenerator<Batch, WalkEnd> = mode === 'stream'
      ? remote.stream({ ql, since: sinceParam, after: st.lastMsgId })
      : remote.pages({ ql, since: sinceParam, cursor: st.cursor, limit: o.pageSize });
    const started = Date.now();
    let thisRun = 0;
    // After the last page there is no cursor to go on from: that state is only written as complete.
    let resumable = true;
    let end: WalkEnd;
    try {
      for (;;) {
        const r = await walk.next();
        if (r.done) {
          end = r.value;
          break;
        }
        const b = r.value;
        await w.write(b.lines, b.count);
        thisRun += b.count;
        const maxTs: number | undefined = b.maxTimestamp === null ? st.maxTimestamp : Math.max(b.maxTimestamp, st.maxTimestamp ?? -Infinity);
        st = { ...st, count: st.count + b.count, lastMsgId: b.lastMsgId, cursor: b.cursor, watermark: b.watermark ?? st.watermark, maxTimestamp: maxTs };
        progress?.set(st.count);
        resumable = mode === 'stream' || b.cursor !== undefined;
        if (!resumable) continue;
        if (w.pending >= o.checkpointEvery || Date.now() - lastCheckpoint >= CHECKPOINT_MS) await checkpoint();
        if (abort.signal.aborted) throw new Interrupted('interrupted');
        if (o.maxRate) {
          const due = started + (thisRun / o.maxRate) * 1000 - Date.now();
          if (due > 0) await sleep(due, undefined, { signal: abort.signal }).catch(() => undefined);
        }
      }
    } catch (e) {
      // Whatever stopped the walk, the records written so far are kept for --resume.
      if (resumable && diskError(e, o.out) === null && w.pending > 0) await checkpoint().catch(() => undefined);
      throw e;
    } finally {
      await walk.return({ watermark: undefined }).catch(() => undefined);
    }

    const mark = await w.finish();
    const watermark = end.watermark ?? st.watermark;
    const timestamp = st.maxTimestamp ?? since?.timestamp;
    st = { ...st, complete: true, bytes: mark.bytes, writer: undefined, watermark, last: { watermark, timestamp, count: st.count, finishedAt: Date.now() } };
    writeState(statePath, st);
    progress?.stop(true);
    process.stdout.write(JSON.stringify({ out: o.out, format: o.format, count: st.count, complete: true, mode, since: since !== null, watermark }) + '\n');
    return EXIT.ok;
  } catch (e) {
    progress?.stop();
    const disk = diskError(e, o.out);
    if (disk) throw new CliError(disk.exitCode, `${disk.message}${durable > 0 ? `; ${resumeHint(durable, o.out)} once there is room` : ''}`);
    if (e instanceof Interrupted) {
      process.stderr.write(`chatvault export: interrupted; ${st ? resumeHint(durable, o.out) : 'nothing was written'}\n`);
      return EXIT.interrupted;
    }
    if (e instanceof CliError && e.exitCode === EXIT.unreachable && durable > 0) throw new CliError(e.exitCode, `${e.message}; ${resumeHint(durable, o.out)}`);
    throw e;
  } finally {
    await writer?.close().catch(() => undefined);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** Registers `chatvault export` (docs/cli.md). */
export function registerExport(program: Command): void {
  const cmd = program
    .command('export')
    .description('export chat messages of an app from chatvault or any Easemob-compatible server to JSONL, CSV or Parquet')
    .requiredOption('--url <url>', 'base URL of the server, e.g. http://127.0.0.1:5080 or https://a1.easemob.com')
    .requiredOption('--org <org>', 'organization name')
    .requiredOption('--app <app>', 'app name')
    .requiredOption('--client-id <id>', "the app's client_id")
    .option('--client-secret <secret>', "the app's client_secret (or env CHATVAULT_CLIENT_SECRET)")
    .option('--ql <ql>', 'which messages, in the Usergrid query language', '')
    .addOption(new Option('--format <format>', 'output format').choices(['jsonl', 'csv', 'parquet']).default('jsonl'))
    .option('--gzip', 'gzip the output (jsonl and csv)')
    .requiredOption('--out <file>', 'output file')
    .option('--state <file>', 'checkpoint file (default: OUT.chatvault-export.json)')
    .option('--resume', 'continue an interrupted export from its checkpoint')
    .option('--since-last', 'export only messages stored after the last complete run of this checkpoint')
    .option('--no-stream', 'treat the server as plain Easemob: page GET chatmessages even on chatvault')
    .option('--no-progress', 'no progress display on stderr')
    .option('--page-size <n>', 'page size of the paged walk', wholeNumber(1, 1000), 1000)
    .option('--checkpoint-every <n>', 'records between checkpoints (there is also one every 5 s)', wholeNumber(1, 10_000_000), 1_000_000)
    .option('--row-group-size <n>', 'rows per Parquet row group (a checkpoint also ends one)', wholeNumber(1, 1_000_000), 10_000)
    .option('--retries <n>', 'retries of a request that failed transiently', wholeNumber(0, 1000), 8)
    .option('--max-rate <n>', 'at most this many messages per second', wholeNumber(1, 100_000_000))
    .addOption(new Option('--retry-delay-ms <ms>', 'first back-off delay').argParser(wholeNumber(1, 600_000)).default(500).hideHelp());
  usageExits(cmd).action((opts: ExportOptions) => runCommand('export', () => runExport(opts)));
}
