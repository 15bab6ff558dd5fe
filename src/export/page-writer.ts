import type { Selection } from '../ql/ast.js';
import type { AppRow, MessageHit } from '../store/store.js';

const COMMA = Buffer.from(',');

/** The parts of a chatmessages response that are not the messages themselves. */
export interface PageFrame {
  action: string;
  app: AppRow;
  params: Record<string, string[]>;
  uri: string;
  startedAt: number;
  cursor: string | undefined;
  watermark: string;
}

/**
 * Writes a page of `GET /chatmessages` as bytes. The stored records are already UTF-8 JSON, so a
 * page is the envelope's head, the records spliced with commas, and its tail: no per-message
 * JSON building or string conversion on the hot path.
 */
export function writeEntitiesPage(f: PageFrame, hits: MessageHit[]): Buffer {
  const parts: Buffer[] = new Array<Buffer>(hits.length * 2 + 1);
  parts[0] = head(f);
  let n = 1;
  for (let i = 0; i < hits.length; i++) {
    if (i > 0) parts[n++] = COMMA;
    parts[n++] = hits[i]!.entity;
  }
  parts.length = n;
  parts.push(Buffer.from(']' + tail(f, hits.length)));
  return Buffer.concat(parts);
}

/** Writes a page whose records arrive already joined by commas (the spliced read path). */
export function writeEntitiesBody(f: PageFrame, count: number, body: Buffer): Buffer {
  return Buffer.concat([head(f), body, Buffer.from(']' + tail(f, count))]);
}

function head(f: PageFrame): Buffer {
  return Buffer.from(
    `{"action":${JSON.stringify(f.action)},"application":"${f.app.uuid}","params":${JSON.stringify(f.params)},` +
      `"path":"/chatmessages","uri":${JSON.stringify(f.uri)},"entities":[`,
  );
}

function tail(f: PageFrame, count: number): string {
  const now = Date.now();
  let t = `,"timestamp":${now},"duration":${Math.max(0, now - f.startedAt)},"organization":${JSON.stringify(f.app.orgName)},` +
    `"applicationName":${JSON.stringify(f.app.name)}`;
  if (f.cursor !== undefined) t += `,"cursor":"${f.cursor}"`;
  return t + `,"count":${count},"watermark":"${f.watermark}"}`;
}

/** Values along a dotted path of a record; arrays on the way are walked. */
function valuesAt(record: unknown, path: string[]): unknown[] {
  let cur: unknown[] = [record];
  for (const seg of path) {
    const next: unknown[] = [];
    for (const v of cur) {
      const items = Array.isArray(v) ? v : [v];
      for (const it of items) {
        if (typeof it !== 'object' || it === null || Array.isArray(it)) continue;
        const key = Object.keys(it).find((k) => k.toLowerCase() === seg);
        if (key !== undefined) next.push((it as Record<string, unknown>)[key]);
      }
    }
    cur = next;
  }
  return cur.flatMap((v) => (Array.isArray(v) ? v : [v]));
}

/** A selected field of a record: its one value, an array when a path finds several, null when none. */
export function project(record: unknown, field: string): unknown {
  const vals = valuesAt(record, field.toLowerCase().split('.'));
  if (vals.length === 0) return null;
  return vals.length === 1 ? vals[0] : vals;
}

/** Writes a projection page (`select a, b` or `select {x: a}`): `list` instead of `entities`. */
export function writeListPage(f: PageFrame, hits: MessageHit[], select: Exclude<Selection, { kind: 'all' }>): Buffer {
  const list = hits.map((h) => {
    const rec = JSON.parse(h.entity.toString('utf8')) as unknown;
    if (select.kind === 'fields') return select.fields.map((field) => project(rec, field));
    const obj: Record<string, unknown> = {};
    for (const { alias, field } of select.pairs) obj[alias] = project(rec, field);
    return obj;
  });
  const head =
    `{"action":${JSON.stringify(f.action)},"application":"${f.app.uuid}","params":${JSON.stringify(f.params)},` +
    `"path":"/chatmessages","uri":${JSON.stringify(f.uri)},"list":${JSON.stringify(list)}`;
  return Buffer.from(head + tail(f, list.length));
}
