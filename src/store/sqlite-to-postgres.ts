import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { indexFields } from '../domain/messages.js';
import { FilesystemBlobStore } from '../files/blob-store.js';
import type { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { MessageRow } from './store.js';

/**
 * Copies a SQLite deployment (a data folder) into a PostgreSQL store: every table with its ids,
 * the messages with their seqs (so cursors, watermarks and `since` marks of exports stay valid),
 * and the chat files' bytes. Rows already in the target are left as they are, so a copy that was
 * interrupted, or one run again after the source got more data, finishes the job. At the end,
 * counts and a checksum of every table, and of all messages, are compared.
 */

/** Tables in an order that satisfies their foreign keys; `messages` and `meta` are handled apart. */
const TABLES = [
  'orgs', 'admins', 'org_admins', 'apps', 'users', 'contacts', 'user_blocks', 'chat_groups', 'group_members', 'group_blocks', 'chat_files',
  'deliveries', 'client_ids',
] as const;
type Table = (typeof TABLES)[number];

// Keys that identify a row of each table (its primary key).
const KEYS: Record<Table, string[]> = {
  orgs: ['id'], admins: ['id'], org_admins: ['org_id', 'admin_id'], apps: ['id'], users: ['id'], contacts: ['id'], user_blocks: ['id'],
  chat_groups: ['id'], group_members: ['id'], group_blocks: ['id'], chat_files: ['id'],
  deliveries: ['app_id', 'username', 'seq'], client_ids: ['app_id', 'sender', 'client_id', 'target'],
};

// Columns the source may change after a row was copied: a copy run again brings the new value.
const MUTABLE: Partial<Record<Table, string[]>> = { deliveries: ['delivered'] };

const BATCH = 2000;
const MESSAGE_BATCH = 5000;

export interface CopyProgress {
  /** What is being copied now. */
  phase: string;
  done: number;
  total: number;
}

export interface TableReport {
  table: string;
  source: number;
  target: number;
  copied: number;
  checksum: 'equal' | 'different';
}

export interface CopyReport {
  tables: TableReport[];
  files: { source: number; copied: number; missing: string[] };
  ok: boolean;
}

interface Column {
  name: string;
  type: string;
}

type Row = Record<string, unknown>;

/** What the target remembers of the copies into it (meta key `migrate_copy`). */
interface CopyRecord {
  state: 'copying' | 'done';
  source: string;
  /** Rows per table when the last copy finished. */
  counts?: Record<string, number>;
}

const RECORD_KEY = 'migrate_copy';

/** The target cannot take this copy; nothing was written. */
export class CopyRefused extends Error {}

/** A value of a SQLite row as the PostgreSQL column wants it. */
function toPg(v: unknown, c: Column): unknown {
  if (v === null || v === undefined) return null;
  if (c.type === 'boolean') return v === 1 || v === 1n || v === true;
  if (typeof v === 'bigint') return v.toString();
  return v;
}

/** A value read back from either side, in one comparable text form. */
function canonical(v: unknown, type: string): string {
  if (v === null || v === undefined) return '\u0000null';
  if (type === 'boolean') return v === true || v === 1 || v === 1n || v === 't' ? 'true' : 'false';
  if (type === 'json') return JSON.stringify(typeof v === 'string' ? JSON.parse(v) : v);
  if (Buffer.isBuffer(v)) return v.toString('hex');
  return String(v);
}

export class SqliteToPostgres {
  private src!: Database.Database;

  constructor(
    private readonly dataDir: string,
    private readonly target: PostgresStore,
    private readonly progress: (p: CopyProgress) => void = () => {},
  ) {}

  /** Copies what the target lacks, then verifies both sides. The target must be open. */
  async run(): Promise<CopyReport> {
    const file = path.join(this.dataDir, 'chatvault.db');
    if (!fs.existsSync(file)) throw new Error(`no chatvault data in ${this.dataDir} (missing chatvault.db)`);
    // Bring the source to this build's schema first (as a start of this version would).
    const upgraded = new SqliteStore(file);
    await upgraded.open();
    await upgraded.close();
    this.src = new Database(file, { readonly: true, fileMustExist: true });
    this.src.defaultSafeIntegers(true);
    try {
      const pool = this.target.sqlPool;
      await this.preflight(pool);
      const copied = new Map<string, number>();
      await this.copyMeta(pool);
      for (const t of TABLES) copied.set(t, await this.copyTable(pool, t));
      copied.set('messages', await this.copyMessages());
      const files = await this.copyFiles(pool);
      const tables: TableReport[] = [];
      for (const t of TABLES) tables.push(await this.verifyTable(pool, t, copied.get(t) ?? 0));
      tables.push(await this.verifyMessages(pool, copied.get('messages') ?? 0));
      const ok = tables.every((r) => r.source === r.target && r.checksum === 'equal') && files.missing.length === 0;
      if (ok) await this.setRecord(pool, { state: 'done', source: path.resolve(this.dataDir), counts: await this.targetCounts(pool) });
      return { tables, files, ok };
    } finally {
      this.src.close();
    }
  }

  private async targetCounts(pool: pg.Pool): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const t of [...TABLES, 'messages']) out[t] = Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n);
    return out;
  }

  private async setRecord(pool: pg.Pool, record: CopyRecord): Promise<void> {
    await pool.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [RECORD_KEY, JSON.stringify(record)]);
  }

  /**
   * A copy may be repeated (after an interruption, or to bring over what the source got since)
   * only while nothing but this copy writes the target: rows a server made there would collide
   * with the source's ids and seqs. The target remembers its last copy; it is refused when it
   * holds data of its own, or changed since that copy finished.
   */
  private async preflight(pool: pg.Pool): Promise<void> {
    const r = await pool.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [RECORD_KEY]);
    const record = r.rows[0] ? (JSON.parse(r.rows[0].value) as CopyRecord) : null;
    const counts = await this.targetCounts(pool);
    if (!record) {
      const held = Object.entries(counts).filter(([, n]) => n > 0).map(([t, n]) => `${t}: ${n}`);
      if (held.length > 0) throw new CopyRefused(`the target database already holds data (${held.join(', ')}) that no copy brought: copy into an empty database or schema`);
    } else if (record.state === 'done') {
      const changed = Object.entries(counts).filter(([t, n]) => record.counts?.[t] !== n).map(([t, n]) => `${t}: ${record.counts?.[t] ?? 0} → ${n}`);
      if (changed.length > 0) {
        throw new CopyRefused(`the target was written to since the last copy finished (${changed.join(', ')}): it is in use, and copying again would mix two histories`);
      }
    }
    await this.setRecord(pool, { state: 'copying', source: path.resolve(this.dataDir) });
  }

  private async columns(pool: pg.Pool, table: string): Promise<Column[]> {
    const r = await pool.query<{ column_name: string; data_type: string }>(
      'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position',
      [table],
    );
    return r.rows.map((x) => ({ name: x.column_name, type: x.data_type }));
  }

  // The signing key above all: tokens, cursors and archive links of the old server stay valid.
  private async copyMeta(pool: pg.Pool): Promise<void> {
    const rows = this.src.prepare(`SELECT key, value FROM meta WHERE key NOT IN ('node_seq', '${RECORD_KEY}')`).all() as { key: string; value: string }[];
    for (const r of rows) {
      await pool.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [r.key, r.value]);
    }
  }

  private async copyTable(pool: pg.Pool, table: Table): Promise<number> {
    const cols = await this.columns(pool, table);
    const names = cols.map((c) => c.name);
    const total = Number((this.src.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: bigint }).n);
    const key = KEYS[table];
    const order = key.join(', ');
    const identity = key.length === 1 && key[0] === 'id';
    const mutable = MUTABLE[table];
    const onConflict = mutable
      ? `ON CONFLICT (${order}) DO UPDATE SET ${mutable.map((c) => `${c} = excluded.${c}`).join(', ')} WHERE (${mutable.map((c) => `${table}.${c}`).join(', ')}) IS DISTINCT FROM (${mutable.map((c) => `excluded.${c}`).join(', ')})`
      : 'ON CONFLICT DO NOTHING';
    let copied = 0;
    let done = 0;
    let after: unknown[] | null = null;
    for (;;) {
      const where: string = after ? `WHERE (${order}) > (${key.map(() => '?').join(', ')})` : '';
      const rows = this.src.prepare(`SELECT ${names.join(', ')} FROM ${table} ${where} ORDER BY ${order} LIMIT ${BATCH}`).all(...(after ?? [])) as Row[];
      if (rows.length === 0) break;
      const params: unknown[] = [];
      const tuples = rows.map((r) => `(${cols.map((c) => {
        params.push(toPg(r[c.name], c));
        return `$${params.length}`;
      }).join(', ')})`);
      const res = await pool.query(
        `INSERT INTO ${table} (${names.join(', ')}) ${identity ? 'OVERRIDING SYSTEM VALUE ' : ''}VALUES ${tuples.join(', ')} ${onConflict}`,
        params,
      );
      copied += res.rowCount ?? 0;
      done += rows.length;
      this.progress({ phase: table, done, total });
      const last = rows[rows.length - 1]!;
      after = key.map((k) => last[k]);
    }
    if (identity) {
      // New rows made on PostgreSQL later must not take the ids that came across.
      await pool.query(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), GREATEST((SELECT max(id) FROM ${table}), 1))`);
    }
    return copied;
  }

  private async copyMessages(): Promise<number> {
    const total = Number((this.src.prepare('SELECT count(*) AS n FROM messages').get() as { n: bigint }).n);
    const page = this.src.prepare(
      'SELECT seq, app_id, uuid, msg_id, timestamp, created, from_user, to_id, chat_type, body_type, lat, lng, entity FROM messages WHERE seq > ? ORDER BY seq LIMIT ?',
    );
    let after = 0n;
    let done = 0;
    let copied = 0;
    for (;;) {
      const rows = page.all(after, MESSAGE_BATCH) as Row[];
      if (rows.length === 0) break;
      const batch: MessageRow[] = rows.map((r) => {
        const entity = r.entity as Buffer;
        // SQLite keeps no copy of the text (its index is contentless): it comes from the record.
        const bodies = (JSON.parse(entity.toString('utf8')) as { payload?: { bodies?: unknown } }).payload?.bodies;
        const { text } = indexFields(Array.isArray(bodies) ? (bodies as Parameters<typeof indexFields>[0]) : []);
        return {
          seq: r.seq as bigint, appId: Number(r.app_id), uuid: String(r.uuid), msgId: String(r.msg_id), timestamp: Number(r.timestamp),
          created: Number(r.created), from: String(r.from_user), to: String(r.to_id), chatType: String(r.chat_type) as MessageRow['chatType'],
          bodyType: r.body_type === null ? null : String(r.body_type), text,
          lat: r.lat === null ? null : Number(r.lat), lng: r.lng === null ? null : Number(r.lng), entity,
        };
      });
      copied += await this.target.copyMessages(batch);
      done += rows.length;
      after = rows[rows.length - 1]!.seq as bigint;
      this.progress({ phase: 'messages', done, total });
    }
    return copied;
  }

  private async copyFiles(pool: pg.Pool): Promise<CopyReport['files']> {
    const fsBlobs = new FilesystemBlobStore(path.join(this.dataDir, 'files'));
    const pgBlobs = this.target.sharedBlobStore();
    const keys = (this.src.prepare('SELECT blob_key FROM chat_files ORDER BY id').all() as { blob_key: string }[]).map((r) => r.blob_key);
    const have = new Set((await pool.query<{ key: string }>('SELECT key FROM blobs')).rows.map((r) => r.key));
    const missing: string[] = [];
    let copied = 0;
    let done = 0;
    for (const key of keys) {
      done++;
      if (have.has(key)) continue;
      const blob = await fsBlobs.get(key);
      if (!blob) {
        missing.push(key);
        continue;
      }
      await pgBlobs.put(key, blob.stream);
      copied++;
      this.progress({ phase: 'files', done, total: keys.length });
    }
    return { source: keys.length, copied, missing };
  }

  private async verifyTable(pool: pg.Pool, table: Table, copied: number): Promise<TableReport> {
    const cols = await this.columns(pool, table);
    const order = KEYS[table].join(', ');
    const digest = (rows: Iterable<Row>) => {
      const h = createHash('sha256');
      let n = 0;
      for (const r of rows) {
        n++;
        h.update(cols.map((c) => canonical(r[c.name], c.type)).join('\u0001') + '\u0002');
      }
      return { n, sum: h.digest('hex') };
    };
    const names = cols.map((c) => c.name).join(', ');
    const s = digest(this.src.prepare(`SELECT ${names} FROM ${table} ORDER BY ${order}`).iterate() as Iterable<Row>);
    const t = digest((await pool.query(`SELECT ${names} FROM ${table} ORDER BY ${order}`)).rows as Row[]);
    return { table, source: s.n, target: t.n, copied, checksum: s.sum === t.sum ? 'equal' : 'different' };
  }

  // Every message's seq and record bytes, in seq order, on both sides.
  private async verifyMessages(pool: pg.Pool, copied: number): Promise<TableReport> {
    const sh = createHash('sha256');
    let sn = 0;
    for (const r of this.src.prepare('SELECT seq, entity FROM messages ORDER BY seq').iterate() as Iterable<{ seq: bigint; entity: Buffer }>) {
      sn++;
      sh.update(`${r.seq}:`).update(r.entity).update('\n');
    }
    const th = createHash('sha256');
    let tn = 0;
    let after = '0';
    for (;;) {
      // (Ordered by the column, not by its text: `ORDER BY s` would sort '10' before '9'.)
      const r = await pool.query<{ s: string; entity: Buffer }>('SELECT m.seq::text AS s, m.entity FROM messages m WHERE m.seq > $1 ORDER BY m.seq LIMIT 10000', [after]);
      if (r.rows.length === 0) break;
      for (const row of r.rows) {
        tn++;
        th.update(`${row.s}:`).update(row.entity).update('\n');
      }
      after = r.rows[r.rows.length - 1]!.s;
    }
    return { table: 'messages', source: sn, target: tn, copied, checksum: sh.digest('hex') === th.digest('hex') ? 'equal' : 'different' };
  }
}
