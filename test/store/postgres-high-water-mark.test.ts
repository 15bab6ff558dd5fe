import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { openStore } from '../../src/chatvault.js';
import { loadConfig } from '../../src/config.js';
import { buildMessage } from '../../src/domain/messages.js';
import { writerHorizonSql } from '../../src/store/postgres/postgres-message-hwm.js';
import type { AppRow, Store } from '../../src/store/store.js';
import { tempDir } from '../helpers.js';
import { beforeCommits, PG_SCHEMA_PREFIX, PG_TEST_URL, pgSkip, withSchema } from '../store-under-test.js';

/**
 * The PostgreSQL high-water mark (postgres-message-hwm.ts) whatever the store under test: the
 * oldest writer in flight bounds it, also where transaction ids change their number of digits.
 */

const skip = await pgSkip();

/** The horizon of in-flight writers for these (32-bit xid, reference full xid) pairs, as text. */
async function horizon(c: pg.Client, pairs: [bigint, bigint][]): Promise<string | null> {
  const rows = pairs.length === 0 ? 'SELECT 1::bigint AS x32, 1::bigint AS ref WHERE false' : `SELECT * FROM (VALUES ${pairs.map(([x, r]) => `(${x}::bigint, ${r}::bigint)`).join(', ')}) v(x32, ref)`;
  const r = await c.query<{ xid: string | null }>(`SELECT xid::text AS xid FROM (${writerHorizonSql(rows)}) h`);
  return r.rows[0]!.xid;
}

describe('PostgreSQL high-water mark', { skip }, () => {
  test('the oldest writer is the smallest xid by number, also across a power of ten and a 32-bit wrap', async () => {
    const c = new pg.Client({ connectionString: PG_TEST_URL });
    await c.connect();
    try {
      // Compared as text, 100000 would come before 99999 and 1000 before 999.
      assert.equal(await horizon(c, [[100000n, 100005n], [99999n, 100005n]]), '99999');
      assert.equal(await horizon(c, [[1000n, 1002n], [999n, 1002n], [1001n, 1002n]]), '999');
      assert.equal(await horizon(c, [[9999999n, 10000003n], [10000001n, 10000003n]]), '9999999');
      // A reference in the second epoch: 4294967290 is from the first, 3 from the second.
      const ref = 2n ** 32n + 5n;
      assert.equal(await horizon(c, [[3n, ref], [4294967290n, ref]]), '4294967290');
      assert.equal(await horizon(c, [[3n, ref]]), String(2n ** 32n + 3n));
      assert.equal(await horizon(c, []), null);
    } finally {
      await c.end();
    }
  });

  describe('with a writer held open', () => {
    const schema = `${PG_SCHEMA_PREFIX}hwm_${randomBytes(3).toString('hex')}`;
    const open = async (): Promise<Store> => {
      const s = openStore(loadConfig({ DATA_DIR: tempDir('cv-hwm-'), DATABASE_URL: withSchema(PG_TEST_URL, schema), DATABASE_POOL_MAX: '4' }));
      await s.open();
      return s;
    };
    let slow: Store;
    let fast: Store;
    let reader: Store;
    let app: AppRow;
    before(async () => {
      reader = await open();
      slow = await open();
      fast = await open();
      const org = await reader.createOrg({ uuid: '00000000-0000-1000-8000-0000000f0001', name: 'hw', clientId: 'YXA6hw', clientSecret: 'YXA6hw', created: 1 });
      app = await reader.createApp({ uuid: '00000000-0000-1000-8000-0000000f0002', orgId: org.id, name: 'hw', clientId: 'YXA6hwapp', clientSecret: 'YXA6hw', openRegistration: false, created: 1 });
      (reader as unknown as { messages: { hwmWaitMs: number } }).messages.hwmWaitMs = 20;
    });
    after(async () => {
      await Promise.all([slow?.close(), fast?.close(), reader?.close()]);
      const c = new pg.Client({ connectionString: PG_TEST_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => c.end());
    });

    const msg = (id: string) => buildMessage(app.id, { from: 'a', to: 'b', chatType: 'chat', bodies: [{ type: 'txt', msg: id }], timestamp: Date.UTC(2026, 4, 1), msgId: id });

    test('stays below a writer that took its seqs and has not committed, then passes it once it has', async () => {
      const [base] = await fast.insertMessages([msg('hw-0')]);
      assert.equal(await reader.highWaterMark(), base);
      let reserved!: () => void;
      const tookSeqs = new Promise<void>((r) => (reserved = r));
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      beforeCommits(slow, () => {
        reserved();
        return gate;
      });
      const held = slow.insertMessages([msg('hw-1'), msg('hw-2')]);
      await tookSeqs;
      const [later] = await fast.insertMessages([msg('hw-3')]);
      assert.ok(later! > base! + 2n, 'the later writer took seqs after the held ones');
      assert.equal(await reader.highWaterMark(), base, 'the mark waits below the writer in flight');
      release();
      const seqs = await held;
      assert.deepEqual(seqs, [base! + 1n, base! + 2n]);
      assert.equal(await reader.highWaterMark(), later);
    });
  });
});
