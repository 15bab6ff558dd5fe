import { containsQuery } from '../../domain/text-match.js';
import type { CmpOp, QlExpr, QlValue } from '../../ql/ast.js';
import type { MessageSortKey } from '../store.js';
import { EARTH_RADIUS_M } from '../sqlite/sqlite-ql.js';
import { textQuery, tokenRunPattern } from './postgres-message-text.js';

/**
 * Compiles the `ql` AST of a chat-message query to PostgreSQL SQL over `messages` (alias `m`),
 * with the meaning sqlite-ql.ts gives it, row for row and in the same order: the same fields,
 * case rules (text columns fold ASCII like NOCASE, JSON values lower-case like toLowerCase),
 * three-valued logic (a fragment is NULL exactly where SQLite's is), unknown fields match
 * nothing, and sort keys order as SQLite orders their values.
 */

export type PgParam = string | number | bigint | boolean | null | Buffer | string[];

/** Collects parameters; `add` returns the placeholder (`$3`) of a new one. */
export class Params {
  readonly values: PgParam[] = [];
  add(v: PgParam, cast = ''): string {
    this.values.push(v);
    return `$${this.values.length}${cast}`;
  }
}

type ColumnType = 'int' | 'text';
interface Column {
  kind: 'column';
  /** The column as stored (returned as a sort key). */
  col: string;
  type: ColumnType;
}
interface JsonPath {
  kind: 'json';
  /** `$.payload.ext.tag`, lower-case: what cv_json_atoms matches (see sqlite-ql.ts). */
  path: string;
  /** The keys json_extract follows for sorting, with array position 0 after `bodies`. */
  first: (string | number)[];
}
type Field = Column | JsonPath | { kind: 'constant'; value: string } | { kind: 'unknown' };

const COLUMNS: Record<string, Column> = {
  timestamp: { kind: 'column', col: 'm.timestamp', type: 'int' },
  created: { kind: 'column', col: 'm.created', type: 'int' },
  modified: { kind: 'column', col: 'm.created', type: 'int' },
  msg_id: { kind: 'column', col: 'm.msg_id', type: 'text' },
  uuid: { kind: 'column', col: 'm.uuid', type: 'text' },
  from: { kind: 'column', col: 'm.from_user', type: 'text' },
  to: { kind: 'column', col: 'm.to_id', type: 'text' },
  chat_type: { kind: 'column', col: 'm.chat_type', type: 'text' },
  'payload.bodies.type': { kind: 'column', col: 'm.body_type', type: 'text' },
};

/** The record as jsonb, for walks along a path. */
const DOC_JSONB = "convert_from(m.entity, 'UTF8')::jsonb";

/** Lower-cases ASCII letters only: what SQLite's NOCASE and PostgreSQL's lower() under "C" fold. */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (c) => c.toLowerCase());
}

/** A text column as compared and sorted: lower() under the column's "C" collation. */
const folded = (c: Column): string => `lower(${c.col})`;

function resolve(field: string): Field {
  const f = field.toLowerCase();
  const col = COLUMNS[f];
  if (col) return col;
  if (f === 'type') return { kind: 'constant', value: 'chatmessage' };
  if (f.startsWith('payload.') && /^[a-z0-9_.-]+$/.test(f) && !f.includes('..') && !f.endsWith('.')) {
    const parts = f.split('.');
    const first: (string | number)[] = [];
    for (const p of parts) {
      first.push(p);
      if (p === 'bodies') first.push(0);
    }
    return { kind: 'json', path: '$.' + f, first };
  }
  return { kind: 'unknown' };
}

const TRUE = 'TRUE';
const FALSE = 'FALSE';

/** A string literal ending in `*` is a prefix match; `'*'` alone tests that the field exists. */
function prefixOf(v: QlValue, op: CmpOp): string | null {
  if (op !== '=' || v.kind !== 'string' || !v.value.endsWith('*')) return null;
  return v.value.slice(0, -1);
}

function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * A text comparison with a literal that holds NUL, which PostgreSQL text cannot: no stored text
 * holds one either, so in code-point order the literal sits right after its part before the NUL
 * and the comparison can be made with that part. Null when nothing matches; the operator and
 * literal to use otherwise.
 */
function withoutNul(op: CmpOp, lit: string): { op: CmpOp; lit: string } | null {
  const at = lit.indexOf('\0');
  if (at === -1) return { op, lit };
  const head = lit.slice(0, at);
  if (op === '=') return null;
  return { op: op === '<' || op === '<=' ? '<=' : '>', lit: head };
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * An integer column against a number, which SQLite compares exactly (integer or real). A
 * fraction is folded into the bound so the comparison stays on the bigint index.
 */
function compareInt(col: string, op: CmpOp, x: number | bigint, p: Params): string {
  if (typeof x === 'number' && !Number.isInteger(x)) {
    if (Number.isNaN(x)) return FALSE;
    if (x === Infinity) return op === '<' || op === '<=' ? TRUE : FALSE;
    if (x === -Infinity) return op === '>' || op === '>=' ? TRUE : FALSE;
    if (op === '=') return FALSE;
    // col < 1.5  <=>  col <= 1;  col > 1.5  <=>  col >= 2
    if (op === '<' || op === '<=') return compareInt(col, '<=', BigInt(Math.floor(x)), p);
    return compareInt(col, '>=', BigInt(Math.ceil(x)), p);
  }
  const v = BigInt(x);
  if (v > INT64_MAX) return op === '<' || op === '<=' ? TRUE : FALSE;
  if (v < INT64_MIN) return op === '>' || op === '>=' ? TRUE : FALSE;
  return `${col} ${op} ${p.add(v, '::bigint')}`;
}

function compareColumn(c: Column, cmp: CmpOp, v: QlValue, p: Params, appParam: string): string {
  let op = cmp;
  const prefix = prefixOf(v, op);
  if (prefix !== null) {
    if (c.type !== 'text') return prefix === '' ? TRUE : FALSE;
    if (prefix.includes('\0')) return FALSE;
    return `${folded(c)} LIKE ${p.add(likeEscape(asciiLower(prefix)) + '%')}`;
  }
  if (c.type === 'int') {
    if (v.kind === 'int' || v.kind === 'float') return compareInt(c.col, op, v.value, p);
    if (v.kind === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v.value)) return compareInt(c.col, op, Number(v.value), p);
    return FALSE;
  }
  if (v.kind === 'bool') return FALSE;
  const safe = withoutNul(op, asciiLower(v.kind === 'string' ? v.value : v.kind === 'uuid' ? v.value.toLowerCase() : String(v.value)));
  if (!safe) return FALSE;
  const lit = safe.lit;
  op = safe.op;
  // msg_id has its index on message_keys; the seq found there leads to the message.
  if (c.col === 'm.msg_id' && op === '=') {
    return `(m.timestamp, m.seq) IN (SELECT k.timestamp, k.seq FROM message_keys k WHERE k.app_id = ${appParam} AND lower(k.msg_id) = ${p.add(lit)})`;
  }
  return `${folded(c)} ${op} ${p.add(lit, '::text')}`;
}

function compareConstant(value: string, op: CmpOp, v: QlValue): string {
  if (v.kind !== 'string') return FALSE;
  const prefix = prefixOf(v, op);
  const a = value;
  const b = v.value.toLowerCase();
  let ok: boolean;
  if (prefix !== null) ok = a.startsWith(prefix.toLowerCase());
  else ok = op === '=' ? a === b : op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
  return ok ? TRUE : FALSE;
}

/** EXISTS a scalar along the path (arrays walked) that satisfies `cond` (on `a.v`). */
function jsonAtoms(j: JsonPath, cond: string, p: Params): string {
  return `EXISTS (SELECT 1 FROM cv_json_atoms(${DOC_JSONB}, ${p.add(j.path, '::text')}) a(v) WHERE ${cond})`;
}

function compareJson(j: JsonPath, op: CmpOp, v: QlValue, p: Params): string {
  // CASE, not AND: PostgreSQL may evaluate the cast before the type test.
  const typed = (type: string, cond: string) => jsonAtoms(j, `CASE WHEN jsonb_typeof(a.v) = '${type}' THEN ${cond} ELSE false END`, p);
  const prefix = prefixOf(v, op);
  if (prefix !== null) {
    if (prefix.includes('\0')) return FALSE;
    return typed('string', `starts_with(cv_lower(a.v #>> '{}'), ${p.add(prefix.toLowerCase(), '::text')})`);
  }
  switch (v.kind) {
    case 'string':
    case 'uuid': {
      const safe = withoutNul(op, v.value.toLowerCase());
      if (!safe) return FALSE;
      return typed('string', `cv_lower(a.v #>> '{}') COLLATE "C" ${safe.op} ${p.add(safe.lit, '::text')}`);
    }
    case 'int':
    case 'float':
      return typed('number', `a.v::numeric ${op} ${p.add(String(v.value), '::numeric')}`);
    case 'bool':
      return typed('boolean', `a.v::boolean::int ${op} ${p.add(v.value ? 1 : 0, '::int')}`);
  }
}

function compileContains(field: string, value: string, p: Params): string {
  const q = containsQuery(value);
  if (!q) return FALSE;
  const t = textQuery(q);
  if (field.toLowerCase() === 'payload.bodies.msg') {
    // Never NULL (a message without text does not match), as SQLite's `seq IN (fts match)`.
    const overflow = `(m.fts_overflow IS NOT NULL AND cv_phrase(m.fts_overflow, ${p.add(t.phrase, '::text[]')}, ${t.prefix}))`;
    return t.tsquery === null ? overflow : `((m.fts IS NOT NULL AND m.fts @@ ${p.add(t.tsquery, '::tsquery')}) OR ${overflow})`;
  }
  const f = resolve(field);
  const args = (s: string) => `cv_contains(${s}, ${p.add(q.phrase, '::text[]')}, ${q.prefix}, ${q.column === 'uni'}, ${p.add(tokenRunPattern(), '::text')})`;
  if (f.kind === 'column') return args(f.col);
  if (f.kind === 'json') return jsonAtoms(f, `CASE WHEN jsonb_typeof(a.v) = 'string' THEN ${args("a.v #>> '{}'")} ELSE false END`, p);
  return FALSE;
}

function compileWithin(field: string, radius: number, lat: number, lng: number, p: Params): string {
  const f = field.toLowerCase();
  if (f !== 'location' && f !== 'payload.bodies.location' || !(radius >= 0)) return FALSE;
  // The box that holds the whole circle, as sqlite-ql.ts compileWithin computes it; the
  // exact distance decides. Never NULL: a message without a position does not match.
  const d = radius / EARTH_RADIUS_M;
  const deg = 180 / Math.PI;
  const margin = 1e-7;
  const dLat = d * deg + margin;
  const spread = Math.sin(Math.min(d, Math.PI / 2)) / Math.cos(lat / deg);
  const dLng = lat + dLat >= 90 || lat - dLat <= -90 || !(spread < 1) ? 360 : Math.asin(spread) * deg + margin;
  const wraps = lng - dLng < -180 || lng + dLng > 180;
  const [lo, hi] = wraps ? [-1000, 1000] : [lng - dLng, lng + dLng];
  const box = `box(point(${p.add(lo, '::float8')}, ${p.add(lat - dLat, '::float8')}), point(${p.add(hi, '::float8')}, ${p.add(lat + dLat, '::float8')}))`;
  return `(m.lat IS NOT NULL AND point(m.lng, m.lat) <@ ${box} AND cv_distance(m.lat, m.lng, ${p.add(lat, '::float8')}, ${p.add(lng, '::float8')}) <= ${p.add(radius, '::float8')})`;
}

/** Compiles a where expression to a boolean SQL expression; `appParam` is the app's placeholder. */
export function compileWhere(e: QlExpr, p: Params, appParam: string): string {
  switch (e.kind) {
    case 'cmp': {
      const f = resolve(e.field);
      if (f.kind === 'column') return compareColumn(f, e.op, e.value, p, appParam);
      if (f.kind === 'json') return compareJson(f, e.op, e.value, p);
      if (f.kind === 'constant') return compareConstant(f.value, e.op, e.value);
      return FALSE;
    }
    case 'contains':
      return compileContains(e.field, e.value, p);
    case 'within':
      return compileWithin(e.field, e.radius, e.lat, e.lng, p);
    case 'and':
    case 'or':
      return `(${compileWhere(e.left, p, appParam)} ${e.kind === 'and' ? 'AND' : 'OR'} ${compileWhere(e.right, p, appParam)})`;
    case 'not':
      return `(NOT ${compileWhere(e.expr, p, appParam)})`;
  }
}

/**
 * How one sort key orders rows: the (never NULL) expressions to order by, what to select to
 * return the key, and how a returned key becomes the values of those expressions again.
 */
export interface SortPlan {
  /** Expressions in ORDER BY order; a row that is kept has a value for each. */
  cols: string[];
  /** Expressions selected to rebuild the key. */
  select: string[];
  /** The key a caller sees (as SQLite returns it) from the selected values. */
  key(values: unknown[]): unknown;
  /** The values of `cols` for a key, to compare rows with in a keyset. */
  values(key: unknown): PgParam[];
  /** SQL casts of `cols`, for the keyset parameters. */
  casts: string[];
  /** Must hold for a message to have a place in this order (SQLite drops the others). */
  filter: string | null;
  /** A FROM item the expressions need. */
  lateral: string | null;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

/** The sort plan of key number `i` (used to name its FROM item). */
export function sortPlan(key: MessageSortKey, i: number, near: { lat: number; lng: number } | null, p: Params): SortPlan {
  const none = { lateral: null, filter: null };
  if (key.field === '@distance') {
    if (!near) return { ...none, cols: [], select: [], key: () => null, values: () => [], casts: [], filter: FALSE };
    const d = `cv_distance(m.lat, m.lng, ${p.add(near.lat, '::float8')}, ${p.add(near.lng, '::float8')})`;
    return { ...none, cols: [d], select: [d], key: (v) => num(v[0]), values: (k) => [num(k)], casts: ['::float8'], filter: 'm.lat IS NOT NULL' };
  }
  const f = resolve(key.field);
  if (f.kind === 'column' && f.type === 'int') {
    return { ...none, cols: [f.col], select: [f.col], key: (v) => num(v[0]), values: (k) => [String(k)], casts: ['::bigint'] };
  }
  if (f.kind === 'column' && f.col === 'm.body_type') {
    // The one nullable column: SQLite sorts NULL first ascending, last descending.
    return {
      ...none,
      cols: ['(m.body_type IS NOT NULL)', "lower(coalesce(m.body_type, ''))"],
      select: [f.col],
      key: (v) => v[0] ?? null,
      values: (k) => (k === null || k === undefined ? [false, ''] : [true, asciiLower(String(k))]),
      casts: ['::boolean', '::text'],
    };
  }
  if (f.kind === 'column') {
    return { ...none, cols: [folded(f)], select: [f.col], key: (v) => v[0], values: (k) => [asciiLower(String(k))], casts: ['::text'] };
  }
  if (f.kind === 'constant') return { ...none, cols: [], select: [], key: () => f.value, values: () => [], casts: [] };
  if (f.kind === 'json') {
    const j = `j${i}`;
    const path = f.first.map((k) => (typeof k === 'number' ? ` -> ${k}` : ` -> ${p.add(k, '::text')}`)).join('');
    return {
      cols: [`${j}.r`, `${j}.n`, `${j}.t COLLATE "C"`],
      select: [`${j}.r`, `${j}.n::float8`, `${j}.t`],
      key: (v) => (num(v[0]) === 0 ? num(v[1]) : v[2]),
      values: (k) => (typeof k === 'number' ? [0, String(k), ''] : [1, '0', String(k)]),
      casts: ['::int', '::numeric', '::text'],
      filter: `${j}.r IS NOT NULL`,
      lateral: `CROSS JOIN LATERAL cv_json_key(convert_from(m.entity, 'UTF8')::json${path}) ${j}`,
    };
  }
  return { ...none, cols: [], select: [], key: () => null, values: () => [], casts: [], filter: FALSE };
}
