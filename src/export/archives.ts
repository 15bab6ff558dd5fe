import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createGzip } from 'node:zlib';
import { ApiError, errors } from '../errors.js';
import type { QlExpr } from '../ql/ast.js';
import type { AppRow, Store } from '../store/store.js';
import { archiveRecord, parseRecord } from './records.js';

const HOUR = 3600_000;
const PAGE = 5000;

/** What `GET /chatmessages/{YYYYMMDDHH}` answers for one archive. */
export interface ArchiveLink {
  url: string;
  count: number;
  size: number;
  sha256: string;
}

interface ArchiveMeta {
  fingerprint: string;
  count: number;
  size: number;
  sha256: string;
  builtAt: number;
}

/** `+08:00`, `-0530`, `Z`, `UTC` → minutes east of UTC; a `+` that a query string turned into a space is a `+`. */
export function parseTz(raw: string): number {
  const t = raw.replace(/^ /, '+').trim();
  if (t === '' || t.toUpperCase() === 'Z' || t.toUpperCase() === 'UTC') return 0;
  const m = /^([+-])(\d{2}):?(\d{2})?$/.exec(t);
  if (!m) throw errors.illegalArgument(`tz must look like +08:00 or -05:30, not '${raw}'`);
  const mins = Number(m[2]) * 60 + Number(m[3] ?? 0);
  if (mins > 14 * 60) throw errors.illegalArgument(`tz ${raw} is out of range`);
  return m[1] === '-' ? -mins : mins;
}

/** The canonical form of an offset (`+08:00`), as used in links and file names. */
export function formatTz(mins: number): string {
  const a = Math.abs(mins);
  return `${mins < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

/** `[start, end)` in epoch ms of hour `YYYYMMDDHH` read in the given offset; null when malformed. */
export function hourRange(hour: string, tzMinutes: number): { start: number; end: number } | null {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})$/.exec(hour);
  if (!m) return null;
  const [y, mo, d, h] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  const local = Date.UTC(y, mo - 1, d, h);
  const back = new Date(local);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h) return null;
  const start = local - tzMinutes * 60_000;
  return { start, end: start + HOUR };
}

function hourWhere(start: number, end: number): QlExpr {
  return {
    kind: 'and',
    left: { kind: 'cmp', field: 'timestamp', op: '>=', value: { kind: 'int', value: BigInt(start) } },
    right: { kind: 'cmp', field: 'timestamp', op: '<', value: { kind: 'int', value: BigInt(end) } },
  };
}

/**
 * Hourly archives (spec §5.3): gzip files of one §5.2 record per line, every message of a closed
 * hour exactly once, ordered by timestamp. Built on first request and cached under
 * DATA_DIR/archives; an archive is rebuilt when its hour's messages changed (an import into the
 * hour, a purge), which a cheap index-only fingerprint of the hour tells. Links are served by
 * chatvault itself, signed with HMAC and expiring.
 */
export class ArchiveService {
  private readonly building = new Map<string, Promise<ArchiveMeta>>();

  constructor(
    private readonly store: Store,
    private readonly dir: string,
    private readonly key: Buffer,
    private readonly linkTtlSeconds: number,
    private readonly defaultTz: string,
  ) {}

  /** The archive of an hour, built if needed, as a signed link with its count, size and hash. */
  async link(app: AppRow, hour: string, tzParam: string | undefined, publicUrl: string): Promise<ArchiveLink> {
    const tz = parseTz(tzParam ?? this.defaultTz);
    const range = hourRange(hour, tz);
    if (!range) throw errors.illegalArgument('This chatmessage request is not supported');
    if (range.end > Date.now()) {
      throw errors.illegalArgument(`illegal arguments: appkey: ${app.orgName}#${app.name}, time: ${hour}, the hour (${formatTz(tz)}) is not over yet: archives are built for closed hours only`);
    }
    const stats = await this.store.messageStats(app.id, range.start, range.end);
    if (stats.count === 0) {
      throw new ApiError(404, 'storage_object_not_found', `Failed to find chat message history download url for appkey: ${app.orgName}#${app.name}, time: ${hour}`);
    }
    const meta = await this.ensure(app, hour, tz, range, stats.fingerprint);
    const expires = Math.floor(Date.now() / 1000) + this.linkTtlSeconds;
    const tzs = formatTz(tz);
    const sig = this.sign(app, hour, tzs, expires);
    const url = `${publicUrl}/${encodeURIComponent(app.orgName)}/${encodeURIComponent(app.name)}/chatmessages/archives/${hour}.gz` +
      `?tz=${encodeURIComponent(tzs)}&Expires=${expires}&Signature=${encodeURIComponent(sig)}`;
    return { url, count: meta.count, size: meta.size, sha256: meta.sha256 };
  }

  /**
   * Checks a link's signature and expiry and returns the archive file to send. The archive is
   * (re)built here when this node has none, or an outdated one: a link issued by another node
   * of the cluster, or before a purge of the hour, still downloads the hour as it is now.
   */
  async open(app: AppRow, file: string, q: Record<string, string | undefined>): Promise<{ path: string; size: number }> {
    const m = /^(\d{10})\.gz$/.exec(file);
    if (!m) throw errors.notFound();
    const hour = m[1]!;
    const tz = formatTz(parseTz(q.tz ?? '+00:00'));
    const expires = Number(q.Expires);
    const given = q.Signature ?? '';
    const want = this.sign(app, hour, tz, expires);
    if (!Number.isSafeInteger(expires) || given.length !== want.length || !timingSafeEqual(Buffer.from(given), Buffer.from(want))) {
      throw new ApiError(403, 'forbidden', 'The archive link is not valid: its signature does not match');
    }
    if (expires * 1000 < Date.now()) {
      throw new ApiError(403, 'forbidden', `The archive link expired at ${new Date(expires * 1000).toISOString()}; request GET /${app.orgName}/${app.name}/chatmessages/${hour} for a new one`);
    }
    const tzNum = parseTz(tz);
    const range = hourRange(hour, tzNum);
    if (!range) throw errors.notFound();
    const stats = await this.store.messageStats(app.id, range.start, range.end);
    if (stats.count === 0) throw errors.notFound();
    const meta = await this.ensure(app, hour, tzNum, range, stats.fingerprint);
    return { path: this.filePath(app, hour, tzNum), size: meta.size };
  }

  private sign(app: AppRow, hour: string, tz: string, expires: number): string {
    return createHmac('sha256', this.key).update(`archive\0${app.uuid}\0${hour}\0${tz}\0${expires}`).digest('base64url');
  }

  private filePath(app: AppRow, hour: string, tz: number): string {
    return path.join(this.dir, app.uuid, formatTz(tz).replace(':', ''), `${hour}.gz`);
  }

  private async ensure(app: AppRow, hour: string, tz: number, range: { start: number; end: number }, fingerprint: string): Promise<ArchiveMeta> {
    const file = this.filePath(app, hour, tz);
    const metaFile = `${file}.json`;
    try {
      const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as ArchiveMeta;
      if (meta.fingerprint === fingerprint && fs.existsSync(file)) return meta;
    } catch {
      // not built yet, or unreadable: build it
    }
    const key = `${file}\0${fingerprint}`;
    let p = this.building.get(key);
    if (!p) {
      p = this.build(app, range, file, fingerprint).finally(() => this.building.delete(key));
      this.building.set(key, p);
    }
    return p;
  }

  private async build(app: AppRow, range: { start: number; end: number }, file: string, fingerprint: string): Promise<ArchiveMeta> {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    const out = fs.createWriteStream(tmp);
    const gz = createGzip();
    const hash = createHash('sha256');
    let size = 0;
    gz.on('data', (c: Buffer) => {
      hash.update(c);
      size += c.length;
    });
    gz.pipe(out);
    const done = new Promise<void>((resolve, reject) => {
      out.on('finish', () => resolve());
      out.on('error', reject);
      gz.on('error', reject);
    });
    let count = 0;
    try {
      const maxSeq = await this.store.highWaterMark();
      let after: { keys: unknown[]; seq: bigint } | null = null;
      for (;;) {
        const rows = await this.store.findMessages({
          appId: app.id, where: hourWhere(range.start, range.end), orderBy: [{ field: 'timestamp', dir: 'asc' }], near: null,
          after, minSeq: 0n, maxSeq, limit: PAGE,
        });
        let chunk = '';
        for (const r of rows) chunk += JSON.stringify(archiveRecord(parseRecord(r.entity))) + '\n';
        count += rows.length;
        if (chunk !== '' && !gz.write(chunk)) await new Promise((r) => gz.once('drain', r));
        const last = rows[rows.length - 1];
        if (rows.length < PAGE || !last) break;
        after = { keys: last.keys, seq: last.seq };
      }
      gz.end();
      await done;
      const meta: ArchiveMeta = { fingerprint, count, size, sha256: hash.digest('hex'), builtAt: Date.now() };
      fs.renameSync(tmp, file);
      fs.writeFileSync(`${file}.json`, JSON.stringify(meta));
      return meta;
    } catch (e) {
      gz.destroy();
      out.destroy();
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }
}
