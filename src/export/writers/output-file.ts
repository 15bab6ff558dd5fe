import fs from 'node:fs/promises';

/**
 * An export's output file, written front to back at known offsets so that a checkpoint can
 * name its exact length and a resumed run can cut everything after it away.
 */
export class OutputFile {
  private constructor(private readonly fh: fs.FileHandle, private pos: number) {}

  /** Creates (or empties) the file. */
  static async create(file: string): Promise<OutputFile> {
    return new OutputFile(await fs.open(file, 'w'), 0);
  }

  /** Opens the file of a checkpoint and cuts it back to the checkpoint's length. */
  static async resume(file: string, bytes: number): Promise<OutputFile> {
    const fh = await fs.open(file, 'r+');
    try {
      const { size } = await fh.stat();
      if (size < bytes) throw new Error(`${file} has ${size} bytes, fewer than the ${bytes} of its checkpoint: it was changed since`);
      await fh.truncate(bytes);
    } catch (e) {
      await fh.close();
      throw e;
    }
    return new OutputFile(fh, bytes);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  async append(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await this.fh.write(data, off, data.length - off, this.pos);
      off += bytesWritten;
      this.pos += bytesWritten;
    }
  }

  /** Waits until everything appended is on disk. */
  async sync(): Promise<void> {
    try {
      await this.fh.sync();
    } catch (e) {
      // Character devices and pipes cannot be synced; there is nothing more to wait for.
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
