import { ApiError, errors } from '../errors.js';
import type { CursorCodec } from '../domain/cursor.js';
import { readLimit } from '../domain/users.js';
import type { Query, QlExpr, Selection } from '../ql/ast.js';
import { QlError } from '../ql/errors.js';
import { parseQl } from '../ql/parser.js';
import type { AppRow, MessageHit, MessageQuery, MessageSortKey, SplicedPage, Store } from '../store/store.js';

export const DEFAULT_LIMIT = 10;
export const MAX_LIMIT = 1000;
const READ_AHEAD_MIN_LIMIT = 200;
const READ_AHEAD_TTL_MS = 30_000;
const READ_AHEAD_MAX = 32;

/** The parameters of a chat-message query as a request gives them. */
export interface ChatQueryParams {
  ql: string | undefined;
  limit: unknown;
  cursor: string | undefined;
  since: string | undefined;
}

/** A query ready to walk: what to match, in which order, from where. */
export interface ChatQueryPlan {
  app: AppRow;
  select: Selection;
  where: QlExpr | null;
  orderBy: MessageSortKey[];
  near: { lat: number; lng: number } | null;
  limit: number;
  /** Identity of the query (not of the page size), which cursors are bound to. */
  scope: string;
  minSeq: bigint;
  maxSeq: bigint;
  after: { keys: unknown[]; seq: bigint } | null;
}

/** One page of a walk as one buffer of joined records. */
export interface SplicedChatPage {
  count: number;
  body: Buffer;
  cursor: string | undefined;
  /** Where the page ended (the keyset of its last record), or null when empty. */
  last: { seq: bigint; keys: unknown[] } | null;
  watermark: string;
}

/** One page of a walk. */
export interface ChatPage {
  hits: MessageHit[];
  /** Cursor of the next page; absent on the last. */
  cursor: string | undefined;
  /** Opaque high-water mark: `since=` it continues where this walk's snapshot ended. */
  watermark: string;
}

interface CursorPosition {
  h: string;
  k: unknown[];
  s: string;
}

/** Maps a ql parse failure to the Usergrid error a client sees. */
export function qlError(e: unknown): never {
  if (e instanceof QlError) throw new ApiError(400, e.code, e.message);
  throw e;
}

/** Parses a ql, failing with the Usergrid error. */
export function parseQlOrThrow(ql: string): Query {
  try {
    return parseQl(ql);
  } catch (e) {
    qlError(e);
  }
}

function findWithin(e: QlExpr | null): { lat: number; lng: number } | null {
  if (!e) return null;
  switch (e.kind) {
    case 'within':
      return ['location', 'payload.bodies.location'].includes(e.field.toLowerCase()) ? { lat: e.lat, lng: e.lng } : null;
    case 'and':
    case 'or':
      return findWithin(e.left) ?? findWithin(e.right);
    default:
      // A within under `not` is no reason to order by distance.
      return null;
  }
}

// Usergrid's cursors begin with a hash of the query shape; keeping the two common prefixes
// makes ours look familiar to people who read cursors (`MTYxOTcyOTYyND...` = timestamp desc).
function hashPrefix(orderBy: MessageSortKey[]): string {
  if (orderBy.length === 1 && orderBy[0]!.field === 'timestamp') return orderBy[0]!.dir === 'desc' ? '1619729624' : '1619735390';
  return '-56874343';
}

function canonical(q: Query): string {
  return JSON.stringify({ s: q.select, w: q.where, o: q.orderBy }, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

/**
 * The export engine's query side: turns `ql`/`limit`/`cursor`/`since` into a plan, and walks one
 * page at a time over the store. Every face of export (paged API, purge, streams) goes through it,
 * so all of them share the exactly-once cursor.
 */
export class ChatQueryEngine {
  constructor(private readonly store: Store, private readonly cursors: CursorCodec) {}

  /** Parses and checks a request into a plan (400 for bad ql, cursors or watermarks). */
  async plan(app: AppRow, p: ChatQueryParams): Promise<ChatQueryPlan> {
    const q = parseQlOrThrow(p.ql ?? '');
    const limit = p.limit !== undefined ? readLimit(p.limit, DEFAULT_LIMIT, MAX_LIMIT) : q.limit !== null && q.limit > 0 ? Math.min(q.limit, MAX_LIMIT) : DEFAULT_LIMIT;
    const near = findWithin(q.where);
    let orderBy: MessageSortKey[] = q.orderBy.map((k) => ({ field: k.field.toLowerCase(), dir: k.dir }));
    if (orderBy.length === 0) orderBy = near ? [{ field: '@distance', dir: 'asc' }] : [{ field: 'timestamp', dir: 'asc' }];
    const minSeq = p.since ? this.watermarkSeq(app, p.since) : 0n;
    const scope = `chatmessages:${app.uuid}:${minSeq}:${canonical(q)}`;
    let maxSeq: bigint;
    let after: ChatQueryPlan['after'] = null;
    if (p.cursor) {
      const pos = this.cursors.decode(scope, p.cursor) as CursorPosition;
      if (!pos || typeof pos.h !== 'string' || typeof pos.s !== 'string' || !Array.isArray(pos.k) || !/^\d+$/.test(pos.h) || !/^\d+$/.test(pos.s)) {
        throw errors.illegalArgument('cursor is not a valid cursor');
      }
      maxSeq = BigInt(pos.h);
      after = { keys: pos.k, seq: BigInt(pos.s) };
    } else {
      maxSeq = await this.store.highWaterMark();
    }
    return { app, select: q.select, where: q.where, orderBy, near, limit, scope, minSeq, maxSeq, after };
  }

  /**
   * A plan for a bulk stream: no page limit of its own, storage (insertion) order unless the ql
   * orders otherwise, and `after=<msg_id>` to resume right after a message already received.
   */
  async streamPlan(app: AppRow, p: { ql: string | undefined; since: string | undefined; after: string | undefined; pageSize: number }): Promise<ChatQueryPlan> {
    const plan = await this.plan(app, { ql: p.ql, limit: String(p.pageSize), cursor: undefined, since: p.since });
    // In storage order every message committed later comes later: resuming after a msg_id can
    // neither skip nor repeat. Under another order that is not so, hence no `after` there.
    const q = parseQlOrThrow(p.ql ?? '');
    if (q.orderBy.length > 0 && p.after !== undefined) {
      throw errors.illegalArgument('after= resumes streams in storage order; remove "order by" from the ql to use it');
    }
    const out: ChatQueryPlan = { ...plan, orderBy: q.orderBy.length > 0 ? plan.orderBy : [], limit: p.pageSize };
    if (p.after !== undefined) {
      const seq = await this.store.messageSeq(app.id, p.after);
      if (seq === null) throw errors.illegalArgument(`after: no message with msg_id ${p.after} in this app`);
      out.after = { keys: [], seq };
    }
    return out;
  }

  /** Reads the rows of one page of a plan (limit + 1 of them, to tell whether more follow). */
  read(plan: ChatQueryPlan): Promise<MessageHit[]> {
    return this.fetch(plan);
  }

  /** Reads one page of whole records joined by `separator`, without a cursor (streams). */
  readSpliced(plan: ChatQueryPlan, separator: string): Promise<SplicedPage> {
    return this.fetchSpliced(plan, separator);
  }

  /** Reads one page of the plan as separate records (projections, purges); the cursor is present only when more match. */
  async page(plan: ChatQueryPlan): Promise<ChatPage> {
    const rows = await this.fetch(plan);
    const hits = rows.slice(0, plan.limit);
    const last = hits[hits.length - 1];
    const cursor = rows.length > plan.limit && last ? this.cursorAfter(plan, last) : undefined;
    return { hits, cursor, watermark: this.watermark(plan.app, plan.maxSeq) };
  }

  /**
   * Reads one page of whole records joined by `separator` into one buffer: the fast path of
   * `select *` pages and streams. After a large page the next one is read ahead (see below).
   */
  async splicedPage(plan: ChatQueryPlan, separator: string): Promise<SplicedChatPage> {
    const p = await ((plan.after ? this.takeReadAhead(plan, separator) : undefined) ?? this.fetchSpliced(plan, separator));
    let cursor: string | undefined;
    if (p.more && p.last) {
      cursor = this.cursorAfter(plan, p.last);
      if (plan.limit >= READ_AHEAD_MIN_LIMIT) this.scheduleReadAhead({ ...plan, after: p.last }, separator);
    }
    return { count: p.count, body: p.body, cursor, last: p.last, watermark: this.watermark(plan.app, plan.maxSeq) };
  }

  /** Reads one page and deletes its messages (`DELETE /chatmessages`). */
  async purge(plan: ChatQueryPlan): Promise<ChatPage> {
    const page = await this.page(plan);
    const deleted = new Set(await this.store.deleteMessages(plan.app.id, page.hits.map((h) => h.seq)));
    // Pages read ahead may hold purged messages.
    this.readAhead.clear();
    // A concurrent purge may have deleted some of the page first: report only what this one did.
    return { ...page, hits: page.hits.filter((h) => deleted.has(h.seq)) };
  }

  private cursorAfter(plan: ChatQueryPlan, last: { seq: bigint; keys: unknown[] }): string {
    return this.cursors.encode(plan.scope, { h: plan.maxSeq.toString(), k: last.keys, s: last.seq.toString() } satisfies CursorPosition, hashPrefix(plan.orderBy));
  }

  private query(plan: ChatQueryPlan, limit: number): MessageQuery {
    return {
      appId: plan.app.id, where: plan.where, orderBy: plan.orderBy, near: plan.near, after: plan.after,
      minSeq: plan.minSeq, maxSeq: plan.maxSeq, limit,
    };
  }

  private fetch(plan: ChatQueryPlan): Promise<MessageHit[]> {
    return this.store.findMessages(this.query(plan, plan.limit + 1));
  }

  private fetchSpliced(plan: ChatQueryPlan, separator: string): Promise<SplicedPage> {
    return this.store.findMessagesSpliced(this.query(plan, plan.limit), separator);
  }

  // Read-ahead: a bulk walker parses one page while we could already be reading the next. After
  // answering a large page, the next one is fetched in the background and kept briefly. The walk's
  // set is frozen by its high-water mark, so a page read ahead is the page the cursor will ask for
  // (purges clear them).
  private readonly readAhead = new Map<string, { page: Promise<SplicedPage>; at: number }>();

  private readAheadKey(plan: ChatQueryPlan, separator: string): string {
    return `${plan.scope}\0${separator}\0${plan.maxSeq}\0${plan.limit}\0${plan.after?.seq}\0${JSON.stringify(plan.after?.keys)}`;
  }

  private takeReadAhead(plan: ChatQueryPlan, separator: string): Promise<SplicedPage> | undefined {
    const key = this.readAheadKey(plan, separator);
    const hit = this.readAhead.get(key);
    if (!hit) return undefined;
    this.readAhead.delete(key);
    return Date.now() - hit.at < READ_AHEAD_TTL_MS ? hit.page : undefined;
  }

  private scheduleReadAhead(next: ChatQueryPlan, separator: string): void {
    setImmediate(() => {
      const now = Date.now();
      for (const [k, v] of this.readAhead) if (now - v.at >= READ_AHEAD_TTL_MS || this.readAhead.size >= READ_AHEAD_MAX) this.readAhead.delete(k);
      const key = this.readAheadKey(next, separator);
      const page = this.fetchSpliced(next, separator);
      // A failed read-ahead is simply not used; the request will read the page itself.
      page.catch(() => this.readAhead.delete(key));
      this.readAhead.set(key, { page, at: now });
    });
  }

  /** The opaque watermark token of a high-water mark. */
  watermark(app: AppRow, seq: bigint): string {
    return this.cursors.encode(`watermark:${app.uuid}`, { h: seq.toString() });
  }

  private watermarkSeq(app: AppRow, token: string): bigint {
    let pos: unknown;
    try {
      pos = this.cursors.decode(`watermark:${app.uuid}`, token);
    } catch {
      throw errors.illegalArgument('since is not a watermark of this app: use the watermark of an earlier export of the same app');
    }
    const h = (pos as { h?: unknown } | null)?.h;
    if (typeof h !== 'string' || !/^\d+$/.test(h)) throw errors.illegalArgument('since is not a valid watermark');
    return BigInt(h);
  }
}
