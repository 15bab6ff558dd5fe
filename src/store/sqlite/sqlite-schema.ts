import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';

/**
 * Versioned migrations of the SQLite store. A migration is never edited once released:
 * a change to the schema is a new entry at the end.
 */
const MIGRATIONS: string[] = [
  // 1: tenants, admins, IM users, chat messages
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE orgs (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    client_id TEXT NOT NULL UNIQUE,
    client_secret TEXT NOT NULL,
    cred_gen INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
  );
  CREATE TABLE admins (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email TEXT NOT NULL COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    pw_gen INTEGER NOT NULL DEFAULT 0,
    sysadmin INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    modified INTEGER NOT NULL
  );
  CREATE INDEX admins_email ON admins(email);
  CREATE TABLE org_admins (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    admin_id INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, admin_id)
  ) WITHOUT ROWID;
  CREATE TABLE apps (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name TEXT NOT NULL COLLATE NOCASE,
    client_id TEXT NOT NULL UNIQUE,
    client_secret TEXT NOT NULL,
    cred_gen INTEGER NOT NULL DEFAULT 0,
    open_registration INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    UNIQUE (org_id, name)
  );
  CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    uuid TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    pw_gen INTEGER NOT NULL DEFAULT 0,
    activated INTEGER NOT NULL DEFAULT 1,
    properties TEXT NOT NULL DEFAULT '{}',
    created INTEGER NOT NULL,
    modified INTEGER NOT NULL,
    UNIQUE (app_id, username COLLATE NOCASE)
  );
  CREATE INDEX users_by_created ON users(app_id, created, id);
  CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id INTEGER NOT NULL,
    uuid TEXT NOT NULL,
    msg_id TEXT NOT NULL COLLATE NOCASE,
    timestamp INTEGER NOT NULL,
    created INTEGER NOT NULL,
    from_user TEXT NOT NULL COLLATE NOCASE,
    to_id TEXT NOT NULL COLLATE NOCASE,
    chat_type TEXT NOT NULL COLLATE NOCASE,
    body_type TEXT COLLATE NOCASE,
    lat REAL,
    lng REAL,
    entity BLOB NOT NULL
  );
  CREATE UNIQUE INDEX messages_msg_id ON messages(app_id, msg_id);
  CREATE INDEX messages_by_time ON messages(app_id, timestamp, seq);
  CREATE INDEX messages_by_from ON messages(app_id, from_user, timestamp, seq);
  CREATE INDEX messages_by_to ON messages(app_id, to_id, timestamp, seq);
  CREATE INDEX messages_by_chat_type ON messages(app_id, chat_type, timestamp, seq);
  CREATE INDEX messages_by_body_type ON messages(app_id, body_type, timestamp, seq);
  -- Full text of txt bodies as token lists (see domain/text-match.ts); rowid = seq.
  CREATE VIRTUAL TABLE messages_fts USING fts5(bi, uni, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 0');
  -- Positions of loc bodies; id = seq.
  CREATE VIRTUAL TABLE messages_geo USING rtree(id, min_lat, max_lat, min_lng, max_lng);
  `,
  // 2: contacts (each friendship as two rows, one per direction) and user block lists
  `
  CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    friend_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created INTEGER NOT NULL,
    UNIQUE (owner_id, friend_id)
  );
  CREATE INDEX contacts_by_friend ON contacts(friend_id);
  CREATE TABLE user_blocks (
    id INTEGER PRIMARY KEY,
    owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    blocked_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created INTEGER NOT NULL,
    UNIQUE (owner_id, blocked_id)
  );
  CREATE INDEX user_blocks_by_blocked ON user_blocks(blocked_id);
  `,
  // 3: chat groups and chat rooms (kind 'group' | 'room'), their members and block lists.
  // The owner is a column, not a member row; a user who owns groups cannot be deleted until they
  // are (the users service deletes them first), so no group is ever left without an owner.
  `
  CREATE TABLE chat_groups (
    id INTEGER PRIMARY KEY,
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('group', 'room')),
    gid TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    public INTEGER NOT NULL,
    members_only INTEGER NOT NULL,
    allow_invites INTEGER NOT NULL,
    max_users INTEGER NOT NULL,
    owner_id INTEGER NOT NULL REFERENCES users(id),
    created INTEGER NOT NULL,
    modified INTEGER NOT NULL,
    UNIQUE (app_id, gid)
  );
  CREATE INDEX chat_groups_by_kind ON chat_groups(app_id, kind, id);
  CREATE INDEX chat_groups_by_owner ON chat_groups(owner_id, kind);
  CREATE TABLE group_members (
    id INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL REFERENCES chat_groups(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    joined INTEGER NOT NULL,
    UNIQUE (group_id, user_id)
  );
  CREATE INDEX group_members_by_user ON group_members(user_id);
  CREATE TABLE group_blocks (
    id INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL REFERENCES chat_groups(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created INTEGER NOT NULL,
    UNIQUE (group_id, user_id)
  );
  CREATE INDEX group_blocks_by_user ON group_blocks(user_id);
  `,
  // 4: chat files (spec §6): metadata of uploads; the bytes live in the blob store under blob_key
  `
  CREATE TABLE chat_files (
    id INTEGER PRIMARY KEY,
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    uuid TEXT NOT NULL UNIQUE,
    blob_key TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    secret TEXT,
    thumb_width INTEGER,
    thumb_height INTEGER,
    created INTEGER NOT NULL,
    modified INTEGER NOT NULL
  );
  `,
  // 5: real-time delivery: every recipient's place for each one-to-one and group message (the
  // inbox a resuming client walks, and whether the recipient acked it), and client send ids;
  // the message's timestamp as PostgreSQL keeps it (there it finds the message's partition)
  `
  CREATE TABLE deliveries (
    app_id INTEGER NOT NULL,
    username TEXT NOT NULL,
    seq INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, username, seq)
  ) WITHOUT ROWID;
  CREATE INDEX deliveries_pending ON deliveries(app_id, username, seq) WHERE delivered = 0;
  CREATE INDEX deliveries_by_seq ON deliveries(app_id, seq);
  CREATE TABLE client_ids (
    app_id INTEGER NOT NULL,
    sender TEXT NOT NULL,
    client_id TEXT NOT NULL,
    target TEXT NOT NULL,
    seq INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    PRIMARY KEY (app_id, sender, client_id, target)
  ) WITHOUT ROWID;
  CREATE INDEX client_ids_by_seq ON client_ids(app_id, seq);
  `,
  // 6: client send ids of the last moments, appended in seq order with their messages (a commit
  // writes a page or two here, where client_ids, keyed by sender, takes a page per sender) and
  // moved into client_ids in key order about once a second (sqlite-messages.ts)
  `
  CREATE TABLE client_id_log (
    seq INTEGER PRIMARY KEY,
    app_id INTEGER NOT NULL,
    sender TEXT NOT NULL,
    client_id TEXT NOT NULL,
    target TEXT NOT NULL,
    timestamp INTEGER NOT NULL
  );
  `,
  // 7: the group of senders a logged id belongs to (a hash of the sender): the groups are moved
  // into client_ids one after another, a few commits apart, instead of all in one commit
  `
  ALTER TABLE client_id_log ADD COLUMN part INTEGER NOT NULL DEFAULT 0;
  `,
  // 8: inbox rows of the last moments, appended in seq order with their messages (a commit writes
  // a page or two here, where deliveries, keyed by recipient, takes a page per recipient), acked
  // there while they wait, and moved into deliveries in key order about once a second, a group
  // of recipients (part, a hash of the name) at a time (sqlite-messages.ts)
  `
  CREATE TABLE delivery_log (
    seq INTEGER NOT NULL,
    app_id INTEGER NOT NULL,
    username TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    part INTEGER NOT NULL,
    PRIMARY KEY (seq, app_id, username)
  ) WITHOUT ROWID;
  `,
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;
/**
 * A short fingerprint of the first migration's text. Bench data sets are cached per fingerprint:
 * later migrations are applied when such a data set is opened, like any data folder's.
 */
export const SCHEMA_FINGERPRINT = createHash('sha256').update(MIGRATIONS[0]!).digest('hex').slice(0, 10);

/** The connection settings every connection to a chatvault database uses. */
export function applyPragmas(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  // FULL: a commit is on disk before we acknowledge it, so a power cut loses nothing.
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // Index pages of a large message table must stay in memory for inserts and keyset pages
  // to be fast: 64 MiB of page cache. (No mmap: mapped pages of a long export would count
  // against the server's resident memory.)
  db.pragma('cache_size = -65536');
  // Checkpoint every 10,000 pages (40 MiB of log) rather than 1,000: the index pages a busy
  // writer keeps touching are copied into the database once per checkpoint, not once per few
  // commits (measured: a third less written per message).
  db.pragma('wal_autocheckpoint = 10000');
}

/** Brings the database to the newest schema version inside one transaction per step. */
export function migrate(db: Database.Database): { from: number; to: number } {
  const from = db.pragma('user_version', { simple: true }) as number;
  if (from > MIGRATIONS.length) {
    throw new Error(`the data folder was written by a newer chatvault (schema ${from}, this build knows ${MIGRATIONS.length})`);
  }
  for (let v = from; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return { from, to: MIGRATIONS.length };
}
