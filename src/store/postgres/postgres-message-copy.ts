import pg from 'pg';
import type { PgParam } from './postgres-ql.js';

/**
 * Reading query results as raw bytes: `COPY (query) TO STDOUT (FORMAT binary)`.
 *
 * node-pg decodes every value of an ordinary result into a JavaScript string, so a page of
 * records (bytea) has to travel as hex or base64, which PostgreSQL encodes slowly and Node
 * decodes again: measured here, that was most of the cost of a bulk page. The CopyData messages
 * of COPY reach us as Buffers, and binary COPY sends a bytea as its bytes and a text as its
 * UTF-8: nothing is encoded, escaped or decoded on the way.
 *
 * COPY takes no parameters, so they are written into the statement as literals (below).
 */

/** One row of a binary COPY: each field's bytes, null for NULL. */
export type CopyRow = (Buffer | null)[];

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** Splits a binary COPY stream into rows of fields (views into `data`). */
export function parseBinaryCopy(data: Buffer): CopyRow[] {
  if (data.length < 19 || !data.subarray(0, 11).equals(SIGNATURE)) throw new Error('not a binary COPY stream');
  let at = 15 + 4 + data.readInt32BE(15);
  const rows: CopyRow[] = [];
  for (;;) {
    const n = data.readInt16BE(at);
    at += 2;
    if (n === -1) return rows;
    const row: CopyRow = [];
    for (let i = 0; i < n; i++) {
      const len = data.readInt32BE(at);
      at += 4;
      if (len === -1) row.push(null);
      else {
        row.push(data.subarray(at, at + len));
        at += len;
      }
    }
    rows.push(row);
  }
}

/** The node-pg "submittable" that runs one COPY ... TO STDOUT and collects its data. */
class CopyOut {
  private readonly chunks: Buffer[] = [];
  private error: Error | null = null;

  constructor(private readonly text: string, private readonly done: (err: Error | null, data: Buffer) => void) {}

  submit(connection: { query(text: string): void }): void {
    connection.query(this.text);
  }

  handleCopyData(msg: { chunk: Buffer }): void {
    // A view into node-pg's receive buffer, which it reuses: copy it out.
    this.chunks.push(Buffer.from(msg.chunk));
  }

  handleError(err: Error): void {
    this.error = err;
  }

  handleReadyForQuery(): void {
    this.done(this.error, this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks));
  }

  handleCopyInResponse(connection: { sendCopyFail(msg: string): void }): void {
    connection.sendCopyFail('chatvault reads only');
  }

  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
}

/** Runs `select` through a binary COPY on a pooled connection; resolves with its rows. */
export async function copyRows(pool: pg.Pool, select: string): Promise<CopyRow[]> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    const data = await new Promise<Buffer>((resolve, reject) => {
      const sub = new CopyOut(`COPY (${select}) TO STDOUT (FORMAT binary)`, (err, d) => (err ? reject(err) : resolve(d)));
      (client as unknown as { query(s: CopyOut): void }).query(sub);
    });
    return parseBinaryCopy(data);
  } catch (e) {
    // An error of the statement leaves the connection ready; a broken stream may not.
    if (!(e instanceof Error && 'code' in e)) broken = e instanceof Error ? e : new Error(String(e));
    throw e;
  } finally {
    client.release(broken);
  }
}

function literal(v: PgParam): string {
  if (v === null) return 'NULL';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return `'${v}'`;
  if (typeof v === 'number') return Number.isFinite(v) ? `'${v}'` : `'${v > 0 ? 'Infinity' : v < 0 ? '-Infinity' : 'NaN'}'`;
  if (Buffer.isBuffer(v)) return `'\\x${v.toString('hex')}'::bytea`;
  if (Array.isArray(v)) return `ARRAY[${v.map((s) => pg.escapeLiteral(s)).join(', ')}]::text[]`;
  return pg.escapeLiteral(v);
}

/**
 * A statement with its `$n` placeholders replaced by literals of the values (quoted, so the
 * casts that follow the placeholders still apply). Only for statements built by postgres-ql.ts,
 * whose text holds no `$` but its placeholders.
 */
export function inlineParams(text: string, values: PgParam[]): string {
  return text.replace(/\$(\d+)/g, (_m, i: string) => literal(values[Number(i) - 1]!));
}
