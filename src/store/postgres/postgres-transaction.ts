import type pg from 'pg';

/** Anything that runs a query: the pool (one statement, its own transaction) or a client inside one. */
export interface Queryable {
  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * Runs `fn` inside BEGIN … COMMIT on one pooled client; any error rolls back and is rethrown.
 * A client whose ROLLBACK failed (a broken connection) is destroyed rather than returned to the pool.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    throw e;
  } finally {
    client.release(broken);
  }
}

/** True for PostgreSQL's unique_violation (SQLSTATE 23505). */
export function isUniqueViolation(e: unknown): boolean {
  return e instanceof Error && 'code' in e && (e as { code: unknown }).code === '23505';
}
