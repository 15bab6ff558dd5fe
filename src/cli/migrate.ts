import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../config.js';
import { CliError, EXIT, runCommand, usageExits } from './cli-error.js';
import { Progress } from './progress.js';

interface MigrateOptions {
  from?: string;
  to?: string;
  dataDir?: string;
  databaseUrl?: string;
  progress: boolean;
}

function config(env: Record<string, string | undefined>) {
  try {
    return loadConfig({ ...process.env, ...env, CHATVAULT_DEMO: 'false', LOG_LEVEL: 'silent' });
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(EXIT.usage, e.message);
    throw e;
  }
}

/** `chatvault migrate`: brings the configured store's schema to this build's version. */
async function migrateSchema(o: MigrateOptions): Promise<number> {
  const cfg = config({ ...(o.dataDir ? { DATA_DIR: o.dataDir } : {}), ...(o.databaseUrl ? { DATABASE_URL: o.databaseUrl } : {}) });
  const { openStore } = await import('../chatvault.js');
  const store = openStore(cfg);
  await store.open();
  await store.close();
  const where = cfg.databaseUrl ? redact(cfg.databaseUrl) : path.join(cfg.dataDir, 'chatvault.db');
  process.stdout.write(JSON.stringify({ store: store.kind, where, migrated: true }) + '\n');
  return EXIT.ok;
}

/** A database URL without its password, for messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(database URL)';
  }
}

/** `chatvault migrate --from ./data --to postgres://...`: copies a SQLite deployment into PostgreSQL. */
async function copyDeployment(o: MigrateOptions): Promise<number> {
  if (!o.from || !o.to) throw new CliError(EXIT.usage, '--from and --to go together: --from ./data --to postgres://...');
  const cfg = config({ DATA_DIR: o.from, DATABASE_URL: o.to });
  if (!cfg.databaseUrl) throw new CliError(EXIT.usage, '--to must be a postgres:// URL');
  const { PostgresStore } = await import('../store/postgres/postgres-store.js');
  const { CopyRefused, SqliteToPostgres } = await import('../store/sqlite-to-postgres.js');
  const target = new PostgresStore(cfg.databaseUrl, { poolMax: 4 });
  try {
    await target.open();
  } catch (e) {
    throw new CliError(EXIT.unreachable, `cannot open ${redact(cfg.databaseUrl)}: ${(e as Error).message}`);
  }
  const progress = o.progress ? new Progress({ label: 'migrate' }) : null;
  let phase = '';
  try {
    const report = await new SqliteToPostgres(cfg.dataDir, target, (p) => {
      if (!progress) return;
      if (p.phase !== phase) {
        phase = p.phase;
        progress.setNote(p.phase);
      }
      progress.set(p.done);
      progress.setFraction(p.total > 0 ? p.done / p.total : null);
    }).run();
    progress?.stop(true);
    for (const t of report.tables) {
      process.stderr.write(`chatvault migrate: ${t.table.padEnd(14)} ${String(t.source).padStart(10)} in SQLite, ${String(t.target).padStart(10)} in PostgreSQL (${t.copied} copied now), checksum ${t.checksum}\n`);
    }
    process.stderr.write(`chatvault migrate: chat files: ${report.files.source}, ${report.files.copied} copied now${report.files.missing.length > 0 ? `; missing in ${o.from}/files: ${report.files.missing.join(', ')}` : ''}\n`);
    process.stdout.write(JSON.stringify({ from: cfg.dataDir, to: redact(cfg.databaseUrl), ok: report.ok, tables: report.tables, files: report.files }) + '\n');
    if (!report.ok) throw new CliError(EXIT.failed, 'the copy does not match its source (see the table above); rows already in PostgreSQL that SQLite lacks, or a source changed while copying, cause this');
    return EXIT.ok;
  } catch (e) {
    progress?.stop();
    if (e instanceof CopyRefused) throw new CliError(EXIT.failed, `nothing copied: ${e.message}`);
    throw e;
  } finally {
    await target.close();
  }
}

/** Registers `chatvault migrate` (docs/scaling.md). */
export function registerMigrate(program: Command): void {
  const cmd = program
    .command('migrate')
    .description('bring the store\'s schema to this version; with --from/--to, copy a SQLite data folder into PostgreSQL')
    .option('--data-dir <dir>', 'the SQLite data folder to upgrade (env DATA_DIR)')
    .option('--database-url <url>', 'the PostgreSQL database to upgrade (env DATABASE_URL)')
    .option('--from <dir>', 'copy from this SQLite data folder ...')
    .option('--to <url>', '... into this PostgreSQL database (postgres://...); safe to run again')
    .option('--no-progress', 'no progress display on stderr');
  usageExits(cmd).action((opts: MigrateOptions) => runCommand('migrate', () => (opts.from || opts.to ? copyDeployment(opts) : migrateSchema(opts))));
}
