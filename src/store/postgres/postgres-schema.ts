import { DELIVERIES_MIGRATION } from './postgres-deliveries.js';
import type pg from 'pg';
import { BLOBS_MIGRATION } from '../../files/postgres-blob-store.js';
import { MESSAGES_MIGRATION } from './postgres-messages.js';

/*
 * Case-insensitive names (orgs, apps, admins, usernames) are unique indexes on lower(...), and
 * lookups compare lower(column) = lower($n) so that they use those indexes. Not citext: an
 * extension lives in one schema of the database, while each chatvault deployment (and each test
 * run) may live in a schema of its own. Names keep the case they were stored with.
 *
 * Ids are bigint identity columns (the SQLite ids are 64-bit rowids too); the adapter turns
 * them into numbers. Times are epoch milliseconds in bigint columns, flags are booleans.
 */
const TENANTS_USERS_GROUPS_FILES = `
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);

CREATE TABLE orgs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  uuid text NOT NULL UNIQUE,
  name text NOT NULL,
  client_id text NOT NULL UNIQUE,
  client_secret text NOT NULL,
  cred_gen integer NOT NULL DEFAULT 0,
  created bigint NOT NULL
);
CREATE UNIQUE INDEX orgs_name ON orgs (lower(name));

CREATE TABLE admins (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  uuid text NOT NULL UNIQUE,
  username text NOT NULL,
  email text NOT NULL,
  password_hash text NOT NULL,
  pw_gen integer NOT NULL DEFAULT 0,
  sysadmin boolean NOT NULL DEFAULT false,
  created bigint NOT NULL,
  modified bigint NOT NULL
);
CREATE UNIQUE INDEX admins_username ON admins (lower(username));
CREATE INDEX admins_email ON admins (lower(email));

CREATE TABLE org_admins (
  org_id bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  admin_id bigint NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
  PRIMARY KEY (org_id, admin_id)
);
CREATE INDEX org_admins_by_admin ON org_admins (admin_id);

CREATE TABLE apps (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  uuid text NOT NULL UNIQUE,
  org_id bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  name text NOT NULL,
  client_id text NOT NULL UNIQUE,
  client_secret text NOT NULL,
  cred_gen integer NOT NULL DEFAULT 0,
  open_registration boolean NOT NULL DEFAULT false,
  created bigint NOT NULL
);
CREATE UNIQUE INDEX apps_name ON apps (org_id, lower(name));

-- properties is json, not jsonb: json keeps the text as given, so keys come back in their order.
CREATE TABLE users (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  app_id bigint NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
  uuid text NOT NULL UNIQUE,
  username text NOT NULL,
  password_hash text NOT NULL,
  pw_gen integer NOT NULL DEFAULT 0,
  activated boolean NOT NULL DEFAULT true,
  properties json NOT NULL DEFAULT '{}',
  created bigint NOT NULL,
  modified bigint NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (app_id, lower(username));
CREATE INDEX users_by_created ON users (app_id, created, id);

-- Each friendship is two rows, one per direction.
CREATE TABLE contacts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  owner_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  friend_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created bigint NOT NULL,
  UNIQUE (owner_id, friend_id)
);
CREATE INDEX contacts_by_friend ON contacts (friend_id);

CREATE TABLE user_blocks (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  owner_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  blocked_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created bigint NOT NULL,
  UNIQUE (owner_id, blocked_id)
);
CREATE INDEX user_blocks_by_blocked ON user_blocks (blocked_id);

-- Groups and rooms share one table. The owner is a column, not a member row; a user who owns
-- groups cannot be deleted until they are (no cascade), so no group is left without an owner.
CREATE TABLE chat_groups (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  app_id bigint NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('group', 'room')),
  gid text NOT NULL,
  name text NOT NULL,
  description text NOT NULL,
  public boolean NOT NULL,
  members_only boolean NOT NULL,
  allow_invites boolean NOT NULL,
  max_users integer NOT NULL,
  owner_id bigint NOT NULL REFERENCES users(id),
  created bigint NOT NULL,
  modified bigint NOT NULL,
  UNIQUE (app_id, gid)
);
CREATE INDEX chat_groups_by_kind ON chat_groups (app_id, kind, id);
CREATE INDEX chat_groups_by_owner ON chat_groups (owner_id, kind);

CREATE TABLE group_members (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  group_id bigint NOT NULL REFERENCES chat_groups(id) ON DELETE CASCADE,
  user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  joined bigint NOT NULL,
  UNIQUE (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members (user_id);

CREATE TABLE group_blocks (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  group_id bigint NOT NULL REFERENCES chat_groups(id) ON DELETE CASCADE,
  user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created bigint NOT NULL,
  UNIQUE (group_id, user_id)
);
CREATE INDEX group_blocks_by_user ON group_blocks (user_id);

-- Metadata of uploaded chat files; the bytes live in the blob store under blob_key.
CREATE TABLE chat_files (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  app_id bigint NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
  uuid text NOT NULL UNIQUE,
  blob_key text NOT NULL,
  content_type text NOT NULL,
  size bigint NOT NULL,
  secret text,
  thumb_width integer,
  thumb_height integer,
  created bigint NOT NULL,
  modified bigint NOT NULL
);
`;

/**
 * Versioned migrations of the PostgreSQL store. A migration is never edited once released:
 * a change to the schema is a new entry at the end.
 */
const RELEASED: string[] = [
  // 1: tenants, admins, IM users, contacts and block lists, groups and rooms, chat files
  TENANTS_USERS_GROUPS_FILES,
  // 2: chat messages (postgres-messages.ts)
  MESSAGES_MIGRATION,
  // 3: chat file bytes shared by every node (files/postgres-blob-store.ts); node numbers of message ids
  `${BLOBS_MIGRATION}
  CREATE SEQUENCE node_ids;`,
  // 4: real-time delivery: recipients' inboxes and client send ids (postgres-deliveries.ts)
  DELIVERIES_MIGRATION,
];

// A step still empty in this build (a placeholder) is not known yet, nor is anything after it:
// recording it as applied would skip the real step once it arrives.
const firstEmpty = RELEASED.findIndex((sql) => sql.trim() === '');
const MIGRATIONS = firstEmpty === -1 ? RELEASED : RELEASED.slice(0, firstEmpty);

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/**
 * Brings the schema to the newest version, each step in its own transaction. A session advisory
 * lock (keyed by the schema) makes nodes that start at the same moment take turns: the second
 * finds the work done. `schema`, when given, is created first if missing (under the same lock).
 * `fresh` is true when the schema had no migrations table before.
 */
export async function migrate(pool: pg.Pool, schema: string | null = null): Promise<{ from: number; to: number; fresh: boolean }> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query("SELECT pg_advisory_lock(hashtext('chatvault:migrate:' || coalesce($1::text, current_schema(), '')))", [schema]);
    try {
      if (schema !== null) await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
      const exists = await client.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
      const fresh = exists.rows[0]?.t == null;
      if (fresh) await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied bigint NOT NULL)');
      const cur = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
      const from = cur.rows[0]?.v ?? 0;
      if (from > MIGRATIONS.length) {
        throw new Error(`the database was written by a newer chatvault (schema ${from}, this build knows ${MIGRATIONS.length})`);
      }
      for (let v = from; v < MIGRATIONS.length; v++) {
        await client.query('BEGIN');
        try {
          await client.query(MIGRATIONS[v]!);
          await client.query('INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)', [v + 1, Date.now()]);
          await client.query('COMMIT');
        } catch (e) {
          await client.query('ROLLBACK');
          throw new Error(`PostgreSQL schema migration ${v + 1} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
      }
      return { from, to: MIGRATIONS.length, fresh };
    } finally {
      await client.query("SELECT pg_advisory_unlock(hashtext('chatvault:migrate:' || coalesce($1::text, current_schema(), '')))", [schema]);
    }
  } catch (e) {
    // The session may hold the advisory lock after a failed unlock: never hand it back to the pool.
    broken = e instanceof Error ? e : new Error(String(e));
    throw e;
  } finally {
    client.release(broken);
  }
}
