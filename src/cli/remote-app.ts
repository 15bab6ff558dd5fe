import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { VERSION } from '../version.js';
import { CliError, EXIT } from './cli-error.js';

/** Where and as whom to export, and how hard to try. */
export interface RemoteConfig {
  url: string;
  org: string;
  app: string;
  clientId: string;
  clientSecret: string;
  /** Attempts after the first for a request that failed transiently (network, 5xx, 429). */
  retries: number;
  /** The first back-off delay; each retry doubles it (at most 30 s). */
  retryDelayMs: number;
  /** Ctrl-C: aborts requests in flight and back-off sleeps. */
  signal: AbortSignal;
  /** Told about each retry, for the progress display. */
  onRetry?: (why: string) => void;
}

/** Some records of a walk, in the paged entity shape, as JSON lines. */
export interface Batch {
  /** Complete records, each a line ending with `\n`. */
  lines: Buffer;
  count: number;
  lastMsgId: string;
  /** Paged walks: the cursor of the page after this one; undefined after the last page. */
  cursor?: string | undefined;
  /** The largest `timestamp` of the batch, when the batch was parsed (paged walks). */
  maxTimestamp: number | null;
  /** The walk's watermark, when the server gives one with the batch. */
  watermark?: string | undefined;
}

/** What a complete walk ends with. */
export interface WalkEnd {
  /** Token for `since=` on chatvault; absent on other servers. */
  watermark: string | undefined;
}

/** Thrown when the run was interrupted (Ctrl-C) while waiting on the server. */
export class Interrupted extends Error {}

class Transient extends Error {
  constructor(message: string, readonly retryAfterMs = 0) {
    super(message);
  }
}

const IDLE_MS = 120_000;
const NL = 10;
const END_PREFIX = Buffer.from('{"type":"export_end"');

interface ErrorBody {
  error?: unknown;
  error_description?: unknown;
}

function describe(status: number, body: ErrorBody | undefined): string {
  const code = typeof body?.error === 'string' ? body.error : '';
  const desc = typeof body?.error_description === 'string' ? body.error_description : '';
  return [`HTTP ${status}`, code, desc].filter((x) => x !== '').join(' ');
}

function causeOf(e: unknown): string {
  const err = e as { cause?: { code?: unknown; message?: unknown }; message?: unknown };
  const code = err?.cause?.code;
  if (typeof code === 'string') return code;
  return String(err?.cause?.message ?? err?.message ?? e);
}

function retryAfter(header: string | null): number {
  const v = Number(header);
  return Number.isFinite(v) && v > 0 ? Math.min(v, 60) * 1000 : 0;
}

/** Reads the error body of a failed response (the Easemob/Usergrid shape, when it is JSON). */
async function errorBody(res: Response): Promise<ErrorBody | undefined> {
  try {
    return (await res.json()) as ErrorBody;
  } catch {
    return undefined;
  }
}

function msgIdOf(line: Buffer): string {
  const rec = JSON.parse(line.toString('utf8')) as { msg_id?: unknown };
  return String(rec.msg_id ?? '');
}

/**
 * A client of one app on an Easemob-compatible server: the app token, chatvault detection, the
 * streaming export and the paged `chatmessages` walk, with retries (exponential back-off) for
 * transient failures and one token refresh on 401.
 */
export class RemoteApp {
  private token = '';
  private readonly base: string;

  constructor(private readonly cfg: RemoteConfig) {
    this.base = `${cfg.url.replace(/\/+$/, '')}/${encodeURIComponent(cfg.org)}/${encodeURIComponent(cfg.app)}`;
  }

  /** Gets an app token (spec §1.1): exit 3 when the credentials or the app are refused. */
  async authenticate(): Promise<void> {
    const res = await this.retrying(() =>
      this.fetch(`${this.base}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ grant_type: 'client_credentials', client_id: this.cfg.clientId, client_secret: this.cfg.clientSecret }),
      }),
    );
    const body = (await res.json().catch(() => undefined)) as { access_token?: unknown } | undefined;
    if (typeof body?.access_token !== 'string') throw new CliError(EXIT.failed, `the token answer of ${this.base}/token has no access_token`);
    this.token = body.access_token;
  }

  /** The chatvault version when the server is chatvault (`GET /status`), else null. */
  async chatvaultVersion(): Promise<string | null> {
    try {
      const res = await fetch(`${this.cfg.url.replace(/\/+$/, '')}/status`, { signal: this.cfg.signal, headers: { accept: 'application/json' } });
      if (!res.ok) return null;
      const body = (await res.json()) as { status?: unknown; version?: unknown };
      return body.status === 'ok' && typeof body.version === 'string' ? body.version : null;
    } catch {
      if (this.cfg.signal.aborted) throw new Interrupted('interrupted');
      return null;
    }
  }

  /**
   * The streaming export (ndjson) in storage order. A broken connection is resumed right after
   * the last record received (`after=`), so no record is lost or repeated.
   */
  async *stream(q: { ql: string; since: string | undefined; after: string | undefined }): AsyncGenerator<Batch, WalkEnd> {
    let after = q.after;
    let failures = 0;
    for (;;) {
      const params = new URLSearchParams({ format: 'ndjson' });
      if (q.ql) params.set('ql', q.ql);
      if (q.since) params.set('since', q.since);
      if (after) params.set('after', after);
      let received = 0;
      try {
        let idle = new AbortController();
        const res = await this.retrying(() => this.authedStream(`${this.base}/chatmessages/export?${params}`, () => (idle = new AbortController())));
        let carry: Buffer = Buffer.alloc(0);
        const onAbort = () => idle.abort();
        this.cfg.signal.addEventListener('abort', onAbort, { once: true });
        if (this.cfg.signal.aborted) idle.abort();
        const timer = setTimeout(() => idle.abort(), IDLE_MS);
        try {
          for await (const chunk of res as AsyncIterable<Buffer>) {
            timer.refresh();
            const buf = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
            const cut = buf.lastIndexOf(NL);
            if (cut < 0) {
              carry = buf;
              continue;
            }
            carry = Buffer.from(buf.subarray(cut + 1));
            let lines = buf.subarray(0, cut + 1);
            const lastStart = lines.lastIndexOf(NL, lines.length - 2) + 1;
            let end: { count: number; watermark: string } | undefined;
            if (lines.subarray(lastStart, lastStart + END_PREFIX.length).equals(END_PREFIX)) {
              end = JSON.parse(lines.subarray(lastStart).toString('utf8')) as { count: number; watermark: string };
              lines = lines.subarray(0, lastStart);
            }
            if (lines.length > 0) {
              let count = 0;
              for (let i = lines.indexOf(NL); i >= 0; i = lines.indexOf(NL, i + 1)) count++;
              const prev = lines.lastIndexOf(NL, lines.length - 2) + 1;
              const lastMsgId = msgIdOf(lines.subarray(prev, lines.length - 1));
              received += count;
              after = lastMsgId;
              failures = 0;
              yield { lines, count, lastMsgId, maxTimestamp: null, watermark: end?.watermark };
            }
            if (end) {
              if (end.count !== received) throw new CliError(EXIT.failed, `the stream said ${end.count} records but ${received} arrived`);
              return { watermark: end.watermark };
            }
          }
        } finally {
          clearTimeout(timer);
          this.cfg.signal.removeEventListener('abort', onAbort);
        }
        throw new Transient(idle.signal.aborted ? `no data for ${IDLE_MS / 1000} s` : 'the stream ended before its end line');
      } catch (e) {
        const t = this.transient(e);
        if (++failures > this.cfg.retries) throw this.giveUp(t);
        await this.backoff(t, failures);
      }
    }
  }

  /** The paged walk of `GET chatmessages` (spec §5.1) with `ql`, `limit` and `cursor`. */
  async *pages(q: { ql: string; since: string | undefined; cursor: string | undefined; limit: number }): AsyncGenerator<Batch, WalkEnd> {
    let cursor = q.cursor;
    let watermark: string | undefined;
    for (;;) {
      const params = new URLSearchParams({ limit: String(q.limit) });
      if (q.ql) params.set('ql', q.ql);
      if (q.since) params.set('since', q.since);
      if (cursor) params.set('cursor', cursor);
      const page = await this.retrying(async () => {
        const res = await this.authed(`${this.base}/chatmessages?${params}`);
        try {
          return (await res.json()) as { entities?: unknown; cursor?: unknown; watermark?: unknown };
        } catch (e) {
          throw new Transient(`a page was not JSON: ${causeOf(e)}`);
        }
      });
      const entities = Array.isArray(page.entities) ? (page.entities as Record<string, unknown>[]) : [];
      const next = typeof page.cursor === 'string' && page.cursor !== '' ? page.cursor : undefined;
      if (typeof page.watermark === 'string') watermark = page.watermark;
      if (next !== undefined && next === cursor) throw new CliError(EXIT.failed, 'the server answered the same cursor twice');
      if (entities.length > 0) {
        let max: number | null = null;
        for (const e of entities) {
          const ts = Number(e.timestamp);
          if (Number.isFinite(ts) && (max === null || ts > max)) max = ts;
        }
        const lines = Buffer.from(entities.map((e) => JSON.stringify(e)).join('\n') + '\n');
        yield { lines, count: entities.length, lastMsgId: String(entities[entities.length - 1]!.msg_id ?? ''), cursor: next, maxTimestamp: max, watermark };
      }
      if (next === undefined) return { watermark };
      cursor = next;
    }
  }

  /** One request with fetch, for small answers (tokens, pages). */
  private async fetch(url: string, init: RequestInit): Promise<Response> {
    const ctl = new AbortController();
    const res = await this.connect(url, ctl, () => fetch(url, { ...init, signal: ctl.signal, headers: { 'user-agent': `chatvault-export/${VERSION}`, ...init.headers } }));
    if (res.ok) return res;
    throw this.refusal(url, res.status, await errorBody(res), retryAfter(res.headers.get('retry-after')));
  }

  /**
   * Waits for the answer's headers under `ctl`: aborted by Ctrl-C (Interrupted) or after the idle
   * time; a failure to get them is transient (retried).
   */
  private async connect<T>(url: string, ctl: AbortController, start: () => Promise<T>): Promise<T> {
    const onAbort = () => ctl.abort();
    this.cfg.signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => ctl.abort(), IDLE_MS);
    try {
      return await start();
    } catch (e) {
      if (this.cfg.signal.aborted) throw new Interrupted('interrupted');
      throw new Transient(`cannot reach ${url.split('?')[0]}: ${causeOf(e)}`);
    } finally {
      clearTimeout(timer);
      this.cfg.signal.removeEventListener('abort', onAbort);
    }
  }

  /** The error of a refused request: transient (retried), bad credentials, bad ql, or final. */
  private refusal(url: string, status: number, body: ErrorBody | undefined, retryAfterMs: number): Error {
    const what = describe(status, body);
    if (status === 408 || status === 429 || status >= 500) return new Transient(what, retryAfterMs);
    if (status === 401 || body?.error === 'invalid_grant' || body?.error === 'organization_application_not_found') {
      return new CliError(EXIT.credentials, `credentials refused for ${this.cfg.org}/${this.cfg.app}: ${what}`);
    }
    if (body?.error === 'query_parse' || body?.error === 'query_token' || body?.error === 'number_format') {
      return new CliError(EXIT.query, `bad ql: ${what}`);
    }
    return new CliError(EXIT.failed, `the server refused ${url.split('?')[0]}: ${what}`);
  }

  /**
   * A GET whose body is read as raw chunks with node:http (the bulk path: about a quarter faster
   * than reading a fetch body). Resolves once the headers of a 2xx answer arrived.
   */
  private async getStream(url: string, ctl: AbortController): Promise<http.IncomingMessage> {
    const res = await this.connect(url, ctl, () => new Promise<http.IncomingMessage>((resolve, reject) => {
      const get = url.startsWith('https:') ? https.get : http.get;
      const rq = get(url, { signal: ctl.signal, headers: { 'user-agent': `chatvault-export/${VERSION}`, authorization: `Bearer ${this.token}`, accept: 'application/x-ndjson, application/json' } }, resolve);
      rq.on('error', reject);
    }));
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const chunks: Buffer[] = [];
    let body: ErrorBody | undefined;
    try {
      for await (const c of res) chunks.push(c as Buffer);
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ErrorBody;
    } catch {
      body = undefined;
    }
    const ra = res.headers['retry-after'];
    throw this.refusal(url, status, body, retryAfter(typeof ra === 'string' ? ra : null));
  }

  /** The streaming GET with the app token; an expired token is renewed once. */
  private async authedStream(url: string, ctl: () => AbortController): Promise<http.IncomingMessage> {
    try {
      return await this.getStream(url, ctl());
    } catch (e) {
      if (!(e instanceof CliError) || e.exitCode !== EXIT.credentials) throw e;
      await this.authenticate();
      return this.getStream(url, ctl());
    }
  }

  /** A GET with the app token; an expired token is renewed once. */
  private async authed(url: string): Promise<Response> {
    const get = () => this.fetch(url, { headers: { authorization: `Bearer ${this.token}`, accept: 'application/json' } });
    try {
      return await get();
    } catch (e) {
      if (!(e instanceof CliError) || e.exitCode !== EXIT.credentials) throw e;
      await this.authenticate();
      return get();
    }
  }

  private transient(e: unknown): Transient {
    if (e instanceof Transient) return e;
    if (this.cfg.signal.aborted) throw new Interrupted('interrupted');
    if (e instanceof CliError || e instanceof Interrupted) throw e;
    // A body cut off mid-read (socket reset, server restart) is a network failure too.
    return new Transient(`connection lost: ${causeOf(e)}`);
  }

  private giveUp(t: Transient): CliError {
    return new CliError(EXIT.unreachable, `${t.message} (gave up after ${this.cfg.retries + 1} attempts)`);
  }

  private async backoff(t: Transient, attempt: number): Promise<void> {
    const ms = Math.max(t.retryAfterMs, Math.min(30_000, this.cfg.retryDelayMs * 2 ** (attempt - 1)));
    this.cfg.onRetry?.(`${t.message}; retry ${attempt}/${this.cfg.retries} in ${(ms / 1000).toFixed(1)} s`);
    try {
      await sleep(ms, undefined, { signal: this.cfg.signal });
    } catch {
      throw new Interrupted('interrupted');
    }
  }

  /** Runs one request, retrying transient failures with back-off; exit 5 when they persist. */
  private async retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        const t = this.transient(e);
        if (attempt > this.cfg.retries) throw this.giveUp(t);
        await this.backoff(t, attempt);
      }
    }
  }
}
