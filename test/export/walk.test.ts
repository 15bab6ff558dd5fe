import assert from 'node:assert/strict';
import { mulberry32 } from '../../src/util/prng.js';
import { after, before, describe, test } from 'node:test';
import { buildMessage, type ChatType } from '../../src/domain/messages.js';
import { containsQuery, textContains } from '../../src/domain/text-match.js';
import { distanceMeters } from '../../src/store/sqlite/sqlite-ql.js';
import type { AppRow } from '../../src/store/store.js';
import { Api, createApp, startTestServer, type TestServer } from '../helpers.js';

/*
 * Property test of the exactly-once walk: random messages, random queries, an oracle in plain JS,
 * and a writer that keeps committing while the walk pages. Each walk must equal the oracle over
 * what was committed before it began; `since=` its watermark must give exactly what the writer
 * committed meanwhile.
 */


class Rng {
  private readonly next: () => number;
  constructor(seed: number) { this.next = mulberry32(seed); }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

const T0 = 1403163586000;
const SPAN = 40; // timestamps fall in [T0, T0 + SPAN]: hundreds of messages share each millisecond
const USERS = ['alice', 'Alice', 'bob', 'BOB_2', 'carol', 'dave-x'] as const;
const GROUPS = ['1411527886490154', '20230407001'] as const;
const WORDS = ['hello', 'world', 'Export', 'vault', 'hell', 'helios', '你好', '世界', '消息', '导出', '好'] as const;
const TAGS = ['Urgent', 'URGENT', 'low', '中文', 'Mixed_Case', 'mixed'] as const;

type Body = Record<string, unknown>;
interface Msg {
  msgId: string;
  from: string;
  to: string;
  chatType: ChatType;
  body: Body;
  ext: { n: number; tag: string } | undefined;
  timestamp: number;
  seq: bigint;
}

function randomText(r: Rng): string {
  const n = r.int(1, 5);
  let s = '';
  for (let i = 0; i < n; i++) s += (i > 0 ? r.pick([' ', ', ', '', '\n']) : '') + r.pick(WORDS);
  return s;
}

/** In one city (ties, short distances), anywhere on earth, or far north or south (circles around a pole). */
function randomPlace(r: Rng): { lat: number; lng: number } {
  const k = r.int(0, 2);
  if (k === 0) return { lat: 39.9 + r.int(0, 99) / 1000, lng: 116.3 + r.int(0, 99) / 1000 };
  const lat = k === 1 ? r.int(-9000, 9000) / 100 : r.pick([1, -1]) * r.int(7000, 9000) / 100;
  return { lat, lng: r.int(-18000, 18000) / 100 };
}

/** Distance of a loc message from a centre, as the store computes it; undefined without a position. */
function distance(m: Msg, c: { lat: number; lng: number }): number | undefined {
  return m.body.type === 'loc' ? distanceMeters(m.body.lat as number, m.body.lng as number, c.lat, c.lng) : undefined;
}

function randomMsg(r: Rng, msgId: string, timestamp: number): Msg {
  const chatType = r.pick(['chat', 'chat', 'groupchat', 'chatroom'] as const);
  const to = chatType === 'chat' ? r.pick(USERS) : r.pick(GROUPS);
  const kind = r.pick(['txt', 'txt', 'txt', 'loc', 'loc', 'img', 'cmd'] as const);
  const body: Body =
    kind === 'txt' ? { type: 'txt', msg: randomText(r) }
    : kind === 'loc' ? { type: 'loc', ...randomPlace(r), addr: r.pick(['西城区西便门桥', 'Haidian']) }
    : kind === 'img' ? { type: 'img', url: `http://x/chatfiles/${msgId}`, filename: `${msgId}.jpg`, secret: 's' }
    : { type: 'cmd', action: 'run' };
  const ext = r.chance(0.7) ? { n: r.int(-5, 20), tag: r.pick(TAGS) } : undefined;
  return { msgId, from: r.pick(USERS), to, chatType, body, ext, timestamp, seq: -1n };
}

/** A ql condition and its meaning, evaluated exactly as the store must. */
interface Cond {
  ql: string;
  ev: (m: Msg) => boolean;
  /** Centre of the first `within` outside any `not`: without order by, results come nearest first. */
  near?: { lat: number; lng: number } | undefined;
}
type Op = '=' | '<' | '<=' | '>' | '>=';
const OPS: readonly Op[] = ['=', '<', '<=', '>', '>='];
const WORD_OPS: Record<Op, string> = { '=': 'eq', '<': 'lt', '<=': 'lte', '>': 'gt', '>=': 'gte' };

function cmp<T extends number | string>(a: T, op: Op, b: T): boolean {
  return op === '=' ? a === b : op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
}

function leaf(r: Rng): Cond {
  const op = r.pick(OPS);
  const opText = r.chance(0.2) ? ` ${WORD_OPS[op]} ` : ` ${op} `;
  const caseish = (s: string) => (r.chance(0.5) ? s.toUpperCase() : s);
  switch (r.int(0, 8)) {
    case 0: {
      const t = T0 + r.int(-2, SPAN + 2) + (r.chance(0.2) ? 0.5 : 0);
      return { ql: `timestamp${opText}${t}`, ev: (m) => cmp(m.timestamp, op, t) };
    }
    case 1: {
      const field = r.pick(['from', 'to'] as const);
      const get = (m: Msg) => (field === 'from' ? m.from : m.to).toLowerCase();
      const v = r.pick([...USERS, ...GROUPS]);
      if (r.chance(0.25)) {
        const prefix = v.slice(0, r.int(0, 4));
        return { ql: `${field} = '${caseish(prefix)}*'`, ev: (m) => get(m).startsWith(prefix.toLowerCase()) };
      }
      return { ql: `${field}${opText}'${caseish(v)}'`, ev: (m) => cmp(get(m), op, v.toLowerCase()) };
    }
    case 2: {
      const v = r.pick(['chat', 'groupchat', 'chatroom']);
      return { ql: `chat_type = '${caseish(v)}'`, ev: (m) => m.chatType === v };
    }
    case 3: {
      const v = r.pick(['txt', 'loc', 'img', 'cmd']);
      return { ql: `payload.bodies.type = '${caseish(v)}'`, ev: (m) => m.body.type === v };
    }
    case 4: {
      const n = r.int(-3, 18);
      return { ql: `payload.ext.n${opText}${n}`, ev: (m) => m.ext !== undefined && cmp(m.ext.n, op, n) };
    }
    case 5: {
      const v = r.pick(TAGS);
      const get = (m: Msg) => m.ext?.tag.toLowerCase();
      if (r.chance(0.3)) {
        const prefix = v.slice(0, r.int(1, 3));
        return { ql: `payload.ext.tag = '${caseish(prefix)}*'`, ev: (m) => get(m)?.startsWith(prefix.toLowerCase()) === true };
      }
      return { ql: `payload.ext.tag${opText}'${caseish(v)}'`, ev: (m) => m.ext !== undefined && cmp(get(m)!, op, v.toLowerCase()) };
    }
    case 6: {
      const c = randomPlace(r);
      const radius = r.pick([500, 50_000, 500_000, 2_000_000, 3_000_000, 6_000_000]);
      const ev = (m: Msg) => (distance(m, c) ?? Infinity) <= radius;
      return { ql: `location within ${radius} of ${c.lat}, ${c.lng}`, ev, near: c };
    }
    default: {
      const lit = r.pick([...WORDS, 'hello world', 'HELLO', 'hel*', '你好世界', '好世', '世', 'world 你好', 'vault*']);
      const q = containsQuery(lit);
      const ev = (m: Msg) => q !== null && m.body.type === 'txt' && textContains(m.body.msg as string, q);
      return { ql: `payload.bodies.msg contains '${lit}'`, ev };
    }
  }
}

function cond(r: Rng, depth: number): Cond {
  if (depth <= 0 || r.chance(0.4)) return leaf(r);
  const kind = r.pick(['and', 'or', 'not'] as const);
  if (kind === 'not') {
    const x = cond(r, depth - 1);
    return { ql: `not (${x.ql})`, ev: (m) => !x.ev(m), near: undefined };
  }
  const a = cond(r, depth - 1);
  const b = cond(r, depth - 1);
  const word = r.chance(0.2) ? (kind === 'and' ? '&&' : '||') : kind;
  const ev = kind === 'and' ? (m: Msg) => a.ev(m) && b.ev(m) : (m: Msg) => a.ev(m) || b.ev(m);
  return { ql: `(${a.ql}) ${word} (${b.ql})`, ev, near: a.near ?? b.near };
}

type SortField = 'timestamp' | 'from' | 'to' | 'payload.ext.n' | 'payload.ext.tag' | '@distance';
interface Query {
  ql: string;
  where: Cond | null;
  order: { field: SortField; dir: 'asc' | 'desc' }[];
}

function randomQuery(r: Rng): Query {
  let where = r.chance(0.85) ? cond(r, 3) : null;
  if (r.chance(0.3)) {
    // Often a location query of its own: nearest first unless ordered otherwise.
    let w = leaf(r);
    while (!w.near) w = leaf(r);
    const rest = r.chance(0.5) ? where : null;
    where = rest ? { ql: `(${w.ql}) and (${rest.ql})`, ev: (m) => w.ev(m) && rest.ev(m), near: w.near } : w;
  }
  const fields: SortField[] = ['timestamp', 'from', 'to', 'payload.ext.n', 'payload.ext.tag'];
  const order: Query['order'] = [];
  for (let i = r.int(0, 3); i > 0; i--) {
    const f = fields.splice(r.int(0, fields.length - 1), 1)[0]!;
    order.push({ field: f, dir: r.chance(0.5) ? 'desc' : 'asc' });
  }
  const orderQl = order.length === 0 ? '' : ` order by ${order.map((k) => (k.dir === 'desc' ? `${k.field} desc` : r.chance(0.5) ? `${k.field} asc` : k.field)).join(', ')}`;
  const head = where ? `${r.chance(0.5) ? 'select * where ' : ''}${where.ql}` : r.chance(0.5) ? 'select *' : '';
  const byDefault: SortField = where?.near ? '@distance' : 'timestamp';
  return { ql: (head + orderQl).trim(), where, order: order.length > 0 ? order : [{ field: byDefault, dir: 'asc' }] };
}

function sortValue(m: Msg, f: SortField, q: Query): number | string | undefined {
  if (f === '@distance') return distance(m, q.where!.near!);
  if (f === 'timestamp') return m.timestamp;
  if (f === 'from') return m.from.toLowerCase();
  if (f === 'to') return m.to.toLowerCase();
  return f === 'payload.ext.n' ? m.ext?.n : m.ext?.tag.toLowerCase();
}

/** What the walk must return: filter, drop rows without a sort key, sort, ties by seq in the last key's direction. */
function oracle(q: Query, msgs: Msg[]): string[] {
  const hits = msgs.filter((m) => (q.where ? q.where.ev(m) : true) && q.order.every((k) => sortValue(m, k.field, q) !== undefined));
  const last = q.order[q.order.length - 1]!.dir;
  hits.sort((a, b) => {
    for (const k of q.order) {
      const x = sortValue(a, k.field, q)!;
      const y = sortValue(b, k.field, q)!;
      if (x !== y) return (x < y ? -1 : 1) * (k.dir === 'asc' ? 1 : -1);
    }
    return (a.seq < b.seq ? -1 : 1) * (last === 'asc' ? 1 : -1);
  });
  return hits.map((m) => m.msgId);
}

let s: TestServer;
after(() => s?.close());
before(async () => {
  s = await startTestServer();
});

/** The app a seed runs in, and the source of its msg_ids. */
type Ctx = { api: Api; app: AppRow; base: string; next: () => string };

const stored = (app: AppRow, m: Msg) => buildMessage(app.id, {
  from: m.from, to: m.to, chatType: m.chatType, bodies: [m.body], ext: m.ext, timestamp: m.timestamp, msgId: m.msgId,
});

/** Keeps committing random messages (store inserts and HTTP sends) until stopped; resolves with them. */
function startWriter(c: Ctx, r: Rng): { stop: () => Promise<Msg[]> } {
  const out: Msg[] = [];
  let stopped = false;
  const run = (async () => {
    while (!stopped && out.length < 60) {
      // Groups and rooms must exist to be sent to over HTTP; their messages go straight to the store.
      const m = randomMsg(r, '', 0);
      if (m.chatType !== 'chat' || r.chance(0.6)) {
        const batch = Array.from({ length: r.int(1, 4) }, () => randomMsg(r, c.next(), T0 + r.int(0, SPAN)));
        const seqs = await s.cv.services.store.insertMessages(batch.map((x) => stored(c.app, x)));
        batch.forEach((x, i) => (x.seq = seqs[i]!));
        out.push(...batch);
      } else {
        const res = await c.api.post(`${c.base}/messages?useMsgId=true`, { target_type: 'users', target: [m.to], from: m.from, msg: m.body, ext: m.ext });
        assert.equal(res.status, 200, res.text);
        m.msgId = res.body.data[m.to] as string;
        out.push(m);
      }
      await new Promise((ok) => setTimeout(ok, r.int(0, 2)));
    }
  })();
  let done: Promise<Msg[]> | undefined;
  const finish = async () => {
    stopped = true;
    await run;
    // HTTP sends were stamped and numbered by the server: read their timestamp and seq back.
    const rows = await s.cv.services.store.messagesAfter(c.app.id, 0n, 1_000_000);
    const byId = new Map(rows.map((x) => [x.msgId, x]));
    for (const m of out) {
      if (m.seq !== -1n) continue;
      const row = byId.get(m.msgId);
      assert.ok(row, `sent message ${m.msgId} is stored`);
      m.seq = row.seq;
      m.timestamp = row.timestamp;
    }
    return out;
  };
  return { stop: () => (done ??= finish()) };
}

type Walk = { ids: string[]; watermark: string };

/** Follows the cursor to the end with a random limit per page; `onFirst` runs once page 1 is in. */
async function walk(c: Ctx, r: Rng, ql: string, since: string | undefined, onFirst?: () => void): Promise<Walk> {
  const ids: string[] = [];
  let cursor: string | undefined;
  let watermark: string | undefined;
  // Some walks are bulk walkers with one large page size (the engine reads the next page ahead
  // after pages of 200 or more); the others change their small page size at random.
  const bulk = r.chance(0.25) ? r.int(200, 250) : 0;
  let limit = 0;
  for (let page = 0; ; page++) {
    if (bulk) limit = bulk;
    else if (limit === 0 || r.chance(0.7)) limit = r.int(1, 50);
    const p = `${c.base}/chatmessages?ql=${encodeURIComponent(ql)}&limit=${limit}${since ? `&since=${since}` : ''}${cursor ? `&cursor=${cursor}` : ''}`;
    const res = await c.api.get(p);
    assert.equal(res.status, 200, `${ql}: ${res.text}`);
    const ents = res.body.entities as { msg_id: string }[];
    assert.equal(res.body.count, ents.length);
    assert.ok(ents.length <= limit);
    if (page > 0) assert.ok(ents.length > 0, 'a cursor never leads to an empty page');
    if (res.body.cursor !== undefined) assert.equal(ents.length, limit, 'a page with a cursor is full');
    assert.equal(typeof res.body.watermark, 'string');
    if (watermark !== undefined) assert.equal(res.body.watermark, watermark, 'one watermark per walk');
    watermark = res.body.watermark as string;
    ids.push(...ents.map((e) => e.msg_id));
    if (page === 0) onFirst?.();
    cursor = res.body.cursor as string | undefined;
    if (!cursor) return { ids, watermark };
  }
}

/** A walk with a writer that starts once its first page is in and is stopped (even on failure) at its end. */
async function walkWhileWriting(c: Ctx, r: Rng, ql: string, since: string | undefined, writerSeed: number): Promise<Walk & { during: Msg[] }> {
  let writer: ReturnType<typeof startWriter> | undefined;
  try {
    const w = await walk(c, r, ql, since, () => (writer = startWriter(c, new Rng(writerSeed))));
    return { ...w, during: await writer!.stop() };
  } finally {
    await writer?.stop();
  }
}

function assertWalk(got: string[], want: string[], what: string): void {
  assert.equal(new Set(got).size, got.length, `${what}: no message twice`);
  assert.deepEqual(got, want, what);
}

const SEEDS = [1, 7, 42, 1234, 99991, 31337, 2024, 65537];
const MESSAGES = 300;
const QUERIES = 12;

describe('exactly-once walks under concurrent writes (seeded property test)', () => {
  for (const seed of SEEDS) {
    test(`seed ${seed}: ${MESSAGES} messages, ${QUERIES} random queries, each walked then tailed twice`, async () => {
      const r = new Rng(seed);
      const org = `walk${seed}`;
      const created = await createApp(s, org, 'app');
      const app = (await s.cv.services.store.getApp(org, 'app'))!;
      let counter = 0;
      const c: Ctx = { api: new Api(s.url, created.token), app, base: `/${org}/app`, next: () => String(9_100_000_000_000 + seed * 100_000 + counter++) };

      const all: Msg[] = Array.from({ length: MESSAGES }, () => randomMsg(r, c.next(), T0 + r.int(0, SPAN)));
      for (let i = 0; i < all.length;) {
        const chunk = all.slice(i, (i += r.int(1, 80)));
        const seqs = await s.cv.services.store.insertMessages(chunk.map((m) => stored(app, m)));
        chunk.forEach((m, j) => (m.seq = seqs[j]!));
      }

      for (let qi = 0; qi < QUERIES; qi++) {
        const q = randomQuery(r);
        const what = `seed ${seed} query ${qi} [${q.ql}]`;
        // 1. The full walk equals what was committed before it began, whatever is written meanwhile.
        const expected0 = oracle(q, all);
        // Page sizes come from their own generator, so the queries of a seed do not depend on timing.
        const lr = new Rng(seed * 7919 + qi);
        const w0 = await walkWhileWriting(c, lr, q.ql, undefined, seed * 1000 + qi);
        assertWalk(w0.ids, expected0, `${what}: full walk`);
        assert.ok(w0.during.length > 0);

        // 2. since= its watermark: exactly the matching messages written during walk 1, while more are written.
        const w1 = await walkWhileWriting(c, lr, q.ql, w0.watermark, seed * 1000 + qi + 500);
        assertWalk(w1.ids, oracle(q, w0.during), `${what}: since walk 1`);

        // 3. The next since= picks up exactly what was written during the previous one.
        const w2 = await walk(c, lr, q.ql, w1.watermark);
        assertWalk(w2.ids, oracle(q, w1.during), `${what}: since walk 2`);

        // 4. Nothing new was written: its own watermark gives nothing.
        const w3 = await walk(c, lr, q.ql, w2.watermark);
        assert.deepEqual(w3.ids, [], `${what}: nothing since the last watermark`);

        all.push(...w0.during, ...w1.during);
        // The whole history, read fresh, still agrees with the oracle.
        assertWalk((await walk(c, lr, q.ql, undefined)).ids, oracle(q, all), `${what}: fresh walk over everything`);
      }
    });
  }
});

describe('location within, as the property test first caught it', () => {
  test('finds points across a pole and at the widest longitudes of a circle, and nothing outside it', async () => {
    const created = await createApp(s, 'geo', 'app');
    const app = (await s.cv.services.store.getApp('geo', 'app'))!;
    const places: [string, number, number][] = [['across-north-pole', 88, 180], ['east-edge', 61.26, 18.1], ['inside', 60, 17.9], ['across-south-pole', -88, -10], ['outside', 61.26, 18.3]];
    await s.cv.services.store.insertMessages(places.map(([id, lat, lng], i) => buildMessage(app.id, {
      from: 'geo', to: 'bob', chatType: 'chat', bodies: [{ type: 'loc', lat, lng }], timestamp: T0 + i, msgId: id,
    })));
    const api = new Api(s.url, created.token);
    for (const [lat, lng, radius] of [[80, 0, 1_500_000], [60, 0, 1_000_000], [-80, 170, 1_500_000]] as const) {
      const want = places.filter(([, a, b]) => distanceMeters(a, b, lat, lng) <= radius).map(([id]) => id).sort();
      const r = await api.get(`/geo/app/chatmessages?limit=100&ql=${encodeURIComponent(`location within ${radius} of ${lat}, ${lng}`)}`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual((r.body.entities as { msg_id: string }[]).map((e) => e.msg_id).sort(), want, `within ${radius} of ${lat}, ${lng}`);
    }
  });
});
