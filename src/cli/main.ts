#!/usr/bin/env -S node --max-semi-space-size=64
// --max-semi-space-size=64 (MiB; Node's default is 16): a busy server allocates a short-lived
// object or two per frame, and a larger young generation collects them in fewer, cheaper
// scavenges (measured: realtime-json delivers about a tenth more per second). `npm start` passes
// the same flag; bench/harness.ts reads it from this line.
// The server's modules (Fastify, the stores) load only for the commands that run a server, so
// that `chatvault export` starts in a fraction of the time.
import { Command, Option } from 'commander';
import { ConfigError, loadConfig, settingDocs, settingsMarkdown } from '../config.js';
import type { prepare } from '../chatvault.js';
import { registerExport } from './export.js';
import { registerImport } from './import.js';
import { registerMigrate } from './migrate.js';
import { VERSION } from '../version.js';

const program = new Command();
program.name('chatvault').description('Easemob-compatible chat server built for getting chat records out').version(VERSION);

/** Turns the options commander parsed back into env-named values, so flags override the environment. */
function flagValues(opts: Record<string, unknown>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const s of settingDocs()) {
    const key = s.flag.replace(/^--/, '').replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    const v = opts[key];
    if (v !== undefined) out[s.env] = String(v);
  }
  return out;
}

function addSettingFlags(cmd: Command): Command {
  for (const s of settingDocs()) cmd.addOption(new Option(`${s.flag} <value>`, `${s.description} (env ${s.env}, default ${s.default})`));
  return cmd;
}

function fail(e: unknown): never {
  if (e instanceof ConfigError) {
    process.stderr.write(`chatvault: ${e.message}\n`);
    process.exit(2);
  }
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'EADDRINUSE') {
    process.stderr.write(`chatvault: ${err.message}: another process already listens there (set PORT or --port)\n`);
    process.exit(1);
  }
  process.stderr.write(`chatvault: ${err.message ?? String(e)}\n`);
  process.exit(1);
}

function printBox(lines: string[]): void {
  process.stdout.write(['', '  chatvault first start', ...lines.map((l) => `  ${l}`), ''].join('\n') + '\n');
}

addSettingFlags(program.command('serve').description('run the server (the default command)')).action(async (opts: Record<string, unknown>) => {
  try {
    const config = loadConfig(process.env, flagValues(opts));
    const { startChatvault } = await import('../chatvault.js');
    const cv = await startChatvault(config, printBox);
    cv.http.log.info({ url: cv.url, dataDir: config.dataDir }, 'chatvault listening');
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      cv.http.log.info({ signal }, 'shutting down');
      cv.close().then(() => process.exit(0), () => process.exit(1));
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  } catch (e) {
    fail(e);
  }
});

const appCmd = program.command('app').description('manage apps without HTTP');
function parseAppArg(arg: string): { org: string; app: string } {
  const m = /^([^/#]+)[/#]([^/#]+)$/.exec(arg);
  if (!m) fail(new Error(`expected org/app (or org#app), got '${arg}'`));
  return { org: m[1]!, app: m[2]! };
}

async function withServices<T>(opts: Record<string, unknown>, fn: (s: Awaited<ReturnType<typeof prepare>>) => Promise<T>): Promise<void> {
  try {
    const config = loadConfig(process.env, { ...flagValues(opts), CHATVAULT_DEMO: 'false' });
    config.logLevel = 'silent';
    const [{ prepare }, { closeServices }] = await Promise.all([import('../chatvault.js'), import('../services.js')]);
    const s = await prepare(config, (lines) => process.stderr.write(lines.join('\n') + '\n'));
    try {
      const out = await fn(s);
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    } finally {
      // Closing the bus sends the invalidations of the change (e.g. new credentials) to running nodes first.
      await closeServices(s);
    }
  } catch (e) {
    fail(e);
  }
}

addSettingFlags(appCmd.command('create <org/app>').description('create an app (and its org when missing); prints its credentials'))
  .option('--open-registration', 'let anyone register IM users without a token')
  .action(async (arg: string, opts: Record<string, unknown>) => {
    const { org, app } = parseAppArg(arg);
    await withServices(opts, async (s) => {
      const o = await s.tenants.ensureOrg(org);
      const created = await s.tenants.createApp(o, app, opts.openRegistration === true);
      return s.tenants.credentials(created);
    });
  });

addSettingFlags(appCmd.command('credentials <org/app>').description('print an app\'s credentials'))
  .option('--regenerate', 'issue new credentials; tokens of the old ones stop working')
  .action(async (arg: string, opts: Record<string, unknown>) => {
    const { org, app } = parseAppArg(arg);
    await withServices(opts, async (s) => {
      let a = await s.tenants.app(org, app, 'credentials');
      if (opts.regenerate === true) a = await s.tenants.regenerateCredentials(a);
      return s.tenants.credentials(a);
    });
  });

program.command('config').description('print the configuration settings')
  .option('--markdown', 'as the Markdown table of the README')
  .action((opts: { markdown?: boolean }) => {
    if (opts.markdown) process.stdout.write(settingsMarkdown() + '\n');
    else for (const s of settingDocs()) process.stdout.write(`${s.env.padEnd(20)} ${s.flag.padEnd(22)} ${s.default}\n`);
  });

registerExport(program);
registerImport(program);
registerMigrate(program);

const argv = process.argv.slice(2);
// `chatvault` alone, or with only flags, means `chatvault serve`.
if (argv.length === 0 || argv[0]!.startsWith('--') && !['--help', '--version', '-h', '-V'].includes(argv[0]!)) argv.unshift('serve');
program.parseAsync(['node', 'chatvault', ...argv]).catch(fail);
