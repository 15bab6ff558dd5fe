import type pg from 'pg';
import type { ChatFileRow, NewChatFile } from '../store.js';
import { fileFrom } from '../rows.js';


/** Chat file metadata of the PostgreSQL store (the bytes live in the BlobStore). */
export class PostgresFiles {
  constructor(private readonly pool: pg.Pool) {}

  async createChatFile(f: NewChatFile): Promise<ChatFileRow> {
    const r = await this.pool.query(
      `INSERT INTO chat_files (app_id, uuid, blob_key, content_type, size, secret, thumb_width, thumb_height, created, modified)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
      [f.appId, f.uuid, f.blobKey, f.contentType, f.size, f.secret, f.thumbWidth, f.thumbHeight, f.created, f.modified],
    );
    return fileFrom(r.rows[0]!);
  }

  async getChatFile(appId: number, uuid: string): Promise<ChatFileRow | null> {
    const r = await this.pool.query('SELECT * FROM chat_files WHERE app_id = $1 AND uuid = $2', [appId, uuid]);
    return r.rows.length > 0 ? fileFrom(r.rows[0]!) : null;
  }
}
