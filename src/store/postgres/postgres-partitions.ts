import type pg from 'pg';

/**
 * The monthly partitions of `messages` (UTC months of `timestamp`, ms). They are made ahead of
 * time (this month and the next few, when the store opens and whenever a month begins) and on
 * demand before a message of a month without one is stored (imports of old history). Creating
 * one takes a short exclusive lock on `messages`, so it never happens inside an insert.
 */

/** Months made ahead of the current one. */
export const MONTHS_AHEAD = 3;

/** The last ms a JavaScript Date can hold; later (and earlier) times share one edge partition each. */
const DATE_LIMIT = 8.64e15;

/**
 * A UTC month as one number (year * 12 + month index), the key of a partition; Infinity and
 * -Infinity for the edge partitions of times past what a Date can hold.
 */
export function monthOf(ms: number): number {
  if (ms > DATE_LIMIT) return Infinity;
  if (ms < -DATE_LIMIT) return -Infinity;
  const d = new Date(ms);
  return d.getUTCFullYear() * 12 + d.getUTCMonth();
}

function monthStart(month: number): number {
  const d = new Date(0);
  d.setUTCFullYear(Math.floor(month / 12), ((month % 12) + 12) % 12, 1);
  return d.getTime();
}

/** The partition of a month: its table name (as the migration names them) and its bounds. */
export function partitionOf(month: number): { name: string; lo: number | bigint; hi: number | bigint } {
  if (month === Infinity) return { name: 'messages_after_dates', lo: DATE_LIMIT + 1, hi: 2n ** 63n - 1n };
  if (month === -Infinity) return { name: 'messages_before_dates', lo: -(2n ** 63n), hi: -DATE_LIMIT };
  const y = Math.floor(month / 12);
  const m = (((month % 12) + 12) % 12) + 1;
  const year = y < 0 ? `bc${String(-y).padStart(4, '0')}` : String(y).padStart(4, '0');
  return { name: `messages_${year}_${String(m).padStart(2, '0')}`, lo: monthStart(month), hi: monthStart(month + 1) };
}

export class MessagePartitions {
  /** Months known to have a partition. */
  private readonly known = new Set<number>();
  private loaded: Promise<void> | null = null;
  private aheadFrom = Number.NaN;

  constructor(private readonly pool: pg.Pool) {}

  /** Forgets what is known (after an insert found a partition missing). */
  reset(): void {
    this.known.clear();
    this.loaded = null;
    this.aheadFrom = Number.NaN;
  }

  private load(): Promise<void> {
    this.loaded ??= (async () => {
      const r = await this.pool.query<{ lo: string }>(
        `SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''?(-?\\d+)'))[1] AS lo
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = 'messages'::regclass`,
      );
      for (const row of r.rows) if (row.lo !== null) this.known.add(monthOf(Number(row.lo)));
    })().catch((e: unknown) => {
      this.loaded = null;
      throw e;
    });
    return this.loaded;
  }

  /** Makes sure every message time has its partition, and this month and the next few too. */
  async ensure(timestamps: number[], now = Date.now()): Promise<void> {
    await this.load();
    const current = monthOf(now);
    const want = new Set<number>();
    if (current !== this.aheadFrom) for (let i = 0; i <= MONTHS_AHEAD; i++) want.add(current + i);
    for (const t of timestamps) {
      const month = monthOf(t);
      if (!this.known.has(month)) want.add(month);
    }
    for (const month of want) {
      if (this.known.has(month)) continue;
      const p = partitionOf(month);
      await this.pool.query('SELECT cv_message_partition($1, $2, $3)', [p.name, String(p.lo), String(p.hi)]);
      this.known.add(month);
    }
    this.aheadFrom = current;
  }
}
