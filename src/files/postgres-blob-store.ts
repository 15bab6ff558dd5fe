import { Readable } from 'node:stream';
import type pg from 'pg';
import { withTransaction } from '../store/postgres/postgres-transaction.js';
import { checkBlobKey, type BlobStore, type StoredBlob } from './blob-store.js';

// Bytes per row: large enough that a 10 MB file is a few dozen rows, small enough that a reader
// holds little in memory and PostgreSQL never has to TOAST a huge value in one piece.
const CHUNK = 256 * 1024;

/**
 * Blobs in PostgreSQL (tables `blobs` and `blob_chunks`, schema migration 3), so that every node
 * of a cluster sees the files any node received. A put is one transaction: a reader sees the whole
 * blob or none of it, and a failed upload leaves nothing behind.
 */
export class PostgresBlobStore implements BlobStore {
  constructor(private readonly pool: pg.Pool) {}

  async put(key: string, data: Readable): Promise<number> {
    checkBlobKey(key);
    return withTransaction(this.pool, async (c) => {
      await c.query('DELETE FROM blobs WHERE key = $1', [key]);
      await c.query('INSERT INTO blobs (key, size, created) VALUES ($1, 0, $2)', [key, Date.now()]);
      let size = 0;
      let n = 0;
      let parts: Buffer[] = [];
      let held = 0;
      const flush = async (all: boolean) => {
        while (held >= CHUNK || (all && held > 0)) {
          const joined = Buffer.concat(parts, held);
          const take = Math.min(CHUNK, held);
          await c.query('INSERT INTO blob_chunks (key, n, data) VALUES ($1, $2, $3)', [key, n++, joined.subarray(0, take)]);
          parts = take < held ? [joined.subarray(take)] : [];
          held -= take;
        }
      };
      for await (const chunk of data) {
        const b = chunk as Buffer;
        parts.push(b);
        held += b.length;
        size += b.length;
        if (held >= CHUNK) await flush(false);
      }
      await flush(true);
      await c.query('UPDATE blobs SET size = $2 WHERE key = $1', [key, size]);
      return size;
    });
  }

  async get(key: string): Promise<StoredBlob | null> {
    checkBlobKey(key);
    const r = await this.pool.query<{ size: string; chunks: number }>(
      'SELECT b.size, (SELECT count(*)::int FROM blob_chunks c WHERE c.key = b.key) AS chunks FROM blobs b WHERE b.key = $1',
      [key],
    );
    const row = r.rows[0];
    if (!row) return null;
    const pool = this.pool;
    // One chunk per read, as the consumer asks: a large file never sits in memory whole.
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let n = 0; n < row!.chunks; n++) {
        const c = await pool.query<{ data: Buffer }>('SELECT data FROM blob_chunks WHERE key = $1 AND n = $2', [key, n]);
        if (!c.rows[0]) throw new Error(`blob ${key} lost chunk ${n} while being read`);
        yield c.rows[0].data;
      }
    }
    return { stream: Readable.from(chunks(), { objectMode: false }), size: Number(row.size) };
  }

  async delete(key: string): Promise<void> {
    checkBlobKey(key);
    await this.pool.query('DELETE FROM blobs WHERE key = $1', [key]);
  }
}

/** The tables of PostgresBlobStore (one schema migration step). */
export const BLOBS_MIGRATION = `
  CREATE TABLE blobs (
    key text PRIMARY KEY,
    size bigint NOT NULL,
    created bigint NOT NULL
  );
  CREATE TABLE blob_chunks (
    key text NOT NULL REFERENCES blobs(key) ON DELETE CASCADE,
    n integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (key, n)
  );
`;
