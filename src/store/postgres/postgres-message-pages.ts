import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { MessageHit, MessageQuery, SplicedPage } from '../store.js';
import { copyRows, inlineParams } from './postgres-message-copy.js';
import { compileWhere, Params, sortPlan, type PgParam, type SortPlan } from './postgres-ql.js';

const num = (v: unknown): number => Number(v);
const str = (v: unknown): string => String(v);

const READ_AHEAD_MIN_LIMIT = 200;
const READ_AHEAD_TTL_MS = 30_000;
const READ_AHEAD_MAX = 16;

function readAheadKey(q: MessageQuery, separator: string): string {
  return JSON.stringify({ q, separator }, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

/** Most query shapes given a name (a server-side prepared statement on each connection). */
const MAX_NAMED_SHAPES = 256;

/**
 * Names for query shapes, so that each connection prepares a shape once and PostgreSQL can keep
 * its plan: planning a query over many partitions costs more than running a page of it. The
 * number of names is capped (ql can describe endless shapes); shapes past the cap run unnamed.
 */
class ShapeNames {
  private readonly names = new Map<string, string>();

  nameOf(text: string): string | undefined {
    let name = this.names.get(text);
    if (name === undefined && this.names.size < MAX_NAMED_SHAPES) {
      name = `cvq_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
      this.names.set(text, name);
    }
    return name;
  }
}

/**
 * Keyset pages of chat-message queries: each page one statement, never OFFSET; the records of
 * a page joined by PostgreSQL into one buffer for bulk reads, the next large page read ahead.
 */
export class MessagePages {
  private readonly shapes = new ShapeNames();

  constructor(private readonly pool: pg.Pool) {}

  /** Forgets the pages read ahead (messages were deleted). */
  dropReadAhead(): void {
    this.readAhead.clear();
  }

  /**
   * The parts of the SELECT of one keyset page (see sqlite-messages.ts pageQuery): the sort-key
   * expressions to select, and `rest`, everything from FROM to LIMIT.
   */
  private pageQuery(q: MessageQuery, limit: number, p: Params): { keys: string[]; rest: string; plans: SortPlan[]; prepare: boolean } {
    const app = p.add(q.appId, '::int');
    const plans = q.orderBy.map((k, i) => sortPlan(k, i, q.near, p));
    const storageOrder = q.orderBy.length === 0;
    // In storage order the keyset is a seq bound, merged with `since` into one lower bound.
    const lower = storageOrder && q.after && q.after.seq > q.minSeq ? q.after.seq : q.minSeq;
    // seq > 0 holds for every message: leaving it out spares a prepared (generic) plan the guess
    // that a range of seqs is a small part of the table (PostgreSQL assumes 0.5%), which would
    // have it sort instead of walking an ordered index.
    const where = [`m.app_id = ${app}`, `m.seq <= ${p.add(q.maxSeq, '::bigint')}`];
    if (lower > 0n) where.push(`m.seq > ${p.add(lower, '::bigint')}`);
    if (q.where) where.push(compileWhere(q.where, p, app));
    // A message without a sort key's field has no place in that order (Usergrid dropped it too).
    for (const pl of plans) if (pl.filter) where.push(pl.filter);
    const seqDir = q.orderBy.length > 0 ? q.orderBy[q.orderBy.length - 1]!.dir : 'asc';
    const cols: string[] = [];
    const dirs: ('asc' | 'desc')[] = [];
    plans.forEach((pl, i) => {
      for (const c of pl.cols) {
        cols.push(c);
        dirs.push(q.orderBy[i]!.dir);
      }
    });
    cols.push('m.seq');
    dirs.push(seqDir);
    if (q.after && !storageOrder) {
      const casts = [...plans.flatMap((pl) => pl.casts), '::bigint'];
      const vals = [...plans.flatMap((pl, i) => pl.values(q.after!.keys[i])), q.after.seq];
      const ph = vals.map((v, i) => p.add(v, casts[i]));
      where.push(keysetAfter(cols, dirs, ph));
      // The same bound on the partition key, which lets PostgreSQL skip whole partitions.
      if (cols[0] === 'm.timestamp') where.push(`m.timestamp ${dirs[0] === 'asc' ? '>=' : '<='} ${ph[0]}`);
    }
    const order = cols.map((c, i) => `${c} ${dirs[i] === 'asc' ? 'ASC' : 'DESC'}`).join(', ');
    const from = ['messages m', ...plans.flatMap((pl) => (pl.lateral ? [pl.lateral] : []))].join(' ');
    // The limit is part of the text: a prepared plan for an unknown limit may prefer sorting.
    const rest = `FROM ${from} WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ${Math.max(0, Math.floor(limit))}`;
    // Only the bulk shapes (no where, no since, whose pages follow each other by the thousand)
    // are prepared: a prepared statement gets a generic plan, cheap to reuse, but blind to the
    // selectivity of values, which the other queries need (a rare word, an old watermark).
    const prepare = q.where === null && q.minSeq === 0n;
    return { keys: plans.flatMap((pl) => pl.select), rest, plans, prepare };
  }

  private run(text: string, values: PgParam[], prepare: boolean): Promise<pg.QueryResult<unknown[]>> {
    const name = prepare ? this.shapes.nameOf(text) : undefined;
    return this.pool.query<unknown[]>(name ? { name, text, values, rowMode: 'array' } : { text, values, rowMode: 'array' });
  }

  /** One keyset page of a message query. */
  async find(q: MessageQuery): Promise<MessageHit[]> {
    const p = new Params();
    const { keys, rest, plans, prepare } = this.pageQuery(q, q.limit, p);
    const r = await this.run(`SELECT m.seq, ${keys.map((k) => `${k}, `).join('')}m.entity ${rest}`, p.values, prepare);
    return r.rows.map((row) => ({ seq: BigInt(str(row[0])), keys: keysOf(plans, row, 1), entity: row[row.length - 1] as Buffer }));
  }

  /**
   * One keyset page whose records PostgreSQL joins into one buffer (separated by `separator`),
   * in one round trip and one pass: the page is read with one row more than asked (to tell
   * whether more follow) straight into the aggregates, which see the rows in the page's order
   * (a sorted subquery feeds a plain aggregate in order), so nothing is sorted twice; the extra
   * row's record is cut off here. The result comes through a binary COPY, as raw bytes
   * (postgres-message-copy.ts). After a large page the next one is read ahead (see readAhead).
   */
  spliced(q: MessageQuery, separator: string): Promise<SplicedPage> {
    const key = readAheadKey(q, separator);
    const ahead = this.readAhead.get(key);
    if (ahead) {
      this.readAhead.delete(key);
      if (Date.now() - ahead.at < READ_AHEAD_TTL_MS) return ahead.page;
    }
    const page = this.readSpliced(q, separator);
    if (q.limit >= READ_AHEAD_MIN_LIMIT) {
      void page.then((p) => {
        if (p.more && p.last) this.scheduleReadAhead({ ...q, after: p.last }, separator);
      }, () => undefined);
    }
    return page;
  }

  private async readSpliced(q: MessageQuery, separator: string): Promise<SplicedPage> {
    const lim = Math.max(0, Math.floor(q.limit));
    if (lim === 0) return { count: 0, more: false, body: Buffer.alloc(0), last: null };
    const p = new Params();
    const sep = Buffer.from(separator);
    const bulk = bulkPage(q, lim, sep, p);
    let plans: SortPlan[];
    let text: string;
    if (bulk) {
      ({ plans, text } = bulk);
    } else {
      const page = this.pageQuery(q, lim + 1, p);
      plans = page.plans;
      const names = page.keys.map((_k, i) => `k${i}`);
      const lastOf = (c: string) => `(array_agg(${c}))[least(count(*), ${lim})]::text`;
      text =
        `SELECT count(*)::text, string_agg(page.e, ${p.add(sep, '::bytea')}), ((array_agg(length(page.e)))[${lim + 1}])::text, ` +
        `${['seq', ...names].map(lastOf).join(', ')} ` +
        `FROM (SELECT m.seq AS seq, ${page.keys.map((k, i) => `${k} AS ${names[i]}, `).join('')}m.entity AS e ${page.rest}) page`;
    }
    const [row] = await copyRows(this.pool, inlineParams(text, p.values));
    const field = (i: number): string | null => row![i]?.toString('utf8') ?? null;
    const n = num(field(0));
    if (n === 0) return { count: 0, more: false, body: Buffer.alloc(0), last: null };
    let body = row![1]!;
    if (n > lim) body = body.subarray(0, body.length - num(field(2)) - sep.length);
    const last = row!.slice(4).map((_f, i) => field(4 + i));
    return { count: Math.min(n, lim), more: n > lim, body, last: { seq: BigInt(field(3)!), keys: keysOf(plans, last, 0) } };
  }

  // Read-ahead: a bulk reader (a stream, a paged walk) handles one page while the next could
  // already be on its way. After a large page the next one is fetched on another connection and
  // kept briefly. A walk's set is frozen by its high-water mark (later writes have larger seqs),
  // so the page read ahead is the page that will be asked for; deletes drop them.
  private readonly readAhead = new Map<string, { page: Promise<SplicedPage>; at: number }>();

  private scheduleReadAhead(next: MessageQuery, separator: string): void {
    const now = Date.now();
    for (const [k, v] of this.readAhead) if (now - v.at >= READ_AHEAD_TTL_MS || this.readAhead.size >= READ_AHEAD_MAX) this.readAhead.delete(k);
    const key = readAheadKey(next, separator);
    if (this.readAhead.has(key)) return;
    const page = this.readSpliced(next, separator);
    // A failed read-ahead is simply not used: the request reads the page itself.
    page.catch(() => this.readAhead.delete(key));
    this.readAhead.set(key, { page, at: now });
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * A page of a bulk shape (no where: storage order, or by timestamp without `since`) as a call
 * of its stored function (message-schema), whose plan PostgreSQL keeps; null for other queries.
 */
function bulkPage(q: MessageQuery, lim: number, sep: Buffer, p: Params): { plans: SortPlan[]; text: string } | null {
  if (q.where !== null) return null;
  const args = (xs: string[]) => xs.join(', ');
  if (q.orderBy.length === 0) {
    const lower = q.after && q.after.seq > q.minSeq ? q.after.seq : q.minSeq;
    return {
      plans: [],
      text: `SELECT * FROM cv_page_by_seq(${args([p.add(q.appId, '::int'), p.add(q.maxSeq, '::bigint'), p.add(lower, '::bigint'), p.add(lim, '::int'), p.add(sep, '::bytea')])})`,
    };
  }
  const k = q.orderBy[0]!;
  if (q.orderBy.length !== 1 || k.field !== 'timestamp' || q.minSeq !== 0n) return null;
  const desc = k.dir === 'desc';
  const ts = q.after ? BigInt(String(q.after.keys[0])) : desc ? INT64_MAX : INT64_MIN;
  const seq = q.after ? q.after.seq : desc ? INT64_MAX : 0n;
  const plans = [sortPlan(k, 0, null, new Params())];
  return {
    plans,
    text: `SELECT * FROM cv_page_by_time(${args([p.add(q.appId, '::int'), p.add(q.maxSeq, '::bigint'), p.add(ts, '::bigint'), p.add(seq, '::bigint'), p.add(desc, '::boolean'), p.add(lim, '::int'), p.add(sep, '::bytea')])})`,
  };
}

/** The sort keys of a row, from the selected key columns starting at `at`. */
function keysOf(plans: SortPlan[], row: unknown[], at: number): unknown[] {
  const keys: unknown[] = [];
  let i = at;
  for (const pl of plans) {
    keys.push(pl.key(row.slice(i, i + pl.select.length)));
    i += pl.select.length;
  }
  return keys;
}

/**
 * The keyset condition "after this row" over never-NULL sort expressions: a row comparison
 * when all directions agree (an index can walk it), else the OR expansion.
 */
function keysetAfter(cols: string[], dirs: ('asc' | 'desc')[], vals: string[]): string {
  if (dirs.every((d) => d === dirs[0])) return `(${cols.join(', ')}) ${dirs[0] === 'asc' ? '>' : '<'} (${vals.join(', ')})`;
  const ors: string[] = [];
  for (let i = 0; i < cols.length; i++) {
    const parts: string[] = [];
    for (let j = 0; j < i; j++) parts.push(`${cols[j]} = ${vals[j]}`);
    parts.push(`${cols[i]} ${dirs[i] === 'asc' ? '>' : '<'} ${vals[i]}`);
    ors.push(`(${parts.join(' AND ')})`);
  }
  return `(${ors.join(' OR ')})`;
}
