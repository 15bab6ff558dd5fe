import type Database from 'better-sqlite3';

/**
 * Contacts (friendships) and user block lists of the SQLite store.
 * Friendships are stored as two rows, one per direction, so a user's list is one index range.
 * Rows go with their users: the foreign keys cascade when a user is deleted.
 */
export class SqliteContacts {
  private readonly s;

  constructor(readonly db: Database.Database) {
    const names = (table: string, other: string) =>
      db.prepare(`SELECT u.username FROM ${table} r JOIN users u ON u.id = r.${other} WHERE r.owner_id = ? ORDER BY r.id`).pluck();
    this.s = {
      addContact: db.prepare('INSERT OR IGNORE INTO contacts (owner_id, friend_id, created) VALUES (?, ?, ?)'),
      removeContact: db.prepare('DELETE FROM contacts WHERE owner_id = ? AND friend_id = ?'),
      contacts: names('contacts', 'friend_id'),
      addBlock: db.prepare('INSERT OR IGNORE INTO user_blocks (owner_id, blocked_id, created) VALUES (?, ?, ?)'),
      removeBlock: db.prepare('DELETE FROM user_blocks WHERE owner_id = ? AND blocked_id = ?'),
      blocks: names('user_blocks', 'blocked_id'),
    };
  }

  addContact(ownerId: number, friendId: number, created: number): void {
    this.db.transaction(() => {
      this.s.addContact.run(ownerId, friendId, created);
      this.s.addContact.run(friendId, ownerId, created);
    })();
  }

  removeContact(ownerId: number, friendId: number): void {
    this.db.transaction(() => {
      this.s.removeContact.run(ownerId, friendId);
      this.s.removeContact.run(friendId, ownerId);
    })();
  }

  listContacts(ownerId: number): string[] {
    return this.s.contacts.all(ownerId) as string[];
  }

  addBlocks(ownerId: number, blockedIds: number[], created: number): void {
    this.db.transaction(() => {
      for (const id of blockedIds) this.s.addBlock.run(ownerId, id, created);
    })();
  }

  removeBlock(ownerId: number, blockedId: number): void {
    this.s.removeBlock.run(ownerId, blockedId);
  }

  listBlocks(ownerId: number): string[] {
    return this.s.blocks.all(ownerId) as string[];
  }

}
