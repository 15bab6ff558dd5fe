import { buildMessage, type ChatType, type MessageSpec } from '../domain/messages.js';
import type { AppRow, NewMessage, Store } from '../store/store.js';
import { UUID_RE } from '../util/ids.js';

type Json = Record<string, unknown>;

/** What one line of an import file is: a message, a line to pass over, or an invalid line and why. */
export type ImportLine = { kind: 'message'; spec: MessageSpec } | { kind: 'skip' } | { kind: 'invalid'; reason: string };

/** An invalid line of an import, where it is and why it was passed over. */
export interface InvalidLine {
  file: string;
  line: number;
  reason: string;
}

export interface ImportCounts {
  /** Message lines read (blank lines and export end markers are not messages). */
  read: number;
  imported: number;
  duplicates: number;
  invalid: number;
}

const CHAT_TYPES = new Set<string>(['chat', 'groupchat', 'chatroom']);
const MAX_INVALID_SHOWN = 20;
const MAX_ID = 256;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(v: unknown): string | null {
  if (typeof v === 'string') return v;
  return typeof v === 'number' && Number.isFinite(v) ? String(v) : null;
}

function epochMs(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/**
 * Reads one line of an import file. Two shapes are messages: the Easemob hourly-archive record
 * (spec §5.2: msg_id, timestamp, direction, from, to, chat_type, payload with from/to) and
 * chatvault's export record (the paged entity: uuid, type, created, ..., payload). The original
 * msg_id, timestamp and (for chatvault records) uuid and created time are kept.
 */
export function parseImportLine(line: string): ImportLine {
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch {
    return { kind: 'invalid', reason: 'not JSON' };
  }
  if (!isObject(rec)) return { kind: 'invalid', reason: 'not a JSON object' };
  if (rec.type === 'export_end') return { kind: 'skip' };
  const msgId = text(rec.msg_id);
  if (msgId === null || msgId === '' || msgId.length > MAX_ID) return { kind: 'invalid', reason: 'msg_id is missing or not a string' };
  const payload = rec.payload;
  if (!isObject(payload)) return { kind: 'invalid', reason: 'payload is missing or not an object' };
  const bodies = payload.bodies;
  if (!Array.isArray(bodies) || bodies.length === 0 || !bodies.every((b) => isObject(b) && typeof b.type === 'string')) {
    return { kind: 'invalid', reason: 'payload.bodies must be a non-empty array of bodies with a type' };
  }
  if (payload.ext !== undefined && !isObject(payload.ext)) return { kind: 'invalid', reason: 'payload.ext must be an object' };
  const from = text(rec.from ?? payload.from);
  const to = text(rec.to ?? payload.to);
  if (!from || !to) return { kind: 'invalid', reason: 'from or to is missing' };
  const chatType = typeof rec.chat_type === 'string' ? rec.chat_type.toLowerCase() : '';
  if (!CHAT_TYPES.has(chatType)) return { kind: 'invalid', reason: `chat_type must be chat, groupchat or chatroom, not ${JSON.stringify(rec.chat_type ?? null)}` };
  const timestamp = epochMs(rec.timestamp);
  if (timestamp === null) return { kind: 'invalid', reason: 'timestamp is missing or not epoch milliseconds' };
  const created = epochMs(rec.created) ?? undefined;
  const uuid = typeof rec.uuid === 'string' && UUID_RE.test(rec.uuid) ? rec.uuid.toLowerCase() : undefined;
  return {
    kind: 'message',
    spec: { msgId, from, to, chatType: chatType as ChatType, bodies: bodies as Json[], ext: payload.ext as Json | undefined, timestamp, created, uuid },
  };
}

// msg_id is unique per app without regard to ASCII case (SQLite NOCASE).
function idKey(id: string): string {
  return id.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * Loads messages into an app through the store, in batches. Idempotent: a message whose msg_id
 * the app already has (or that came earlier in the same import) is counted as a duplicate and
 * left alone, so importing a file twice stores each message once.
 */
export class MessageImporter {
  readonly counts: ImportCounts = { read: 0, imported: 0, duplicates: 0, invalid: 0 };
  /** The first invalid lines, for the report. */
  readonly invalidLines: InvalidLine[] = [];
  private batch: NewMessage[] = [];
  private readonly inBatch = new Set<string>();

  constructor(private readonly store: Store, private readonly app: AppRow, private readonly batchSize = 2000) {}

  /** Takes one line of a file. */
  async line(textLine: string, file: string, lineNo: number): Promise<void> {
    if (textLine.trim() === '') return;
    const parsed = parseImportLine(textLine);
    if (parsed.kind === 'skip') return;
    this.counts.read++;
    if (parsed.kind === 'invalid') return this.invalid(file, lineNo, parsed.reason);
    await this.add(parsed.spec);
  }

  /** Records the unreadable rest of a file (cut or corrupt) as one invalid line. */
  unreadable(file: string, line: number, reason: string): void {
    this.counts.read++;
    this.invalid(file, line, `file unreadable from here: ${reason}`);
  }

  private invalid(file: string, line: number, reason: string): void {
    this.counts.invalid++;
    if (this.invalidLines.length < MAX_INVALID_SHOWN) this.invalidLines.push({ file, line, reason });
  }

  private async add(spec: MessageSpec): Promise<void> {
    const key = idKey(spec.msgId);
    if (this.inBatch.has(key) || (await this.store.messageSeq(this.app.id, spec.msgId)) !== null) {
      this.counts.duplicates++;
      return;
    }
    this.inBatch.add(key);
    this.batch.push(buildMessage(this.app.id, spec));
    if (this.batch.length >= this.batchSize) await this.flush();
  }

  /** Stores what is buffered. */
  async flush(): Promise<void> {
    const rows = this.batch;
    this.batch = [];
    this.inBatch.clear();
    if (rows.length === 0) return;
    try {
      await this.store.insertMessages(rows);
      this.counts.imported += rows.length;
    } catch {
      // Someone else (a running server, a parallel import) stored one of them meanwhile: go one by one.
      for (const r of rows) {
        if ((await this.store.messageSeq(this.app.id, r.msgId)) !== null) {
          this.counts.duplicates++;
          continue;
        }
        await this.store.insertMessages([r]);
        this.counts.imported++;
      }
    }
  }
}
