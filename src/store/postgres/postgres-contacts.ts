import type pg from 'pg';

/**
 * Contacts (friendships) and user block lists of the PostgreSQL store. Friendships are stored as
 * two rows, one per direction, so a user's list is one index range. Each change is one statement,
 * so it is all-or-nothing without an explicit transaction; `ON CONFLICT DO NOTHING` keeps existing
 * rows (and their place in the list) when two requests add the same relation at once.
 * Rows go with their users: the foreign keys cascade when a user is deleted.
 */
export class PostgresContacts {
  constructor(private readonly pool: pg.Pool) {}

  async addContact(ownerId: number, friendId: number, created: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO contacts (owner_id, friend_id, created) VALUES ($1, $2, $3), ($2, $1, $3)
       ON CONFLICT (owner_id, friend_id) DO NOTHING`,
      [ownerId, friendId, created],
    );
  }

  async removeContact(ownerId: number, friendId: number): Promise<void> {
    await this.pool.query(
      'DELETE FROM contacts WHERE (owner_id = $1 AND friend_id = $2) OR (owner_id = $2 AND friend_id = $1)',
      [ownerId, friendId],
    );
  }

  async listContacts(ownerId: number): Promise<string[]> {
    const r = await this.pool.query<{ username: string }>(
      'SELECT u.username FROM contacts c JOIN users u ON u.id = c.friend_id WHERE c.owner_id = $1 ORDER BY c.id',
      [ownerId],
    );
    return r.rows.map((row) => row.username);
  }

  async addBlocks(ownerId: number, blockedIds: number[], created: number): Promise<void> {
    if (blockedIds.length === 0) return;
    await this.pool.query(
      `INSERT INTO user_blocks (owner_id, blocked_id, created)
       SELECT $1, b.id, $3 FROM unnest($2::bigint[]) WITH ORDINALITY AS b(id, ord) ORDER BY b.ord
       ON CONFLICT (owner_id, blocked_id) DO NOTHING`,
      [ownerId, blockedIds, created],
    );
  }

  async removeBlock(ownerId: number, blockedId: number): Promise<void> {
    await this.pool.query('DELETE FROM user_blocks WHERE owner_id = $1 AND blocked_id = $2', [ownerId, blockedId]);
  }

  async listBlocks(ownerId: number): Promise<string[]> {
    const r = await this.pool.query<{ username: string }>(
      'SELECT u.username FROM user_blocks b JOIN users u ON u.id = b.blocked_id WHERE b.owner_id = $1 ORDER BY b.id',
      [ownerId],
    );
    return r.rows.map((row) => row.username);
  }
}
