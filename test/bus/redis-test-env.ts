import { Redis } from 'ioredis';

/** The Redis the tests may use (CI runs one at 127.0.0.1:6379). */
export const REDIS_TEST_URL = process.env.REDIS_URL_TEST || 'redis://127.0.0.1:6379';

/** CI sets CHATVAULT_REQUIRE_SERVICES=1: a missing Redis is then a failure, not a skip. */
export const REDIS_REQUIRED = process.env.CHATVAULT_REQUIRE_SERVICES === '1';

/** Null when Redis answers PING, else why not. */
export async function redisProblem(url = REDIS_TEST_URL): Promise<string | null> {
  const r = new Redis(url, { lazyConnect: true, retryStrategy: () => null, connectTimeout: 2000, maxRetriesPerRequest: 0 });
  let first: Error | undefined;
  r.on('error', (e: Error) => (first ??= e));
  try {
    await r.connect();
    await r.ping();
    return null;
  } catch (e) {
    return (first ?? (e as Error)).message;
  } finally {
    r.disconnect();
  }
}

/**
 * node:test's `skip` for the tests that need Redis: false when it answers, or when it is required
 * (the tests then run and fail); otherwise the reason, which the test report shows.
 */
export async function redisSkip(): Promise<string | false> {
  const problem = await redisProblem();
  if (problem === null || REDIS_REQUIRED) return false;
  return `Redis at ${REDIS_TEST_URL} is unreachable (${problem}); start one or set REDIS_URL_TEST`;
}

/** A raw connection for looking at Redis from outside the bus. */
export function rawRedis(): Redis {
  const r = new Redis(REDIS_TEST_URL, { lazyConnect: true, retryStrategy: () => null });
  r.on('error', () => {});
  return r;
}

/** A namespace no other test run uses. */
export function uniqueNamespace(tag: string): string {
  return `test-${tag}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Resolves when `check` returns true, polling; rejects with `what` after `ms`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  // performance.now(), not Date.now(): tests that freeze Date with mock timers wait too.
  const end = performance.now() + ms;
  for (;;) {
    if (await check()) return;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
