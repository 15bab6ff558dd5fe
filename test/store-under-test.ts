import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStore } from '../src/chatvault.js';
import { loadConfig } from '../src/config.js';
import type { Store } from '../src/store/store.js';

/**
 * Which store the suite runs against: SQLite files (the default) or PostgreSQL when
 * CHATVAULT_TEST_STORE=postgres (scripts/run-tests.mjs runs the suites both ways).
 */
export const TEST_STORE: 'sqlite' | 'postgres' = process.env.CHATVAULT_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';

/** The PostgreSQL the tests may use. */
export const PG_TEST_URL = process.env.DATABASE_URL_TEST || 'postgres://postgres@127.0.0.1:5432/test';

// Every schema of one test run starts with this prefix, so the runner can drop them all at the end.
const RUN = (process.env.CHATVAULT_TEST_RUN || `p${process.pid}`).replace(/[^a-z0-9_]/gi, '').toLowerCase();

/** The schema name prefix of this test run. */
export const PG_SCHEMA_PREFIX = `cvt_${RUN}_`;

/** A database URL of `base` that keeps chatvault in schema `schema`. */
export function withSchema(base: string, schema: string): string {
  const u = new URL(base);
  u.searchParams.set('schema', schema);
  return u.toString();
}

/**
 * The PostgreSQL URL of a test data folder: one schema per folder, so a server restarted on the
 * same folder finds its data again and two servers on different folders never see each other's.
 */
export function pgUrlFor(dataDir: string): string {
  const h = createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 12);
  return withSchema(PG_TEST_URL, `${PG_SCHEMA_PREFIX}${h}`);
}

/** The PostgreSQL schema of a test data folder (the one pgUrlFor names). */
export function pgSchemaFor(dataDir: string): string {
  return new URL(pgUrlFor(dataDir)).searchParams.get('schema')!;
}

/** Settings a test server on `dataDir` needs to use the store under test. */
export function storeEnv(dataDir: string): Record<string, string> {
  // A small pool: a test run starts many servers side by side on one PostgreSQL.
  return TEST_STORE === 'postgres' ? { DATABASE_URL: pgUrlFor(dataDir), DATABASE_POOL_MAX: '4' } : {};
}

/** Opens (and migrates) the store a server on `dataDir` would use, for tests that look at stored rows. */
export async function openTestStore(dataDir: string): Promise<Store> {
  const store = openStore(loadConfig({ DATA_DIR: dataDir, ...storeEnv(dataDir) }));
  await store.open();
  return store;
}

/** Rows of one SQL query on the test PostgreSQL, over a connection of its own. */
async function pgRows<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: PG_TEST_URL });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Whether the store of `dataDir` under test exists at all: its SQLite file, or its PostgreSQL schema. */
export async function testStoreExists(dataDir: string): Promise<boolean> {
  if (TEST_STORE === 'sqlite') return fs.existsSync(path.join(dataDir, 'chatvault.db'));
  return (await pgRows('SELECT 1 FROM pg_namespace WHERE nspname = $1', [pgSchemaFor(dataDir)])).length === 1;
}

/**
 * The number of rows of a table (the same name on both stores, e.g. `chat_files`) in the store a
 * server on `dataDir` uses, read beside the store rather than through it.
 */
export async function countStoredRows(dataDir: string, table: string): Promise<number> {
  if (!/^[a-z_]+$/.test(table)) throw new Error(`not a table name: ${table}`);
  if (TEST_STORE === 'sqlite') {
    const db = new Database(path.join(dataDir, 'chatvault.db'), { readonly: true });
    try {
      return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    } finally {
      db.close();
    }
  }
  const rows = await pgRows<{ n: number }>(`SELECT count(*)::int AS n FROM "${pgSchemaFor(dataDir)}".${table}`);
  return rows[0]!.n;
}

/**
 * Every blob (chat file bytes, cached thumbnails) a server on `dataDir` keeps, sorted: the files
 * under DATA_DIR/files as `files/<path>` (temp files of unfinished uploads included) and, on
 * PostgreSQL, the rows of its `blobs` table as `blobs/<key>`. A variant of a blob (`<key>.thumb`)
 * is listed as its blob's name plus the suffix on both stores. On PostgreSQL the files part is
 * expected to stay empty, since the bytes live in the database there.
 */
export async function storedBlobs(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  const root = path.join(dataDir, 'files');
  if (fs.existsSync(root)) {
    for (const e of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
      if (e.isFile()) out.push(`files/${path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/')}`);
    }
  }
  if (TEST_STORE === 'postgres') {
    const rows = await pgRows<{ key: string }>(`SELECT key FROM "${pgSchemaFor(dataDir)}".blobs`);
    out.push(...rows.map((r) => `blobs/${r.key}`));
  }
  return out.sort();
}

/**
 * Makes a store's message transactions wait for `hook()` after taking their seqs and before
 * committing (PostgreSQL: the in-flight window the high-water mark must respect). SQLite commits
 * one writer at a time, so there is no such window to widen: a no-op there.
 */
export function beforeCommits(store: Store, hook: () => Promise<void>): void {
  if (store.kind !== 'postgres') return;
  (store as unknown as { messages: { beforeCommit?: () => Promise<void> } }).messages.beforeCommit = hook;
}

/** Makes a store's message transactions wait `ms()` milliseconds before committing (see beforeCommits). */
export function slowCommits(store: Store, ms: () => number): void {
  beforeCommits(store, () => new Promise((r) => setTimeout(r, ms())));
}

/** CI sets CHATVAULT_REQUIRE_SERVICES=1: a missing PostgreSQL is then a failure, not a skip. */
export const PG_REQUIRED = process.env.CHATVAULT_REQUIRE_SERVICES === '1';

/**
 * node:test's `skip` for tests that need PostgreSQL whatever the store under test: false when it
 * answers or is required (the tests then run, and fail without it); otherwise the visible reason.
 */
export async function pgSkip(): Promise<string | false> {
  const c = new pg.Client({ connectionString: PG_TEST_URL, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return false;
  } catch (e) {
    return PG_REQUIRED ? false : `PostgreSQL at ${PG_TEST_URL} is unreachable (${(e as Error).message}); start one or set DATABASE_URL_TEST`;
  } finally {
    await c.end().catch(() => {});
  }
}
