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
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;
/** A short fingerprint of the schema text (bench data sets are cached per fingerprint). */
export const SCHEMA_FINGERPRINT = createHash('sha256').update(MIGRATIONS.join('\n')).digest('hex').slice(0, 10);

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
