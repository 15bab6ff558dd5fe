import Database from 'better-sqlite3';
import { SqliteMessages } from '../../src/store/sqlite/sqlite-messages.js';
import { applyPragmas, migrate } from '../../src/store/sqlite/sqlite-schema.js';

/** Rows waiting in a log table of the SQLite store and rows moved into its table, read from the file. */
export function logCounts(file: string, log: string, table: string): { logged: number; moved: number } {
  const db = new Database(file, { readonly: true });
  try {
    const one = (sql: string) => Number(db.prepare(sql).pluck().get());
    return { logged: one(`SELECT count(*) FROM ${log}`), moved: one(`SELECT count(*) FROM ${table}`) };
  } finally {
    db.close();
  }
}

/**
 * Writes with a message writer of its own on a new database in `file`, then closes it without
 * moving anything out of the logs, as a process killed after its commits leaves them.
 */
export async function leftInLogs(file: string, work: (writer: SqliteMessages, db: Database.Database) => Promise<void>): Promise<void> {
  const db = new Database(file);
  applyPragmas(db);
  migrate(db);
  await work(new SqliteMessages(db, 64), db);
  db.close();
}
