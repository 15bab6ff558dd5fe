import fs from 'node:fs';
import readline from 'node:readline';
import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Command } from 'commander';
import type { prepare } from '../chatvault.js';
import { ConfigError, loadConfig } from '../config.js';
import { MessageImporter } from '../export/importer.js';
import type { AppRow } from '../store/store.js';
import { CliError, diskError, EXIT, runCommand, usageExits, wholeNumber } from './cli-error.js';
import { Progress } from './progress.js';

interface ImportOptions {
  dataDir?: string;
  org: string;
  app: string;
  createApp?: boolean;
  batchSize: number;
  progress: boolean;
}

type Services = Awaited<ReturnType<typeof prepare>>;

/** True when a file starts with the gzip magic bytes (whatever its name says). */
function isGzip(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(2);
    return fs.readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

/** The lines of a plain or gzip file; `onBytes` is told how many (compressed) bytes were read. */
function lines(file: string, onBytes: (n: number) => void): readline.Interface {
  const raw = fs.createReadStream(file);
  raw.on('data', (c) => onBytes(c.length));
  const input: Readable = isGzip(file) ? pipeline(raw, createGunzip(), () => undefined) : raw;
  return readline.createInterface({ input, crlfDelay: Infinity });
}

async function targetApp(s: Services, o: ImportOptions, dataDir: string): Promise<AppRow> {
  const app = await s.store.getApp(o.org, o.app);
  if (app) return app;
  if (!o.createApp) throw new CliError(EXIT.usage, `no app ${o.org}/${o.app} in ${dataDir} (create it with: chatvault app create ${o.org}/${o.app}, or pass --create-app)`);
  const org = await s.tenants.ensureOrg(o.org);
  return s.tenants.createApp(org, o.app);
}

async function runImport(files: string[], o: ImportOptions): Promise<number> {
  for (const f of files) {
    let st: fs.Stats;
    try {
      st = fs.statSync(f);
      fs.accessSync(f, fs.constants.R_OK);
    } catch (e) {
      throw new CliError(EXIT.usage, `cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!st.isFile()) throw new CliError(EXIT.usage, `${f} is not a file`);
  }
  let config;
  try {
    config = loadConfig(process.env, { DATA_DIR: o.dataDir, CHATVAULT_DEMO: 'false' });
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(EXIT.usage, e.message);
    throw e;
  }
  config.logLevel = 'silent';
  let s: Services;
  const { closeServices } = await import('../services.js');
  try {
    const { prepare } = await import('../chatvault.js');
    s = await prepare(config, (l) => process.stderr.write(l.join('\n') + '\n'));
  } catch (e) {
    throw diskError(e, config.dataDir) ?? e;
  }
  try {
    const app = await targetApp(s, o, config.dataDir);
    const importer = new MessageImporter(s.store, app, o.batchSize);
    const total = files.reduce((n, f) => n + fs.statSync(f).size, 0);
    const progress = o.progress ? new Progress({ label: 'import' }) : null;
    let bytes = 0;
    try {
      for (const file of files) {
        let lineNo = 0;
        try {
          for await (const line of lines(file, (n) => (bytes += n))) {
            lineNo++;
            await importer.line(line, file, lineNo);
            progress?.set(importer.counts.read);
            progress?.setFraction(total > 0 ? bytes / total : null);
          }
        } catch (e) {
          if (diskError(e, config.dataDir)) throw e;
          // A cut or corrupt file: what came before is imported, the rest is reported.
          importer.unreadable(file, lineNo + 1, (e as Error).message);
        }
      }
      await importer.flush();
    } finally {
      progress?.stop(true);
    }
    const { read, imported, duplicates, invalid } = importer.counts;
    const report = {
      org: app.orgName, app: app.name, files, read, imported,
      skipped_duplicates: duplicates, skipped_invalid: invalid, invalid_lines: importer.invalidLines,
    };
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    return EXIT.ok;
  } catch (e) {
    throw diskError(e, config.dataDir) ?? e;
  } finally {
    await closeServices(s);
  }
}

/** Registers `chatvault import` (docs/cli.md). */
export function registerImport(program: Command): void {
  const cmd = program
    .command('import')
    .description('load Easemob hourly archives (.gz) and chatvault JSONL exports into an app, keeping msg_ids and timestamps')
    .argument('<files...>', 'archive or JSONL files, plain or gzip')
    .option('--data-dir <dir>', 'data folder of the server (env DATA_DIR, default ./data)')
    .requiredOption('--org <org>', 'organization name')
    .requiredOption('--app <app>', 'app name')
    .option('--create-app', 'create the organization and app when they do not exist')
    .option('--batch-size <n>', 'messages stored per transaction', wholeNumber(1, 100_000), 2000)
    .option('--no-progress', 'no progress display on stderr');
  usageExits(cmd).action((files: string[], opts: ImportOptions) => runCommand('import', () => runImport(files, opts)));
}
