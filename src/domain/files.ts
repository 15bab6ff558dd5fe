import { randomBytes, timingSafeEqual } from 'node:crypto';
import { pipeline, Readable, Transform } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { errors } from '../errors.js';
import type { BlobStore } from '../files/blob-store.js';
import { DEFAULT_THUMBNAIL_SIDE, makeThumbnail, sniffImageType, THUMBNAIL_MIN_BYTES, type Thumbnail } from '../files/thumbnails.js';
import type { AppRow, ChatFileRow, Store } from '../store/store.js';
import { UUID_RE, uuidV1 } from '../util/ids.js';

/** A file whose bytes are stored but which is not recorded yet: its form fields may still follow it. */
export interface StagedFile {
  uuid: string;
  key: string;
  size: number;
  contentType: string;
  created: number;
}

/** What came with an upload besides the bytes. */
export interface UploadOptions {
  /** The `restrict-access` header as sent; undefined when absent. */
  restrictAccess: string | undefined;
  /** The other form fields (`thumbnail-width`, `thumbnail-height`; the rest is ignored). */
  fields: ReadonlyMap<string, string>;
}

/** How a download asks for a file. */
export interface FileAccess {
  /** The request carried a token of the app (checked by the caller). */
  authenticated: boolean;
  /** The `share-secret` header or query parameter; undefined when absent. */
  secret: string | undefined;
  /** `thumbnail: true` was asked. */
  thumbnail: boolean;
}

/** Bytes to send back, with their type and length. */
export interface FileContent {
  body: Readable | Buffer;
  size: number;
  contentType: string;
}

const MAX_THUMBNAIL_SIDE = 2048;
const SECRET_BYTES = 36; // 48 url-safe base64 characters, as Easemob's share-secrets
// Types a client sends when it does not know better (busboy reports a part without one as text/plain).
const VAGUE_TYPES = new Set(['text/plain', 'application/octet-stream']);

/**
 * E1/E2 servers only checked that `restrict-access` was present; E4 respected `false`. So any
 * value restricts the file except `false`.
 */
export function isRestricted(header: string | undefined): boolean {
  return header !== undefined && header.trim().toLowerCase() !== 'false';
}

function side(fields: ReadonlyMap<string, string>, name: string): number | null {
  const raw = fields.get(name)?.trim();
  if (raw === undefined || raw === '') return null;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_THUMBNAIL_SIDE)) {
    throw errors.illegalArgument(`${name} must be a whole number of pixels from 1 to ${MAX_THUMBNAIL_SIDE}, got '${raw}'`);
  }
  return n;
}

/** The uploaded-file entity (the E1 form of spec §6.1, a superset of what later eras answered). */
export function chatFileEntity(f: ChatFileRow): Record<string, unknown> {
  const e: Record<string, unknown> = {
    uuid: f.uuid,
    type: 'chatfile',
    created: f.created,
    modified: f.modified,
    'file-metadata': { 'content-type': f.contentType, 'last-modified': f.modified, 'content-length': f.size },
  };
  if (f.secret !== null) e['share-secret'] = f.secret;
  return e;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Chat files (spec §6): uploads, restricted downloads and thumbnails. */
export class ChatFileService {
  constructor(private readonly store: Store, private readonly blobs: BlobStore, private readonly maxBytes: number) {}

  /**
   * Streams an upload into the blob store. More than maxBytes → 413 and nothing kept. The type
   * is the declared one, unless it says nothing (then the bytes tell a common image type).
   */
  async stage(data: Readable, declaredType: string | undefined): Promise<StagedFile> {
    const created = Date.now();
    const uuid = uuidV1(created);
    let size = 0;
    let head = Buffer.alloc(0);
    const maxBytes = this.maxBytes;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > maxBytes) return done(errors.tooLarge());
        if (head.length < 16) head = Buffer.concat([head, chunk.subarray(0, 16 - head.length)]);
        done(null, chunk);
      },
    });
    pipeline(data, tap, () => {}); // errors reach put through tap
    await this.blobs.put(uuid, tap);
    const declared = declaredType?.trim().toLowerCase() || undefined;
    const contentType = declared === undefined || VAGUE_TYPES.has(declared) ? (sniffImageType(head) ?? declared ?? 'application/octet-stream') : declared;
    return { uuid, key: uuid, size, contentType, created };
  }

  /** Records a staged file under the app; a failure deletes its bytes. */
  async commit(app: AppRow, staged: StagedFile, opts: UploadOptions): Promise<ChatFileRow> {
    try {
      return await this.store.createChatFile({
        appId: app.id,
        uuid: staged.uuid,
        blobKey: staged.key,
        contentType: staged.contentType,
        size: staged.size,
        secret: isRestricted(opts.restrictAccess) ? randomBytes(SECRET_BYTES).toString('base64url') : null,
        thumbWidth: side(opts.fields, 'thumbnail-width'),
        thumbHeight: side(opts.fields, 'thumbnail-height'),
        created: staged.created,
        modified: staged.created,
      });
    } catch (e) {
      await this.discard(staged);
      throw e;
    }
  }

  /** Deletes the bytes of a staged file that will not be recorded. */
  async discard(staged: StagedFile): Promise<void> {
    await this.blobs.delete(staged.key);
  }

  /**
   * A file of the app for a download: 404 when the app has no such file; a restricted file needs
   * its secret (401 otherwise); without a token only the secret opens a file.
   */
  async open(app: AppRow, uuid: string, access: FileAccess): Promise<FileContent> {
    if (!access.authenticated && access.secret === undefined) throw errors.noPermission('get', app.uuid, '/chatfiles');
    const f = UUID_RE.test(uuid) ? await this.store.getChatFile(app.id, uuid.toLowerCase()) : null;
    if (!f) throw errors.notFound();
    if (f.secret !== null) {
      if (access.secret === undefined) {
        throw errors.unauthorized('this file is restricted: send its share-secret (header share-secret or query parameter ?share-secret=)');
      }
      if (!sameSecret(access.secret, f.secret)) throw errors.unauthorized('the share-secret does not match this file');
    } else if (!access.authenticated) {
      throw errors.noPermission('get', app.uuid, '/chatfiles');
    }
    if (access.thumbnail && f.contentType.startsWith('image/') && f.size > THUMBNAIL_MIN_BYTES) {
      const t = await this.thumbnail(f);
      if (t) return { body: t.data, size: t.data.length, contentType: t.contentType };
    }
    const blob = await this.blobs.get(f.blobKey);
    if (!blob) throw errors.notFound();
    return { body: blob.stream, size: blob.size, contentType: f.contentType };
  }

  // The thumbnail is made once and kept next to the file; null when the file is no image we scale.
  private async thumbnail(f: ChatFileRow): Promise<Thumbnail | null> {
    const key = `${f.blobKey}.thumb`;
    const cached = await this.blobs.get(key);
    if (cached) {
      const data = await buffer(cached.stream);
      const contentType = sniffImageType(data);
      if (contentType) return { data, contentType };
    }
    const original = await this.blobs.get(f.blobKey);
    if (!original) return null;
    const t = await makeThumbnail(await buffer(original.stream), {
      width: f.thumbWidth ?? DEFAULT_THUMBNAIL_SIDE,
      height: f.thumbHeight ?? DEFAULT_THUMBNAIL_SIDE,
    });
    // A cache that cannot be written only costs making the thumbnail again next time.
    if (t) await this.blobs.put(key, Readable.from([t.data])).catch(() => undefined);
    return t;
  }
}
