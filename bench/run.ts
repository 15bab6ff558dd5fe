import fs from 'node:fs';
import path from 'node:path';
import { machine, RESULTS, type ScenarioResult } from './harness.js';
import { exportCli } from './scenarios/export-cli.js';
import { postgresScenario } from './scenarios/postgres.js';
import { exportStream } from './scenarios/export-stream.js';
import { exportWalk } from './scenarios/export-walk.js';
import { sendMessages } from './scenarios/send-messages.js';
import { realtimeXmpp } from './scenarios/realtime-xmpp.js';
import { sqliteWriter } from './scenarios/sqlite-writer.js';

function numberFlag(name: string): number | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
}

function stringFlag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function realtimeFlags(): { users?: number; idle?: number; rate?: number; loadProcesses?: number } {
  return { users: numberFlag('--users'), idle: numberFlag('--idle'), rate: numberFlag('--rate'), loadProcesses: numberFlag('--load-processes') };
}

const SCENARIOS: Record<string, (seconds: number) => Promise<ScenarioResult>> = {
  'send-messages': sendMessages,
  'export-walk': (s) => exportWalk(s, { messages: numberFlag('--messages'), bigMessages: numberFlag('--big-messages') }),
  'export-cli': (s) => exportCli(s, { messages: numberFlag('--messages') }),
  postgres: (s) => postgresScenario(s, { messages: numberFlag('--messages') }),
  'realtime-xmpp': (s) => realtimeXmpp(s, { ...realtimeFlags(), protocol: stringFlag('--protocol') }),
  // Issue 8: the same scenario on the JSON protocol, with its own targets.
  'realtime-json': (s) => realtimeXmpp(s, {
    ...realtimeFlags(),
    protocol: 'json',
    scenario: 'realtime-json',
    label: 'JSON protocol chatvault.v1 over WebSocket',
    receiptNote: 'Every push is acknowledged with `delivered`, batched as chatvault/client does (up to 100 ids in one frame, at most 200 ms after the first).',
    targets: { deliveredPerSecond: 10_000, p99Ms: 50, pacedRate: 5000, perConnectionKB: 50, idleConnections: 10_000 },
  }),
  'sqlite-writer': (s) => sqliteWriter(s, { sync: !process.argv.includes('--no-sync') }),
  'export-stream': (s) => exportStream(s, { messages: numberFlag('--messages'), bigMessages: numberFlag('--big-messages'), pagedPerSecond: previous('export-walk') }),
};

/** The HTTP walk rate of an earlier scenario in this results folder, to compare against. */
function previous(name: string): number | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(RESULTS, `${name}.json`), 'utf8')) as { result?: { perSecond?: number } };
    return r.result?.perSecond;
  } catch {
    return undefined;
  }
}

/**
 * `npm run bench [-- scenario ...] [--seconds N] [--messages N] [--big-messages N]` (realtime-xmpp and
 * realtime-json also `--users N --idle N --rate N --load-processes N`, realtime-xmpp `--protocol xmpp`): runs the
 * scenarios (all by default), writes bench/results/<scenario>.json and bench/results/README.md.
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const seconds = numberFlag('--seconds') ?? 10;
  const names = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1]!.startsWith('--')));
  // --table-only rewrites the tables from the result files without running anything.
  const chosen = process.argv.includes('--table-only') ? [] : names.length > 0 ? names : Object.keys(SCENARIOS);
  fs.mkdirSync(RESULTS, { recursive: true });
  const at = new Date().toISOString();
  for (const name of chosen) {
    const fn = SCENARIOS[name];
    if (!fn) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
    process.stderr.write(`bench: ${name} (${seconds}s)...\n`);
    const r = await fn(seconds);
    const record = { ...r, at, machine: machine() };
    fs.writeFileSync(path.join(RESULTS, `${name}.json`), JSON.stringify(record, null, 2) + '\n');
    process.stdout.write(JSON.stringify(record) + '\n');
  }
  writeTable();
}

/** Rewrites bench/results/README.md from every result file. */
function writeTable(): void {
  const rows = fs
    .readdirSync(RESULTS)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(RESULTS, f), 'utf8')) as ScenarioResult & { at: string; machine: { cpus: number; node: string } });
  const lines = [
    '# Benchmark results',
    '',
    'Written by `npm run bench`; each scenario also has its JSON file here.',
    '',
    '| scenario | numbers | target | met | measured |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.scenario} | ${r.summary ?? ''} | ${r.target} | ${r.met ? 'yes' : 'no'} | ${r.at.slice(0, 10)}, ${r.machine.cpus} cores, Node ${r.machine.node} |`),
    '',
  ];
  fs.writeFileSync(path.join(RESULTS, 'README.md'), lines.join('\n'));
  // The project README shows the same table between its bench markers.
  const readme = path.resolve(RESULTS, '../../README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const table = lines.slice(4, -1).join('\n');
  const updated = text.replace(/<!-- bench:begin -->\n[\s\S]*?<!-- bench:end -->/, `<!-- bench:begin -->\n${table}\n<!-- bench:end -->`);
  if (updated !== text) fs.writeFileSync(readme, updated);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
