import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';

/** Bytes found under a key. */
export interface StoredBlob {
  stream: Readable;
  size: number;
}

/**
 * The BlobStore port: where the bytes of chat files live. Keys are made of letters, digits,
 * `-` and `_`, with an optional `.suffix` for variants of one blob (a cached thumbnail).
 */
export interface BlobStore {
  /** Stores a stream under a key; resolves with its size once durable. A failed stream leaves nothing behind. */
  put(key: string, data: Readable): Promise<number>;
  /** The bytes under a key, or null when there are none. */
  get(key: string): Promise<StoredBlob | null>;
  /** Deletes the bytes under a key; a missing key is no error. */
  delete(key: string): Promise<void>;
}

const KEY_RE = /^[A-Za-z0-9_-]{1,128}(\.[A-Za-z0-9_-]{1,32})?$/;

/** Throws unless `key` is a legal blob key (see BlobStore). */
export function checkBlobKey(key: string): void {
  if (!KEY_RE.test(key)) throw new Error(`invalid blob key '${key}'`);
}
const TEMP_DIR = '.tmp';
// Temp files older than this belong to an upload a crash interrupted.
const STALE_TEMP_MS = 24 * 3600 * 1000;

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * Blobs as files under one folder, spread over 256×256 sharded subfolders so no folder grows
 * huge. A put streams into `.tmp/` in the same folder, fsyncs, then renames into place: a
 * reader sees the whole file or none of it.
 */
export class FilesystemBlobStore implements BlobStore {
  private swept = false;

  constructor(readonly root: string) {}

  /** The file of a key; variants (`name.suffix`) share the folder of their blob. */
  pathOf(key: string): string {
    checkBlobKey(key);
    const h = createHash('sha256').update(key.split('.')[0]!).digest('hex');
    return path.join(this.root, h.slice(0, 2), h.slice(2, 4), key);
  }

  async put(key: string, data: Readable): Promise<number> {
    const final = this.pathOf(key);
    const tempDir = path.join(this.root, TEMP_DIR);
    await fs.mkdir(tempDir, { recursive: true });
    if (!this.swept) {
      this.swept = true;
      void this.sweepTemp(tempDir);
    }
    const temp = path.join(tempDir, `${key}.${randomBytes(6).toString('hex')}`);
    const fh = await fs.open(temp, 'wx');
    let size = 0;
    try {
      try {
        for await (const chunk of data) {
          const b = chunk as Buffer;
          size += b.length;
          await fh.write(b);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.mkdir(path.dirname(final), { recursive: true });
      await fs.rename(temp, final);
    } catch (e) {
      await fs.rm(temp, { force: true });
      throw e;
    }
    await syncDir(path.dirname(final));
    return size;
  }

  async get(key: string): Promise<StoredBlob | null> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(this.pathOf(key), 'r');
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
    try {
      const { size } = await fh.stat();
      return { stream: fh.createReadStream(), size };
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.pathOf(key), { force: true });
  }

  // Best effort: another node may share the folder, so only old temp files go.
  private async sweepTemp(dir: string): Promise<void> {
    try {
      const now = Date.now();
      for (const name of await fs.readdir(dir)) {
        const p = path.join(dir, name);
        const st = await fs.stat(p).catch(() => null);
        if (st && now - st.mtimeMs > STALE_TEMP_MS) await fs.rm(p, { force: true });
      }
    } catch {
      // a sweep that fails leaves old temp files for the next start
    }
  }
}

// The rename is durable only once the folder's entry is on disk; not every platform can sync a folder.
async function syncDir(dir: string): Promise<void> {
  try {
    const d = await fs.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // fsync of a directory is unsupported here (e.g. Windows)
  }
}
