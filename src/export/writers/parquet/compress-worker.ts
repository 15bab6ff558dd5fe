/**
 * The compression worker of the Parquet writer: takes the pages of a row group as the writer's
 * thread cuts them, compresses each into its column's chunk, and answers the chunks at the end of
 * the group. Messages (in order): {page: {column, buffer, from, to, values}}, then {group: true};
 * answers {ack: {column, buffer}} per page, handing the page's buffer back for reuse, and
 * {group: EncodedGroup} per group.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ChunkEncoder, joinChunks, type CodecId } from './pages.js';

export interface WorkerSetup {
  codec: CodecId;
  columns: number;
}

export type ToWorker = { page: { column: number; buffer: ArrayBuffer; from: number; to: number; values: number } } | { group: true };

const port = parentPort!;
const setup = workerData as WorkerSetup;
const encoders = Array.from({ length: setup.columns }, () => new ChunkEncoder(setup.codec));

port.on('message', (m: ToWorker) => {
  if ('page' in m) {
    const { column, buffer, from, to, values } = m.page;
    encoders[column]!.addPage(new Uint8Array(buffer, from, to - from), values);
    port.postMessage({ ack: { column, buffer } }, [buffer]);
    return;
  }
  const group = joinChunks(encoders.map((e) => e.take()));
  port.postMessage({ group }, [group.bytes.buffer as ArrayBuffer]);
});
