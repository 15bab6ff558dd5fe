import type Database from 'better-sqlite3';
import type { ChatFileRow, NewChatFile } from '../store.js';

type Row = Record<string, unknown>;

function fileFrom(r: Row): ChatFileRow {
  const nullableNum = (v: unknown): number | null => (v === null ? null : Number(v));
  return {
    id: Number(r.id), appId: Number(r.app_id), uuid: String(r.uuid), blobKey: String(r.blob_key),
    contentType: String(r.content_type), size: Number(r.size), secret: r.secret === null ? null : String(r.secret),
    thumbWidth: nullableNum(r.thumb_width), thumbHeight: nullableNum(r.thumb_height),
    created: Number(r.created), modified: Number(r.modified),
  };
}

/** Chat file metadata of the SQLite store (the bytes live in the BlobStore). */
export class SqliteFiles {
  private readonly s;

  constructor(readonly db: Database.Database) {
    this.s = {
      insert: db.prepare(
        `INSERT INTO chat_files (app_id, uuid, blob_key, content_type, size, secret, thumb_width, thumb_height, created, modified)
         VALUES (@appId, @uuid, @blobKey, @contentType, @size, @secret, @thumbWidth, @thumbHeight, @created, @modified) RETURNING *`,
      ),
      get: db.prepare('SELECT * FROM chat_files WHERE app_id = ? AND uuid = ?'),
    };
  }

  createChatFile(f: NewChatFile): ChatFileRow {
    return fileFrom(this.s.insert.get(f) as Row);
  }

  getChatFile(appId: number, uuid: string): ChatFileRow | null {
    const r = this.s.get.get(appId, uuid) as Row | undefined;
    return r ? fileFrom(r) : null;
  }
}
