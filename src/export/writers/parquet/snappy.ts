/**
 * A Snappy compressor (raw format, no framing), as Parquet's SNAPPY codec expects. Written from
 * the Snappy format description: a varint of the uncompressed length, then literals and
 * back-references (copies). The input is compressed in independent 64 KiB blocks, so every copy
 * offset fits the two-byte form, and matches are found greedily with a hash table of 4-byte
 * sequences.
 */

const BLOCK = 1 << 16;
const HASH_BITS = 14;
const MIN_INPUT = 16;
// Never read 4 bytes starting past end - MARGIN: leaves room to compare and extend safely.
const MARGIN = 15;

const table = new Uint16Array(1 << HASH_BITS);

/** The largest output `compress` can produce for `n` input bytes. */
export function maxCompressedLength(n: number): number {
  return 32 + n + Math.floor(n / 6);
}


function hash(u: number): number {
  return Math.imul(u, 0x1e35a7bd) >>> (32 - HASH_BITS);
}

function literal(src: Uint8Array, from: number, to: number, dst: Uint8Array, d: number): number {
  const n = to - from;
  const m = n - 1;
  if (m < 60) dst[d++] = m << 2;
  else if (m < 0x100) {
    dst[d++] = 60 << 2;
    dst[d++] = m;
  } else if (m < 0x10000) {
    dst[d++] = 61 << 2;
    dst[d++] = m & 0xff;
    dst[d++] = m >>> 8;
  } else if (m < 0x1000000) {
    dst[d++] = 62 << 2;
    dst[d++] = m & 0xff;
    dst[d++] = (m >>> 8) & 0xff;
    dst[d++] = m >>> 16;
  } else {
    dst[d++] = 63 << 2;
    dst[d++] = m & 0xff;
    dst[d++] = (m >>> 8) & 0xff;
    dst[d++] = (m >>> 16) & 0xff;
    dst[d++] = m >>> 24;
  }
  if (n < 32) {
    for (let i = from; i < to; i++) dst[d++] = src[i]!;
    return d;
  }
  dst.set(src.subarray(from, to), d);
  return d + n;
}

/** A copy of `len` bytes from `offset` back (offset < 65536). */
function copy(offset: number, len: number, dst: Uint8Array, d: number): number {
  // Two-byte-offset copies hold 1..64 bytes; keep the last piece at 4 or more for the short form.
  while (len >= 68) {
    dst[d++] = (63 << 2) | 2;
    dst[d++] = offset & 0xff;
    dst[d++] = offset >>> 8;
    len -= 64;
  }
  if (len > 64) {
    dst[d++] = (59 << 2) | 2;
    dst[d++] = offset & 0xff;
    dst[d++] = offset >>> 8;
    len -= 60;
  }
  if (len < 12 && offset < 2048) {
    dst[d++] = ((offset >>> 8) << 5) | ((len - 4) << 2) | 1;
    dst[d++] = offset & 0xff;
  } else {
    dst[d++] = ((len - 1) << 2) | 2;
    dst[d++] = offset & 0xff;
    dst[d++] = offset >>> 8;
  }
  return d;
}

// The remainder of a block after its last copy, as one literal. (A function of its own: reached only
// on leaving the match loop, which optimized code of that loop would have no type feedback for.)
function rest(src: Uint8Array, emit: number, end: number, dst: Uint8Array, d: number): number {
  return emit < end ? literal(src, emit, end, dst, d) : d;
}

function block(src: Uint8Array, dv: DataView, start: number, end: number, dst: Uint8Array, d: number): number {
  let emit = start;
  if (end - start < MIN_INPUT) return rest(src, emit, end, dst, d);
  table.fill(0);
  const limit = end - MARGIN;
  let ip = start + 1;
  let h = hash(dv.getInt32(ip, true));
  for (;;) {
    // Look for a 4-byte match, stepping further the longer nothing matches.
    let skip = 32;
    let next = ip;
    let cand = 0;
    do {
      ip = next;
      next = ip + (skip++ >> 5);
      if (next > limit) return rest(src, emit, end, dst, d);
      cand = start + table[h]!;
      table[h] = ip - start;
      h = hash(dv.getInt32(next, true));
    } while (dv.getInt32(ip, true) !== dv.getInt32(cand, true));
    d = literal(src, emit, ip, dst, d);
    // Emit copies for as long as the bytes at the end of one match start another.
    let u: number;
    do {
      let a = cand + 4;
      let b = ip + 4;
      while (b + 4 <= end && dv.getInt32(a, true) === dv.getInt32(b, true)) {
        a += 4;
        b += 4;
      }
      while (b < end && src[a] === src[b]) {
        a++;
        b++;
      }
      d = copy(ip - cand, b - ip, dst, d);
      ip = b;
      emit = ip;
      if (ip >= limit) return rest(src, emit, end, dst, d);
      table[hash(dv.getInt32(ip - 1, true))] = ip - 1 - start;
      u = dv.getInt32(ip, true);
      const hh = hash(u);
      cand = start + table[hh]!;
      table[hh] = ip - start;
    } while (u === dv.getInt32(cand, true));
    ip++;
    h = hash(dv.getInt32(ip, true));
  }
}

/**
 * Compresses `src[0, n)` into `dst` at `at` (room: `maxCompressedLength(n)`); returns the
 * offset after the last byte written.
 */
export function snappyCompress(src: Uint8Array, n: number, dst: Uint8Array, at = 0): number {
  let d = at;
  let v = n;
  while (v >= 128) {
    dst[d++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  dst[d++] = v;
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  for (let s = 0; s < n; s += BLOCK) d = block(src, dv, s, Math.min(n, s + BLOCK), dst, d);
  return d;
}
