/**
 * Most messages committed together by default (GROUP_COMMIT_MAX): a busy SQLite writer commits
 * everything that waits at once, because each commit rewrites every index page it touches.
 */
export const DEFAULT_GROUP_COMMIT_MAX = 2048;

/**
 * Takes the writes of the next group commit off the front of a queue: whole writes, in arrival
 * order, up to `max` messages (a single larger write still goes alone).
 */
export function takeBatch<W extends { messages: unknown[] }>(pending: W[], max: number): W[] {
  const batch: W[] = [];
  let n = 0;
  while (pending.length > 0 && (n === 0 || n + pending[0]!.messages.length <= max)) {
    const w = pending.shift()!;
    batch.push(w);
    n += w.messages.length;
  }
  return batch;
}
