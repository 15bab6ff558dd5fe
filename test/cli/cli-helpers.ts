import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { buildMessage, type ChatType } from '../../src/domain/messages.js';
import type { AppRow, Store } from '../../src/store/store.js';
import { CLI, type Api } from '../helpers.js';

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the built CLI as a child process. */
export function spawnCli(args: string[], env: Record<string, string> = {}): { proc: ChildProcess; done: Promise<CliRun> } {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'silent', ...env } });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d) => (stdout += d));
  proc.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliRun>((resolve) => proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { proc, done };
}

/** Runs the built CLI to its end. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return spawnCli(args, env).done;
}

/** Waits until `check` is true, polling. */
export async function waitFor(check: () => boolean, what: string, limitMs = 60_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every record of a JSONL file (an export_end line included, if any). */
export function readJsonl(file: string | Buffer): Record<string, unknown>[] {
  const text = typeof file === 'string' ? fs.readFileSync(file, 'utf8') : file.toString('utf8');
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The whole paged walk of a query, as the entities in page order. */
export async function pagedWalk(api: Api, org: string, app: string, ql = ''): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  let cursor: string | undefined;
  do {
    const p = await api.get(`/${org}/${app}/chatmessages?limit=1000&ql=${encodeURIComponent(ql)}${cursor ? `&cursor=${cursor}` : ''}`);
    if (p.status !== 200) throw new Error(`page failed: ${p.text}`);
    out.push(...(p.body.entities as Record<string, unknown>[]));
    cursor = p.body.cursor;
  } while (cursor);
  return out;
}

/** Records by msg_id. */
export function byId(recs: Record<string, unknown>[]): Map<string, Record<string, unknown>> {
  return new Map(recs.map((r) => [String(r.msg_id), r]));
}

const T0 = Date.UTC(2025, 5, 1);

/**
 * Stores `n` messages of every body type (text with commas, quotes and newlines, images, audio,
 * locations, files, custom) straight into the store, timestamps in the past and not in insertion order.
 */
export async function seedMessages(store: Store, app: AppRow, n: number, idBase = 7_000_000_000): Promise<void> {
  const chatTypes: ChatType[] = ['chat', 'groupchat', 'chatroom'];
  const rows = Array.from({ length: n }, (_, i) => {
    const kind = i % 6;
    const body =
      kind === 0 ? { type: 'txt', msg: `line, with "quotes"\nand 中文 ${i}` }
      : kind === 1 ? { type: 'img', url: `https://files.example/${i}.png`, filename: `${i}.png`, secret: 's', size: { width: 10, height: 20 } }
      : kind === 2 ? { type: 'audio', url: `https://files.example/${i}.amr`, filename: `${i}.amr`, length: i % 60 }
      : kind === 3 ? { type: 'loc', addr: `street ${i}`, lat: 39.9 + i / 1e5, lng: 116.3 - i / 1e5 }
      : kind === 4 ? { type: 'file', url: `https://files.example/${i}.md`, filename: `${i}.md` }
      : { type: 'custom', customEvent: 'gift', customExts: { n: String(i) } };
    return buildMessage(app.id, {
      from: `u${i % 7}`, to: `u${(i + 1) % 7}`, chatType: chatTypes[i % 3]!, bodies: [body],
      ext: i % 4 === 0 ? { n: i, nested: { s: `é"${i}` } } : undefined,
      timestamp: T0 + ((i * 7919) % n) * 1000, msgId: String(idBase + i),
    });
  });
  for (let i = 0; i < rows.length; i += 2000) await store.insertMessages(rows.slice(i, i + 2000));
}
