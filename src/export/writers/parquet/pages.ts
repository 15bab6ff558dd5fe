/**
 * Column chunks from finished pages: each DataPage v1 body (levels and values) compressed and put
 * after its page header. Used in the writer's thread, or in the compression worker.
 */
import { maxCompressedLength, snappyCompress } from './snappy.js';
import { CompactWriter } from './thrift.js';

/** Compression codecs (parquet.thrift `CompressionCodec`). */
export const Codec = { UNCOMPRESSED: 0, SNAPPY: 1 } as const;
export type CodecId = (typeof Codec)[keyof typeof Codec];

export const ENCODING_PLAIN = 0;
export const ENCODING_RLE = 3;
const PAGE_DATA = 0;

/** The bytes of a column chunk and its sizes, page headers included. */
export interface EncodedChunk {
  bytes: Uint8Array;
  uncompressed: number;
  compressed: number;
}

/** The column chunks of a row group, one after the other, and the sizes of each. */
export interface EncodedGroup {
  bytes: Uint8Array;
  sizes: { uncompressed: number; compressed: number }[];
}

/** The chunks of a row group as one run of bytes (a fresh ArrayBuffer, transferable). */
export function joinChunks(chunks: EncodedChunk[]): EncodedGroup {
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.bytes.length, 0));
  let at = 0;
  for (const c of chunks) {
    bytes.set(c.bytes, at);
    at += c.bytes.length;
  }
  return { bytes, sizes: chunks.map((c) => ({ uncompressed: c.uncompressed, compressed: c.compressed })) };
}

let zipBuf: Uint8Array = new Uint8Array(maxCompressedLength(1 << 20));
const header = new CompactWriter(64);

export class ChunkEncoder {
  private chunk = new Uint8Array(64 * 1024);
  private len = 0;
  private uncompressed = 0;

  constructor(private readonly codec: CodecId) {}

  /** Appends a data page of `values` values (nulls included) whose body is `page`. */
  addPage(page: Uint8Array, values: number): void {
    const size = page.length;
    let body = page;
    if (this.codec === Codec.SNAPPY) {
      if (zipBuf.length < maxCompressedLength(size)) zipBuf = new Uint8Array(maxCompressedLength(size));
      body = zipBuf.subarray(0, snappyCompress(page, size, zipBuf));
    }
    header.reset();
    header.begin();
    header.i32(1, PAGE_DATA);
    header.i32(2, size);
    header.i32(3, body.length);
    header.struct(5); // DataPageHeader
    header.i32(1, values);
    header.i32(2, ENCODING_PLAIN);
    header.i32(3, ENCODING_RLE); // definition levels
    header.i32(4, ENCODING_RLE); // repetition levels (none: the schema is flat)
    header.end();
    header.end();
    const h = header.bytes();
    const need = this.len + h.length + body.length;
    if (need > this.chunk.length) {
      const next = new Uint8Array(Math.max(this.chunk.length * 2, need));
      next.set(this.chunk.subarray(0, this.len));
      this.chunk = next;
    }
    this.chunk.set(h, this.len);
    this.chunk.set(body, this.len + h.length);
    this.len = need;
    this.uncompressed += h.length + size;
  }

  /** Ends the chunk; its bytes are a view that the next page overwrites. */
  take(): EncodedChunk {
    const bytes = this.chunk.subarray(0, this.len);
    const out = { bytes, uncompressed: this.uncompressed, compressed: this.len };
    this.len = 0;
    this.uncompressed = 0;
    return out;
  }
}
