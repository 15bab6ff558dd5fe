/**
 * The record shapes of bulk export, from a stored message's record (the `GET /chatmessages`
 * entity): the Easemob hourly-archive record (spec §5.2) and the flat CSV row.
 */

type Json = Record<string, unknown>;

/** The fields of a stored record that export formats use. */
export interface StoredRecord {
  uuid: string;
  type: string;
  created: number;
  modified: number;
  timestamp: number;
  from: string;
  msg_id: string;
  to: string;
  chat_type: string;
  payload: { bodies: Json[]; ext?: Json };
}

/** Parses a stored record. */
export function parseRecord(entity: Buffer | string): StoredRecord {
  return JSON.parse(typeof entity === 'string' ? entity : entity.toString('utf8')) as StoredRecord;
}

/** The §5.2 record of the hourly archives and callbacks: no uuid/type/created, with direction and payload.from/to. */
export function archiveRecord(r: StoredRecord): Json {
  const payload: Json = { bodies: r.payload.bodies };
  if (r.payload.ext !== undefined) payload.ext = r.payload.ext;
  payload.from = r.from;
  payload.to = r.to;
  return { msg_id: r.msg_id, timestamp: r.timestamp, direction: 'outgoing', to: r.to, from: r.from, chat_type: r.chat_type, payload };
}

/** Columns of the CSV export, in order. */
export const CSV_COLUMNS = ['msg_id', 'timestamp', 'from', 'to', 'chat_type', 'type', 'msg', 'url', 'filename', 'lat', 'lng', 'addr', 'length', 'ext'] as const;

function csvField(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  // RFC 4180 quoting; values are kept exactly as stored (no spreadsheet-formula mangling).
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV line (with its newline) for a record: the first body's fields flattened, ext as JSON text. */
export function csvRow(r: StoredRecord): string {
  const b = r.payload.bodies[0] ?? {};
  const vals: unknown[] = [
    r.msg_id, r.timestamp, r.from, r.to, r.chat_type, b.type, b.msg, b.url, b.filename, b.lat, b.lng, b.addr, b.length,
    r.payload.ext,
  ];
  return vals.map(csvField).join(',') + '\r\n';
}

/** The CSV header line. */
export const CSV_HEADER = CSV_COLUMNS.join(',') + '\r\n';
