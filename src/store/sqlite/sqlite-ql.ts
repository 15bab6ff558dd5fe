import { containsQuery } from '../../domain/text-match.js';
import type { CmpOp, QlExpr, QlValue } from '../../ql/ast.js';
import type { MessageSortKey } from '../store.js';

/**
 * Compiles the `ql` AST of a chat-message query to SQLite SQL over the `messages` table (alias
 * `m`). Fields with a column of their own use it (and its index); other dotted paths into the
 * stored record go through JSON functions; unknown fields match nothing.
 */

export type SqlParam = string | number | bigint | null;

export interface Fragment {
  sql: string;
  params: SqlParam[];
}

type ColumnType = 'int' | 'text';
interface Column {
  kind: 'column';
  sql: string;
  type: ColumnType;
}
interface JsonPath {
  kind: 'json';
  /** `$.payload.bodies.msg`-style path, lower-case, array positions dropped (see normalizeJsonPath). */
  path: string;
  /** The same path with `[0]` after arrays known to the record shape, for sorting. */
  first: string;
}
type Field = Column | JsonPath | { kind: 'constant'; value: string } | { kind: 'unknown' };

const COLUMNS: Record<string, Column> = {
  timestamp: { kind: 'column', sql: 'm.timestamp', type: 'int' },
  created: { kind: 'column', sql: 'm.created', type: 'int' },
  modified: { kind: 'column', sql: 'm.created', type: 'int' },
  msg_id: { kind: 'column', sql: 'm.msg_id', type: 'text' },
  uuid: { kind: 'column', sql: 'm.uuid', type: 'text' },
  from: { kind: 'column', sql: 'm.from_user', type: 'text' },
  to: { kind: 'column', sql: 'm.to_id', type: 'text' },
  chat_type: { kind: 'column', sql: 'm.chat_type', type: 'text' },
  'payload.bodies.type': { kind: 'column', sql: 'm.body_type', type: 'text' },
};

export const ENTITY_TEXT = 'CAST(m.entity AS TEXT)';

/**
 * A json_tree `fullkey` (`$.payload.bodies[0]."my-key"`) as the path a ql field names:
 * array positions and quotes dropped, lower-cased, as Usergrid indexed property names.
 */
export function normalizeJsonPath(fullkey: string): string {
  return fullkey.replace(/\[\d+\]/g, '').replace(/"/g, '').toLowerCase();
}

function resolve(field: string): Field {
  const f = field.toLowerCase();
  const col = COLUMNS[f];
  if (col) return col;
  if (f === 'type') return { kind: 'constant', value: 'chatmessage' };
  if (f.startsWith('payload.') && /^[a-z0-9_.-]+$/.test(f) && !f.includes('..') && !f.endsWith('.')) {
    const parts = f.split('.');
    const path = '$.' + parts.join('.');
    const quoted = parts.map((p) => (/^[a-z_][a-z0-9_]*$/.test(p) ? p : `"${p}"`));
    const first = '$.' + quoted.map((p) => (p === 'bodies' ? 'bodies[0]' : p)).join('.');
    return { kind: 'json', path, first };
  }
  return { kind: 'unknown' };
}

const NOTHING: Fragment = { sql: '0', params: [] };

function opSql(op: CmpOp): string {
  return op;
}

function literal(v: QlValue): SqlParam {
  switch (v.kind) {
    case 'string':
      return v.value;
    case 'int':
      return v.value;
    case 'float':
      return v.value;
    case 'bool':
      return v.value ? 1 : 0;
    case 'uuid':
      return v.value.toLowerCase();
  }
}

/** A string literal ending in `*` is a prefix match; `'*'` alone tests that the field exists. */
function prefixOf(v: QlValue, op: CmpOp): string | null {
  if (op !== '=' || v.kind !== 'string' || !v.value.endsWith('*')) return null;
  return v.value.slice(0, -1);
}

function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function compareColumn(c: Column, op: CmpOp, v: QlValue): Fragment {
  const prefix = prefixOf(v, op);
  if (prefix !== null) {
    if (c.type !== 'text') return prefix === '' ? { sql: '1', params: [] } : NOTHING;
    return { sql: `${c.sql} LIKE ? ESCAPE '\\'`, params: [likeEscape(prefix) + '%'] };
  }
  if (c.type === 'int') {
    if (v.kind === 'int' || v.kind === 'float') return { sql: `${c.sql} ${opSql(op)} ?`, params: [literal(v)] };
    if (v.kind === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v.value)) return { sql: `${c.sql} ${opSql(op)} ?`, params: [Number(v.value)] };
    return NOTHING;
  }
  // Text columns carry COLLATE NOCASE, so comparisons ignore case and keep using the index.
  if (v.kind === 'bool') return NOTHING;
  const lit = v.kind === 'string' ? v.value : String(literal(v));
  return { sql: `${c.sql} ${opSql(op)} ?`, params: [lit] };
}

function compareConstant(value: string, op: CmpOp, v: QlValue): Fragment {
  if (v.kind !== 'string') return NOTHING;
  const prefix = prefixOf(v, op);
  const a = value;
  const b = v.value.toLowerCase();
  let ok: boolean;
  if (prefix !== null) ok = a.startsWith(prefix.toLowerCase());
  else ok = op === '=' ? a === b : op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
  return { sql: ok ? '1' : '0', params: [] };
}

/**
 * A path into the record matches when any value found along it (arrays are walked) compares true,
 * as Usergrid indexed every array element under the same path.
 */
function compareJson(j: JsonPath, op: CmpOp, v: QlValue): Fragment {
  const atoms = `SELECT t.atom AS a, t.type AS ty FROM json_tree(${ENTITY_TEXT}, '$.payload') t WHERE cv_path(t.fullkey) = ? AND t.type NOT IN ('object', 'array')`;
  const prefix = prefixOf(v, op);
  if (prefix !== null) {
    return { sql: `EXISTS (${atoms} AND t.type = 'text' AND cv_lower(t.atom) LIKE ? ESCAPE '\\')`, params: [j.path, likeEscape(prefix.toLowerCase()) + '%'] };
  }
  switch (v.kind) {
    case 'string':
    case 'uuid':
      return { sql: `EXISTS (${atoms} AND t.type = 'text' AND cv_lower(t.atom) ${opSql(op)} ?)`, params: [j.path, String(literal(v)).toLowerCase()] };
    case 'int':
    case 'float':
      return { sql: `EXISTS (${atoms} AND t.type IN ('integer', 'real') AND t.atom ${opSql(op)} ?)`, params: [j.path, literal(v)] };
    case 'bool':
      return { sql: `EXISTS (${atoms} AND t.type IN ('true', 'false') AND t.atom ${opSql(op)} ?)`, params: [j.path, literal(v)] };
  }
}

function compileContains(field: string, value: string): Fragment {
  const q = containsQuery(value);
  if (!q) return NOTHING;
  const f = resolve(field);
  if (field.toLowerCase() === 'payload.bodies.msg') {
    const phrase = `"${q.phrase.join(' ').replace(/"/g, '""')}"${q.prefix ? ' *' : ''}`;
    return { sql: 'm.seq IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)', params: [`{${q.column}} : ${phrase}`] };
  }
  const qjson = JSON.stringify(q);
  if (f.kind === 'column') return { sql: `cv_contains(${f.sql}, ?)`, params: [qjson] };
  if (f.kind === 'json') {
    return {
      sql: `EXISTS (SELECT 1 FROM json_tree(${ENTITY_TEXT}, '$.payload') t WHERE cv_path(t.fullkey) = ? AND t.type = 'text' AND cv_contains(t.atom, ?))`,
      params: [f.path, qjson],
    };
  }
  return NOTHING;
}

// Great-circle distance on Usergrid's sphere (radius 6,378,135 m).
export const EARTH_RADIUS_M = 6378135;

/** Distance in metres between two points, the function behind `within` and nearest-first order. */
export function distanceMeters(lat1: number, lng1: number, lat2: number, lng2: number): number {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLng = (lng2 - lng1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLng / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

function compileWithin(field: string, radius: number, lat: number, lng: number): Fragment {
  const f = field.toLowerCase();
  if (f !== 'location' && f !== 'payload.bodies.location' || !(radius >= 0)) return NOTHING;
  // The R*Tree narrows to a bounding box; the exact distance decides. The box must hold the whole
  // circle: its longitudes reach asin(sin d / cos lat), wider than d / cos lat away from the
  // equator, and every longitude once the circle holds a pole (bounding coordinates as in
  // Matuschek, "Finding Points Within a Distance of a Latitude/Longitude"). The margin covers rounding.
  const d = radius / EARTH_RADIUS_M;
  const deg = 180 / Math.PI;
  const margin = 1e-7;
  const dLat = d * deg + margin;
  const spread = Math.sin(Math.min(d, Math.PI / 2)) / Math.cos(lat / deg);
  const dLng = lat + dLat >= 90 || lat - dLat <= -90 || !(spread < 1) ? 360 : Math.asin(spread) * deg + margin;
  const box = lng - dLng < -180 || lng + dLng > 180
    ? { sql: 'SELECT id FROM messages_geo WHERE min_lat <= ? AND max_lat >= ?', params: [lat + dLat, lat - dLat] }
    : { sql: 'SELECT id FROM messages_geo WHERE min_lat <= ? AND max_lat >= ? AND min_lng <= ? AND max_lng >= ?', params: [lat + dLat, lat - dLat, lng + dLng, lng - dLng] };
  return {
    sql: `(m.seq IN (${box.sql}) AND cv_distance(m.lat, m.lng, ?, ?) <= ?)`,
    params: [...box.params, lat, lng, radius],
  };
}

/** Compiles a where expression to a boolean SQL fragment. */
export function compileWhere(e: QlExpr): Fragment {
  switch (e.kind) {
    case 'cmp': {
      const f = resolve(e.field);
      if (f.kind === 'column') return compareColumn(f, e.op, e.value);
      if (f.kind === 'json') return compareJson(f, e.op, e.value);
      if (f.kind === 'constant') return compareConstant(f.value, e.op, e.value);
      return NOTHING;
    }
    case 'contains':
      return compileContains(e.field, e.value);
    case 'within':
      return compileWithin(e.field, e.radius, e.lat, e.lng);
    case 'and':
    case 'or': {
      const l = compileWhere(e.left);
      const r = compileWhere(e.right);
      return { sql: `(${l.sql} ${e.kind === 'and' ? 'AND' : 'OR'} ${r.sql})`, params: [...l.params, ...r.params] };
    }
    case 'not': {
      const x = compileWhere(e.expr);
      return { sql: `(NOT ${x.sql})`, params: x.params };
    }
  }
}

/** The SQL expression a sort key orders by (strings compare without case). */
export function sortExpression(key: MessageSortKey, near: { lat: number; lng: number } | null): Fragment {
  if (key.field === '@distance') {
    if (!near) return { sql: 'NULL', params: [] };
    return { sql: 'cv_distance(m.lat, m.lng, ?, ?)', params: [near.lat, near.lng] };
  }
  const f = resolve(key.field);
  if (f.kind === 'column') return { sql: f.sql, params: [] };
  if (f.kind === 'constant') return { sql: `'${f.value}'`, params: [] };
  if (f.kind === 'json') {
    const x = `json_extract(${ENTITY_TEXT}, '${f.first}')`;
    return { sql: `(CASE WHEN typeof(${x}) = 'text' THEN cv_lower(${x}) ELSE ${x} END)`, params: [] };
  }
  return { sql: 'NULL', params: [] };
}
