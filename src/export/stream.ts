import type { ChatQueryEngine, ChatQueryPlan } from './chat-query.js';
import { CSV_HEADER, csvRow, parseRecord } from './records.js';

export type StreamFormat = 'ndjson' | 'csv';
export const STREAM_PAGE = 2000;

const NL = Buffer.from('\n');

/** How a finished stream ends: the number of records and the watermark for the next incremental export. */
export interface StreamEnd {
  count: number;
  watermark: string;
}

/**
 * Every message of a plan as export bytes, one page at a time: a consumer that reads slowly
 * holds back the next page (the caller pipes this into the socket), so memory stays flat however
 * long the stream. ndjson lines are the stored records spliced with newlines, unparsed.
 */
export async function* exportChunks(engine: ChatQueryEngine, plan: ChatQueryPlan, format: StreamFormat, end: (e: StreamEnd) => void): AsyncGenerator<Buffer> {
  let count = 0;
  if (format === 'csv') yield Buffer.from(CSV_HEADER);
  let cur = plan;
  for (;;) {
    if (format === 'ndjson') {
      // Whole records, joined by newlines inside the store: one buffer per page.
      const p = await engine.readSpliced(cur, '\n');
      if (p.count > 0) {
        yield Buffer.concat([p.body, NL]);
        count += p.count;
      }
      if (!p.more || !p.last) break;
      cur = { ...cur, after: p.last };
      continue;
    }
    const rows = await engine.read(cur);
    const hits = rows.slice(0, cur.limit);
    if (hits.length > 0) {
      let s = '';
      for (const h of hits) s += csvRow(parseRecord(h.entity));
      yield Buffer.from(s);
      count += hits.length;
    }
    const last = hits[hits.length - 1];
    if (rows.length <= cur.limit || !last) break;
    cur = { ...cur, after: { keys: last.keys, seq: last.seq } };
  }
  const e = { count, watermark: engine.watermark(plan.app, plan.maxSeq) };
  end(e);
  if (format === 'ndjson') yield Buffer.from(JSON.stringify({ type: 'export_end', complete: true, ...e }) + '\n');
}
