import type Database from 'better-sqlite3';
import type { ChatFileRow, NewChatFile } from '../store.js';
import { fileFrom, type Row } from '../rows.js';


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
