import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { parquetMetadata, parquetReadObjects, snappyUncompress } from 'hyparquet';
import { OutputFile } from '../../src/export/writers/output-file.js';
import { maxCompressedLength, snappyCompress } from '../../src/export/writers/parquet/snappy.js';
import { ParquetFileWriter, type ParquetOptions } from '../../src/export/writers/parquet-writer.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cv-parquet-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;

const COLUMNS = ['msg_id', 'uuid', 'timestamp', 'created', 'from', 'to', 'chat_type', 'type', 'msg', 'url', 'filename', 'lat', 'lng', 'addr', 'length', 'ext', 'payload'];
const STRINGS = new Set(['msg_id', 'uuid', 'from', 'to', 'chat_type', 'type', 'msg', 'url', 'filename', 'addr', 'ext', 'payload']);

// ---------- the documented row of a record (docs/cli.md), computed the slow, obvious way ----------

type Row = Record<string, string | number | bigint | null>;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function str(v: unknown): string | null {
  if (typeof v === 'string') return v;
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;
}
function num(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}
function int64(v: unknown): bigint | null {
  const n = num(v);
  if (n === null) return null;
  const t = BigInt(Math.trunc(n));
  return t >= 2n ** 63n || t < -(2n ** 63n) ? null : t;
}
function int32(v: unknown): number | null {
  const n = num(v);
  return n === null || Math.abs(n) > 2 ** 31 - 1 ? null : Math.round(n);
}
/** Strings as a reader sees them: UTF-8 round trip (a lone surrogate becomes U+FFFD). */
function utf8(s: string | null): string | null {
  return s === null ? null : Buffer.from(s, 'utf8').toString('utf8');
}

function expectedRow(line: string): Row {
  const r = JSON.parse(line) as Record<string, unknown>;
  const payload = r.payload ?? { bodies: [] };
  const p = isObject(payload) ? payload : {};
  const first: unknown = Array.isArray(p.bodies) ? p.bodies[0] : undefined;
  const b = isObject(first) ? first : {};
  return {
    msg_id: utf8(str(r.msg_id) ?? ''), uuid: utf8(str(r.uuid)), timestamp: int64(r.timestamp), created: int64(r.created),
    from: utf8(str(r.from)), to: utf8(str(r.to)), chat_type: utf8(str(r.chat_type)),
    type: utf8(str(b.type)), msg: utf8(str(b.msg)), url: utf8(str(b.url)), filename: utf8(str(b.filename)),
    lat: num(b.lat), lng: num(b.lng), addr: utf8(str(b.addr)), length: int32(b.length),
    ext: p.ext === undefined ? null : utf8(JSON.stringify(p.ext)), payload: utf8(JSON.stringify(payload)),
  };
}

/** Compares JSON text columns by meaning (the writer keeps the stored text), everything else exactly. */
function assertRow(got: Record<string, unknown>, want: Row, what: string): void {
  assert.deepEqual(Object.keys(got), COLUMNS, what);
  for (const c of COLUMNS) {
    if ((c === 'ext' || c === 'payload') && typeof got[c] === 'string' && typeof want[c] === 'string') {
      // Re-serialized on both sides: the same value (-0 is written "0" by JSON.stringify, kept by the writer).
      assert.equal(JSON.stringify(JSON.parse(got[c] as string)), JSON.stringify(JSON.parse(want[c] as string)), `${what}: ${c}`);
    } else {
      assert.deepEqual(got[c], want[c], `${what}: ${c}`);
    }
  }
}

// ---------- records ----------

function entity(i: number, body: Record<string, unknown>, ext?: unknown): string {
  const payload: Record<string, unknown> = { bodies: [body] };
  if (ext !== undefined) payload.ext = ext;
  const ts = 1_750_000_000_000 + i * 997;
  // The stored shape and key order of buildMessage.
  return `{"uuid":"${String(i).padStart(8, '0')}-291d-11e5-8983-63e445f6cc0c","type":"chatmessage","created":${ts + 3},"modified":${ts + 3},"timestamp":${ts},` +
    `"from":${JSON.stringify(`u${i % 17}`)},"msg_id":"${1_000_000_000_000 + i}","to":${JSON.stringify(i % 5 === 0 ? `1411527886490${i % 50}` : `user-${i % 31}`)},` +
    `"chat_type":"${['chat', 'groupchat', 'chatroom'][i % 3]}","payload":${JSON.stringify(payload)}}`;
}

/** Records of every body type, as the stream delivers them. */
function records(n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const kind = i % 7;
    const body =
      kind === 0 ? { type: 'txt', msg: `line, with "quotes"\nand 中文 ${i} 😀` }
      : kind === 1 ? { type: 'img', url: `https://files.example/${i}.png`, filename: `${i}.png`, secret: 's', size: { width: 10, height: 20 } }
      : kind === 2 ? { type: 'audio', url: `https://files.example/${i}.amr`, filename: `${i}.amr`, length: i % 60 }
      : kind === 3 ? { type: 'loc', addr: `西城区 ${i}`, lat: 39.9 + i / 1e5, lng: -116.3 - i / 1e7 }
      : kind === 4 ? { type: 'file', url: `https://files.example/${i}.md`, filename: `${i}.md`, file_length: 1234 }
      : kind === 5 ? { type: 'custom', customEvent: 'gift', customExts: { n: String(i), deep: [1, { x: null, y: [true, false] }] } }
      : { type: 'txt', msg: 'plain text' };
    const ext = i % 4 === 0 ? { priority: i % 5, source: 'bench', tags: ['a', 'b'], nested: { 'quote"key': 'v\\', n: -1.5e-7 } } : i % 11 === 0 ? null : undefined;
    return entity(i, body, ext);
  });
}

/** Lines the fast reader passes on to JSON.parse, or that test its corners. */
const ODD_LINES: string[] = [
  // whitespace between tokens, keys in another order, unknown keys
  `{ "msg_id" : "ws-1", "payload" : { "ext" : { "a" : 1 } , "bodies" : [ { "msg" : "spaced", "type" : "txt" } ] }, "timestamp" : 1700000000001, "extra": [1, 2] }`,
  `{"payload":{"bodies":[{"type":"txt","msg":"keys out of order"}]},"to":"b","from":"a","msg_id":"order-1","timestamp":1700000000002,"created":1700000000003}`,
  // escaped keys (one spelling a known name), duplicate keys (the last counts)
  `{"msg\\u005fid":"escaped-key","timestamp":1,"payload":{"bodies":[{"typ\\u0065":"txt"}]}}`,
  `{"msg_id":"first","msg_id":"dup-2","timestamp":5,"timestamp":6,"payload":{"bodies":[{"type":"a"}],"bodies":[{"type":"b","msg":"second bodies"}],"ext":1,"ext":{"z":2}}}`,
  // numbers as strings and strings as numbers
  `{"msg_id":12345678901234567890,"uuid":true,"timestamp":"1700000000004","created":" 17 ","from":7,"to":null,"chat_type":false,"payload":{"bodies":[{"type":"loc","lat":"39.5","lng":"x","length":"12.5","addr":3.25}]}}`,
  // nulls everywhere
  `{"msg_id":null,"uuid":null,"timestamp":null,"created":null,"from":null,"to":null,"chat_type":null,"payload":{"bodies":[{"type":null,"msg":null,"url":null,"filename":null,"lat":null,"lng":null,"addr":null,"length":null}],"ext":null}}`,
  // no payload, a null payload, a payload that is not an object, bodies that are no array, an empty array, a first body that is no object
  `{"msg_id":"no-payload","timestamp":1700000000005}`,
  `{"msg_id":"null-payload","payload":null}`,
  `{"msg_id":"string-payload","payload":"text"}`,
  `{"msg_id":"bodies-object","payload":{"bodies":{"type":"txt"}}}`,
  `{"msg_id":"bodies-empty","payload":{"bodies":[]}}`,
  `{"msg_id":"body-string","payload":{"bodies":["hello",{"type":"txt"}]}}`,
  `{"msg_id":"body-array","payload":{"bodies":[[1,2,3]]}}`,
  `{}`,
  // numbers at the edges: beyond 2^53, beyond 2^63, negative, fractional, exponents, zero, -0
  `{"msg_id":"big","timestamp":9007199254740993,"created":9223372036854775807000,"payload":{"bodies":[{"length":2147483648,"lat":1e308,"lng":-0}]}}`,
  `{"msg_id":"neg","timestamp":-1700000000000,"created":-0.5,"payload":{"bodies":[{"length":-2147483647.4,"lat":0,"lng":-90.000000000000001}]}}`,
  `{"msg_id":"frac","timestamp":1700000000000.9,"created":1.7e12,"payload":{"bodies":[{"length":3.5,"lat":1E-7,"lng":12345678901234567890.5}]}}`,
  `{"msg_id":"huge-exp","timestamp":1e400,"created":123456789012345678,"payload":{"bodies":[{"length":1e2,"lat":-1e-400}]}}`,
  // unicode: raw, escaped, surrogate pairs, a lone surrogate, escapes of every kind
  `{"msg_id":"uni","from":"Zoë","to":"\\u00e9\\u4f60\\ud83d\\ude00","payload":{"bodies":[{"type":"txt","msg":"😀 你好 \\" \\\\ \\/ \\b\\f\\n\\r\\t \\u0000 end","addr":"\\ud800 lone"}],"ext":{"k":"\\u2028\\u2029"}}}`,
  `{"msg_id":"tab-escape","payload":{"bodies":[{"type":"txt","msg":"a\\tb","url":""}],"ext":""}}`,
];

// ---------- writing and reading ----------

interface WriteOpts extends ParquetOptions {
  rowGroupSize?: number;
  /** Lines per write() call. */
  batch?: number;
  /** Checkpoint after every this many write() calls. */
  checkpointEvery?: number;
}

async function writeParquet(lines: string[], o: WriteOpts = {}): Promise<string> {
  const file = path.join(dir, `t${fileNo++}.parquet`);
  const out = await OutputFile.create(file);
  const w = await ParquetFileWriter.open(out, o.rowGroupSize ?? 10_000, `${file}.rowgroups.jsonl`, undefined, o);
  try {
    const batch = o.batch ?? 37;
    for (let i = 0, calls = 0; i < lines.length; i += batch) {
      const part = lines.slice(i, i + batch);
      await w.write(Buffer.from(part.map((l) => l + '\n').join('')), part.length);
      if (o.checkpointEvery && ++calls % o.checkpointEvery === 0) await w.checkpoint();
    }
    await w.finish();
  } finally {
    await w.close();
  }
  assert.equal(fs.existsSync(`${file}.rowgroups.jsonl`), false, 'the journal is removed with the footer');
  return file;
}

function bytesOf(file: string): ArrayBuffer {
  const b = fs.readFileSync(file);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
}

async function readRows(file: string): Promise<Record<string, unknown>[]> {
  return (await parquetReadObjects({ file: bytesOf(file) })) as Record<string, unknown>[];
}

// ---------- an independent structural check, from the format specification ----------

/** A minimal Thrift compact protocol reader: structs as {fieldId: value}. */
class CompactReader {
  pos: number;
  constructor(private readonly b: Uint8Array, pos = 0) {
    this.pos = pos;
  }
  varint(): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      const c = this.b[this.pos++]!;
      v += (c & 0x7f) * mul;
      if (c < 0x80) return v;
      mul *= 128;
    }
  }
  zigzag(): number {
    const v = this.varint();
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
  }
  value(type: number): unknown {
    switch (type) {
      case 1: return true;
      case 2: return false;
      case 3: return this.b[this.pos++];
      case 4: case 5: case 6: return this.zigzag();
      case 7: {
        const v = Buffer.from(this.b.subarray(this.pos, this.pos + 8)).readDoubleLE();
        this.pos += 8;
        return v;
      }
      case 8: {
        const n = this.varint();
        const v = this.b.subarray(this.pos, this.pos + n);
        this.pos += n;
        return v;
      }
      case 9: case 10: {
        const h = this.b[this.pos++]!;
        const size = h >> 4 === 15 ? this.varint() : h >> 4;
        const et = h & 15;
        return Array.from({ length: size }, () => (et === 1 || et === 2 ? this.b[this.pos++] === 1 : this.value(et)));
      }
      case 12: return this.struct();
      default: throw new Error(`thrift type ${type}`);
    }
  }
  struct(): Record<number, unknown> {
    const out: Record<number, unknown> = {};
    let last = 0;
    for (;;) {
      const h = this.b[this.pos++]!;
      if (h === 0) return out;
      const delta = h >> 4;
      const id = delta === 0 ? this.zigzag() : last + delta;
      out[id] = this.value(h & 15);
      last = id;
    }
  }
}

type S = Record<number, unknown>;
const text = (v: unknown) => Buffer.from(v as Uint8Array).toString('utf8');

/** Definition levels (bit width 1) of `n` values from an RLE/bit-packed hybrid run sequence. */
function decodeLevels(b: Uint8Array, n: number): number[] {
  const r = new CompactReader(b);
  const out: number[] = [];
  while (out.length < n) {
    const h = r.varint();
    if (h % 2 === 0) {
      const v = b[r.pos++]!;
      assert.ok(v <= 1, 'an RLE level is 0 or 1');
      for (let i = 0; i < h / 2; i++) out.push(v);
    } else {
      const groups = (h - 1) / 2;
      for (let g = 0; g < groups; g++) {
        const byte = b[r.pos++]!;
        for (let k = 0; k < 8; k++) out.push((byte >> k) & 1);
      }
    }
  }
  assert.equal(r.pos, b.length, 'the levels take exactly their stated length');
  assert.ok(out.slice(n).every((x) => x === 0), 'only the last run is padded, with zeros');
  return out.slice(0, n);
}

/**
 * Walks the whole file as the spec lays it out: magic, row groups of contiguous column chunks,
 * each a sequence of DataPage v1 pages whose sizes and counts add up to the metadata; returns
 * the number of pages per column chunk.
 */
function checkStructure(file: string, rows: number): { pages: number[][]; meta: S } {
  const b = new Uint8Array(fs.readFileSync(file));
  assert.equal(Buffer.from(b.subarray(0, 4)).toString(), 'PAR1');
  assert.equal(Buffer.from(b.subarray(b.length - 4)).toString(), 'PAR1');
  const metaLen = Buffer.from(b).readUInt32LE(b.length - 8);
  const metaStart = b.length - 8 - metaLen;
  const r = new CompactReader(b, metaStart);
  const meta = r.struct();
  assert.equal(r.pos, b.length - 8, 'FileMetaData fills the footer');
  assert.equal(meta[1], 1, 'version');
  const schema = meta[2] as S[];
  assert.equal(text(schema[0]![4]), 'root');
  assert.equal(schema[0]![5], COLUMNS.length);
  schema.slice(1).forEach((el, i) => {
    const name = COLUMNS[i]!;
    assert.equal(text(el[4]), name);
    assert.equal(el[3], 1, `${name} is OPTIONAL`);
    const type = STRINGS.has(name) ? 6 : name === 'lat' || name === 'lng' ? 5 : name === 'length' ? 1 : 2;
    assert.equal(el[1], type, `${name}: physical type`);
    if (STRINGS.has(name)) {
      assert.equal(el[6], 0, `${name}: converted type UTF8`);
      assert.deepEqual(el[10], { 1: {} }, `${name}: logical type STRING`);
    } else {
      assert.equal(el[6], undefined, `${name}: no converted type (epoch milliseconds stay plain INT64)`);
      assert.equal(el[10], undefined, `${name}: no logical type`);
    }
  });
  assert.equal(meta[3], rows, 'num_rows');
  assert.equal(text(meta[6]).startsWith('chatvault version '), true);
  assert.deepEqual(meta[7], COLUMNS.map(() => ({ 1: {} })), 'column orders: type defined');
  const groups = (meta[4] as S[] | undefined) ?? [];
  let at = 4;
  let total = 0;
  const pages: number[][] = [];
  for (const g of groups) {
    const chunks = g[1] as S[];
    const groupRows = g[3] as number;
    assert.equal(g[5], at, 'a row group starts where the one before ends');
    let compressed = 0;
    let uncompressed = 0;
    const groupPages: number[] = [];
    chunks.forEach((cc, i) => {
      const md = cc[3] as S;
      const name = COLUMNS[i]!;
      assert.deepEqual((md[3] as Uint8Array[]).map(text), [name], 'path_in_schema');
      assert.equal(md[1], schema[i + 1]![1], 'type');
      assert.deepEqual(md[2], [0, 3], 'encodings PLAIN and RLE');
      assert.equal(cc[2], at, 'file_offset is where the chunk starts');
      assert.equal(md[9], at, 'data_page_offset is where the chunk starts');
      assert.equal(md[5], groupRows, 'num_values = rows (flat schema)');
      const codec = md[4] as number;
      let p = at;
      let values = 0;
      let nulls = 0;
      let sizeC = 0;
      let sizeU = 0;
      let n = 0;
      while (values < groupRows) {
        const pr = new CompactReader(b, p);
        const h = pr.struct();
        const headerLen = pr.pos - p;
        assert.equal(h[1], 0, 'DATA_PAGE');
        const dph = h[5] as S;
        assert.equal(dph[2], 0, 'values PLAIN');
        assert.equal(dph[3], 3, 'definition levels RLE');
        const body = b.subarray(pr.pos, pr.pos + (h[3] as number));
        let page = body;
        if (codec === 1) {
          page = new Uint8Array(h[2] as number);
          snappyUncompress(body, page);
        } else {
          assert.equal(codec, 0);
          assert.equal(h[2], h[3]);
        }
        const lvLen = Buffer.from(page).readUInt32LE(0);
        const defs = decodeLevels(page.subarray(4, 4 + lvLen), dph[1] as number);
        const defined = defs.filter((x) => x === 1).length;
        nulls += defs.length - defined;
        // PLAIN values: as many as the defined levels, filling the rest of the page.
        const vals = page.subarray(4 + lvLen);
        if (STRINGS.has(name)) {
          let q = 0;
          for (let k = 0; k < defined; k++) q += 4 + Buffer.from(vals).readUInt32LE(q);
          assert.equal(q, vals.length, `${name}: BYTE_ARRAY values fill the page`);
        } else {
          assert.equal(vals.length, defined * (name === 'length' ? 4 : 8), `${name}: fixed-width values fill the page`);
        }
        values += dph[1] as number;
        sizeC += headerLen + (h[3] as number);
        sizeU += headerLen + (h[2] as number);
        p = pr.pos + (h[3] as number);
        n++;
      }
      assert.equal(values, groupRows, 'page values add up to the rows');
      assert.equal(md[7], sizeC, 'total_compressed_size');
      assert.equal(md[6], sizeU, 'total_uncompressed_size');
      assert.equal((md[12] as S)[3], nulls, 'null_count');
      compressed += sizeC;
      uncompressed += sizeU;
      at = p;
      groupPages.push(n);
    });
    assert.equal(g[6], compressed, 'row group total_compressed_size');
    assert.equal(g[2], uncompressed, 'row group total_byte_size');
    total += groupRows;
    pages.push(groupPages);
  }
  assert.equal(at, metaStart, 'the footer follows the last row group');
  assert.equal(total, rows);
  return { pages, meta };
}

async function roundTrip(lines: string[], o: WriteOpts = {}): Promise<string> {
  const file = await writeParquet(lines, o);
  checkStructure(file, lines.length);
  const rows = await readRows(file);
  assert.equal(rows.length, lines.length);
  rows.forEach((row, i) => assertRow(row, expectedRow(lines[i]!), `row ${i}: ${lines[i]!.slice(0, 80)}`));
  return file;
}

describe('Parquet writer', () => {
  test('records of every body type read back with hyparquet equal their JSON, in every mode', async () => {
    const lines = records(3000);
    const worker = await roundTrip(lines, { rowGroupSize: 1000 });
    const inline = await roundTrip(lines, { rowGroupSize: 1000, worker: false });
    assert.deepEqual(fs.readFileSync(worker), fs.readFileSync(inline), 'the worker changes nothing in the file');
    const plain = await roundTrip(lines, { rowGroupSize: 1000, codec: 'uncompressed' });
    assert.ok(fs.statSync(plain).size > 2 * fs.statSync(worker).size, 'snappy compresses');
  });

  test('odd records: whitespace, key order, escapes, duplicate keys, wrong types, nulls, missing payloads, number edges, unicode', async () => {
    const lines = [...ODD_LINES, ...records(20), ...ODD_LINES];
    await roundTrip(lines, { rowGroupSize: 9, batch: 5 });
    await roundTrip(lines, { worker: false, batch: 1 });
  });

  test('a record that is not JSON fails the write, and no checkpoint follows it', async () => {
    const bad = [
      '{"msg_id":"x",', 'not json', 'null', '{"msg_id":"x","payload":{"bodies":[]}} trailing', '{"msg_id":"x","payload":{"bodies":[]},}',
      // raw control characters in strings, with and without escapes beside them
      '{"msg_id":"x\u0001","payload":{"bodies":[]}}', '{"msg_id":"x\\ty\u0001","payload":{"bodies":[]}}',
      '{"msg_id":"x","payload":{"bodies":[{"msg":"a\\"b\u001f"}]}}', '{"msg_id":"x","payload":{"bodies":[],"ext":{"k":"\u0000"}}}',
      // bad escapes and numbers
      '{"msg_id":"\\x","payload":{"bodies":[]}}', '{"msg_id":"\\u12G4","payload":{"bodies":[]}}', '{"timestamp":01,"payload":{"bodies":[]}}',
      '{"timestamp":1.,"payload":{"bodies":[]}}', '{"timestamp":-,"payload":{"bodies":[]}}', '{"timestamp":1e,"payload":{"bodies":[]}}',
    ];
    // Each one is refused by JSON.parse too ('null' is JSON, but no record).
    for (const line of bad) if (line !== 'null') assert.throws(() => JSON.parse(line), line);
    for (const line of bad) {
      const file = path.join(dir, `bad${fileNo++}.parquet`);
      const w = await ParquetFileWriter.open(await OutputFile.create(file), 100, `${file}.rg`, undefined);
      try {
        await assert.rejects(w.write(Buffer.from(`${records(1)[0]}\n${line}\n`), 2), line);
        // The good record before it is in the columns, but its block was not taken: nothing more becomes durable.
        await assert.rejects(w.checkpoint(), /stopped at a failed write/);
        await assert.rejects(w.finish(), /stopped at a failed write/);
      } finally {
        await w.close();
      }
    }
  });

  test('an empty export is a valid file with the schema and no row group', async () => {
    for (const worker of [true, false]) {
      const file = await writeParquet([], { worker });
      const { meta } = checkStructure(file, 0);
      assert.deepEqual(meta[4], [], 'no row group');
      assert.deepEqual(await readRows(file), []);
      const md = parquetMetadata(bytesOf(file));
      assert.equal(md.num_rows, 0n);
      assert.deepEqual(md.schema.slice(1).map((s) => s.name), COLUMNS);
    }
  });

  test('many row groups: exact group sizes, a checkpoint ending a group early, every row in order', async () => {
    const lines = records(1000);
    const file = await roundTrip(lines, { rowGroupSize: 7, batch: 23, checkpointEvery: 5 });
    const md = parquetMetadata(bytesOf(file));
    const sizes = md.row_groups.map((g) => Number(g.num_rows));
    assert.equal(sizes.reduce((a, b) => a + b, 0), 1000);
    assert.ok(sizes.every((n) => n <= 7));
    // Checkpoints come every 5 × 23 = 115 rows; between them the groups are full.
    assert.ok(sizes.filter((n) => n === 7).length >= 130, sizes.join(','));
    assert.ok(md.row_groups.length > 140);
  });

  test('large strings: pages are cut at about 1 MiB, a 3 MB value is one page, memory stays per page', async () => {
    const big = 'x'.repeat(3_000_000);
    const lines = [
      ...records(50),
      entity(50, { type: 'txt', msg: big }),
      ...Array.from({ length: 400 }, (_, k) => entity(51 + k, { type: 'txt', msg: `${k} ${'多'.repeat(3000)}` })),
      entity(451, { type: 'txt', msg: `${big}😀` }, { big }),
      ...records(10, 452),
    ];
    const file = await roundTrip(lines, { rowGroupSize: 100_000, batch: 3 });
    const { pages } = checkStructure(file, lines.length);
    const msg = COLUMNS.indexOf('msg');
    assert.ok(pages[0]![msg]! >= 5, `msg has several pages (${pages[0]![msg]})`);
    assert.equal(pages[0]![COLUMNS.indexOf('timestamp')], 1);
  });

  test('definition levels of every null pattern and length', async () => {
    // url is set on img/audio/file bodies only; ext on some; lat on loc: vary the pattern and the count.
    for (const n of [1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200]) {
      const lines = Array.from({ length: n }, (_, i) => {
        const withUrl = n % 3 === 0 ? i % 2 === 0 : n % 3 === 1 ? i < n / 2 : (i * 7) % 5 < 2;
        return entity(i, withUrl ? { type: 'img', url: `u${i}` } : { type: 'txt', msg: `m${i}` }, i % 9 === 0 ? { i } : undefined);
      });
      await roundTrip(lines, { batch: 4, worker: n % 2 === 0 });
    }
    // The worst case for the levels' size: runs of exactly one group (8 values), alternating, over a full page.
    const alternating = (i: number) => Math.floor(i / 8) % 2 === 0;
    const worst = Array.from({ length: 20_008 }, (_, i) => (alternating(i) ? `{"msg_id":"${i}","payload":{"bodies":[{"url":"u"}]}}` : `{"msg_id":"${i}","payload":{"bodies":[]}}`));
    const worstFile = await writeParquet(worst, { rowGroupSize: 30_000, batch: 2000 });
    checkStructure(worstFile, worst.length);
    const worstUrls = (await parquetReadObjects({ file: bytesOf(worstFile), columns: ['url'] })) as { url: string | null }[];
    assert.deepEqual(worstUrls.map((r) => r.url), worst.map((_, i) => (alternating(i) ? 'u' : null)));
    // Long runs both ways, crossing the page cut at 20,000 rows.
    const hasUrl = (i: number) => Math.floor(i / 5000) % 2 === 0;
    const lines = Array.from({ length: 45_000 }, (_, i) => (hasUrl(i) ? `{"msg_id":"${i}","payload":{"bodies":[{"url":"u"}]}}` : `{"msg_id":"${i}","payload":{"bodies":[]}}`));
    const file = await writeParquet(lines, { rowGroupSize: 45_000, batch: 1000 });
    const { pages } = checkStructure(file, lines.length);
    assert.equal(pages[0]![COLUMNS.indexOf('url')], 3);
    const urls = (await parquetReadObjects({ file: bytesOf(file), columns: ['url'] })) as { url: string | null }[];
    assert.deepEqual(urls.map((r) => r.url), lines.map((_, i) => (hasUrl(i) ? 'u' : null)));
  });

  test('a checkpointed file cut back and resumed ends with every row once; a journal of another version is refused', async () => {
    const lines = records(500);
    const file = path.join(dir, `resume${fileNo++}.parquet`);
    const journal = `${file}.rowgroups.jsonl`;
    let w = await ParquetFileWriter.open(await OutputFile.create(file), 40, journal, undefined);
    await w.write(Buffer.from(lines.slice(0, 130).map((l) => l + '\n').join('')), 130);
    const mark = await w.checkpoint();
    // Written after the checkpoint, then lost in a crash.
    await w.write(Buffer.from(lines.slice(130, 210).map((l) => l + '\n').join('')), 80);
    await w.checkpoint().catch(() => undefined);
    await w.close();
    fs.appendFileSync(file, 'garbage after the checkpoint');

    w = await ParquetFileWriter.open(await OutputFile.resume(file, mark.bytes), 40, journal, mark.resume);
    await w.write(Buffer.from(lines.slice(130).map((l) => l + '\n').join('')), 370);
    await w.finish();
    await w.close();
    checkStructure(file, 500);
    const rows = await readRows(file);
    rows.forEach((row, i) => assertRow(row, expectedRow(lines[i]!), `row ${i}`));

    // A journal line of the former writer (hyparquet-writer's metadata) is not taken.
    const old = path.join(dir, `old${fileNo++}.parquet`);
    fs.writeFileSync(old, 'PAR1....');
    fs.writeFileSync(`${old}.rg`, '{"columns":[],"num_rows":{"$bigint":"10"}}\n');
    const out = await OutputFile.resume(old, 8);
    await assert.rejects(ParquetFileWriter.open(out, 40, `${old}.rg`, { rowGroups: 1 }), /another chatvault version/);
    await out.close();
  });

  test('snappy: every input decompresses to itself', () => {
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const text = Buffer.from(records(400).join('\n'));
    const inputs: Uint8Array[] = [new Uint8Array(0), Buffer.from('a'), Buffer.from('abcdefghijklmno'), Buffer.from('abcdabcdabcdabcdabcdabcd')];
    for (const n of [16, 17, 100, 65535, 65536, 65537, 200_000]) {
      inputs.push(text.subarray(0, n));
      inputs.push(Buffer.alloc(n, 0x41));
      inputs.push(Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256)));
      inputs.push(Uint8Array.from({ length: n }, () => Math.floor(rnd() * 3)));
      inputs.push(Uint8Array.from({ length: n }, (_, i) => (i % 1000 < 500 ? 0 : Math.floor(rnd() * 256))));
    }
    for (const src of inputs) {
      const dst = new Uint8Array(maxCompressedLength(src.length));
      const n = snappyCompress(src, src.length, dst);
      assert.ok(n <= dst.length);
      const out = new Uint8Array(src.length);
      snappyUncompress(dst.subarray(0, n), out);
      assert.ok(Buffer.from(out).equals(Buffer.from(src)), `length ${src.length}`);
    }
    // Text compresses well; a run of one byte to almost nothing.
    const dst = new Uint8Array(maxCompressedLength(text.length));
    assert.ok(snappyCompress(text, text.length, dst) < text.length / 2);
    assert.ok(snappyCompress(Buffer.alloc(100_000), 100_000, dst) < 5000);
  });
});
