/**
 * The chat-message part of the PostgreSQL schema: one migration step, run inside a transaction
 * in the store's schema (names are resolved through search_path, never schema-qualified).
 * Like every migration it is never edited once released; a change is a new step.
 *
 * - `messages` is partitioned by RANGE on `timestamp` (ms), one partition per UTC month, made
 *   ahead of time and on demand (postgres-partitions.ts). Its indexes follow the query shapes of
 *   sqlite-schema.ts; text columns are COLLATE "C" and compared through lower(), which under "C"
 *   folds ASCII only, exactly like SQLite's NOCASE (and orders by code point like it).
 * - `message_keys` is the small, unpartitioned twin of each message: the per-app unique
 *   msg_id (a unique index on a partitioned table would have to contain `timestamp`), the seq
 *   and the id of the inserting transaction, which the high-water mark reads (see
 *   postgres-messages.ts for the argument). A deleted message leaves its key row behind with
 *   msg_id NULL, so the high-water mark never goes back, as SQLite's AUTOINCREMENT does not.
 * - `message_seq` hands out seqs, only inside cv_insert_messages.
 */
export const MESSAGES_MIGRATION = String.raw`
CREATE SEQUENCE message_seq AS bigint;

CREATE TABLE message_keys (
  seq bigint PRIMARY KEY,
  app_id integer NOT NULL,
  msg_id text COLLATE "C",
  timestamp bigint NOT NULL,
  xid xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE UNIQUE INDEX message_keys_msg_id ON message_keys (app_id, lower(msg_id));

CREATE TABLE messages (
  seq bigint NOT NULL,
  app_id integer NOT NULL,
  timestamp bigint NOT NULL,
  created bigint NOT NULL,
  lat float8,
  lng float8,
  uuid text COLLATE "C" NOT NULL,
  msg_id text COLLATE "C" NOT NULL,
  from_user text COLLATE "C" NOT NULL,
  to_id text COLLATE "C" NOT NULL,
  chat_type text COLLATE "C" NOT NULL,
  body_type text COLLATE "C",
  -- Tokens of the txt bodies (postgres-message-text.ts): a tsvector, or for the rare text past
  -- tsvector's limits the token list.
  fts tsvector,
  fts_overflow text[],
  -- The export record: the exact UTF-8 bytes of its JSON, spliced into pages as they are.
  entity bytea NOT NULL
) PARTITION BY RANGE (timestamp);

CREATE INDEX messages_by_time ON messages (app_id, timestamp, seq);
CREATE INDEX messages_by_seq ON messages (app_id, seq);
CREATE INDEX messages_by_from ON messages (app_id, lower(from_user), timestamp, seq);
CREATE INDEX messages_by_to ON messages (app_id, lower(to_id), timestamp, seq);
CREATE INDEX messages_by_chat_type ON messages (app_id, lower(chat_type), timestamp, seq);
CREATE INDEX messages_by_body_type ON messages (app_id, lower(body_type), timestamp, seq);
CREATE INDEX messages_fts ON messages USING gin (fts) WHERE fts IS NOT NULL;
CREATE INDEX messages_fts_overflow ON messages (app_id) WHERE fts_overflow IS NOT NULL;
CREATE INDEX messages_geo ON messages USING gist (point(lng, lat)) WHERE lat IS NOT NULL;

-- Creates the partition of one month [lo, hi) unless it exists. Two nodes may try at once: the
-- advisory lock (per messages table) makes the second one find the first one's table.
CREATE FUNCTION cv_message_partition(name text, lo bigint, hi bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(1668707694, 'messages'::regclass::oid::int);
  IF to_regclass(quote_ident(name)) IS NULL THEN
    EXECUTE format('CREATE TABLE %I PARTITION OF messages FOR VALUES FROM (%s) TO (%s)', name, lo, hi);
  END IF;
END $$;

DO $$
DECLARE
  m timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
BEGIN
  FOR i IN 0..3 LOOP
    PERFORM cv_message_partition(
      'messages_' || to_char(m, 'YYYY_MM'),
      (extract(epoch FROM m) * 1000)::bigint,
      (extract(epoch FROM m + interval '1 month') * 1000)::bigint);
    m := m + interval '1 month';
  END LOOP;
END $$;

-- Lower case as JavaScript's toLowerCase (full Unicode mapping, as SQLite's cv_lower): ICU's
-- root locale when the server has ICU, else the database's own.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu') THEN
    EXECUTE $f$CREATE FUNCTION cv_lower(s text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
      RETURN lower(s COLLATE "und-x-icu")$f$;
  ELSE
    EXECUTE $f$CREATE FUNCTION cv_lower(s text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
      RETURN lower(s COLLATE "default")$f$;
  END IF;
END $$;

-- Great-circle distance in metres on Usergrid's sphere, with the operations of
-- sqlite-ql.ts distanceMeters in the same order.
CREATE FUNCTION cv_distance(lat1 float8, lng1 float8, lat2 float8, lng2 float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
  2 * 6378135 * asin(least(1, sqrt(
    sin((lat2 - lat1) * (pi() / 180) / 2) ^ 2
    + cos(lat1 * (pi() / 180)) * cos(lat2 * (pi() / 180)) * sin((lng2 - lng1) * (pi() / 180) / 2) ^ 2)));

-- A JSON value as a sort key, ordered as SQLite orders json_extract results: numbers (booleans
-- as 1/0) before text (strings, and objects/arrays as their JSON text), text lower-cased;
-- r is NULL for null and missing values.
CREATE FUNCTION cv_json_key(v json) RETURNS TABLE (r int, n numeric, t text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN x.jt IN ('number', 'boolean') THEN 0 WHEN x.jt IN ('string', 'object', 'array') THEN 1 END,
         CASE x.jt WHEN 'number' THEN (v::text)::numeric WHEN 'boolean' THEN CASE WHEN v::text = 'true' THEN 1 ELSE 0 END ELSE 0 END,
         CASE x.jt WHEN 'string' THEN cv_lower(v #>> '{}') WHEN 'object' THEN cv_lower(v::text) WHEN 'array' THEN cv_lower(v::text) ELSE '' END
  FROM (SELECT json_typeof(v) AS jt) x
$$;

-- An object key as a ql path component (sqlite-ql.ts normalizeJsonPath).
CREATE FUNCTION cv_json_path_key(k text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN cv_lower(replace(regexp_replace(k, '\[\d+\]', '', 'g'), '"', ''));

-- The scalar values of a message's payload found along a ql path ('$.payload.ext.tag'):
-- keys compared without case, arrays walked at any depth, as SQLite's json_tree walk.
CREATE FUNCTION cv_json_atoms(doc jsonb, target text) RETURNS SETOF jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  WITH RECURSIVE t(p, v) AS (
    SELECT '$.payload'::text, doc -> 'payload'
    UNION ALL
    SELECT e.p, e.v FROM t CROSS JOIN LATERAL (
      SELECT t.p || '.' || cv_json_path_key(o.key) AS p, o.value AS v
        FROM jsonb_each(CASE WHEN jsonb_typeof(t.v) = 'object' THEN t.v END) o
      UNION ALL
      SELECT t.p, a.value FROM jsonb_array_elements(CASE WHEN jsonb_typeof(t.v) = 'array' THEN t.v END) a
    ) e
    WHERE e.p = target OR starts_with(target, e.p || '.')
  )
  SELECT v FROM t WHERE p = target AND jsonb_typeof(v) NOT IN ('object', 'array')
$$;

-- Does the token list hold the phrase (the last token as a prefix when asked)? text-match.ts textContains.
CREATE FUNCTION cv_phrase(toks text[], phrase text[], prefix boolean) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  n int := coalesce(cardinality(phrase), 0);
  h int := coalesce(cardinality(toks), 0);
  ok boolean;
BEGIN
  IF n = 0 THEN RETURN false; END IF;
  FOR i IN 1 .. h - n + 1 LOOP
    ok := true;
    FOR j IN 1 .. n LOOP
      IF prefix AND j = n THEN
        ok := starts_with(toks[i + j - 1], phrase[j]);
      ELSE
        ok := toks[i + j - 1] = phrase[j];
      END IF;
      EXIT WHEN NOT ok;
    END LOOP;
    IF ok THEN RETURN true; END IF;
  END LOOP;
  RETURN false;
END $$;

-- The tokens of a text as text-match.ts textTokens cuts them ('bi' words and CJK bigrams, or
-- 'uni' words and CJK characters), from the text already normalized and lower-cased (cv_norm);
-- runs is postgres-message-text.ts tokenRunPattern().
CREATE FUNCTION cv_tokens(norm text, runs text, uni boolean) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(g.tok ORDER BY r.i, g.j), '{}')
  FROM regexp_matches(norm, runs, 'g') WITH ORDINALITY AS r(m, i)
  CROSS JOIN LATERAL (
    SELECT r.m[2] AS tok, 1 AS j WHERE r.m[2] IS NOT NULL
    UNION ALL
    SELECT substr(r.m[1], k, CASE WHEN uni THEN 1 ELSE 2 END), k
      FROM generate_series(1, greatest(char_length(r.m[1]) - CASE WHEN uni THEN 0 ELSE 1 END, 1)) k
     WHERE r.m[1] IS NOT NULL
  ) g
$$;

-- contains on a field without a token index: text-match.ts textContains (false for NULL). Every
-- token is a piece of the normalized text, so a text that lacks one of the phrase's tokens is
-- out before it is cut into tokens.
CREATE FUNCTION cv_contains(s text, phrase text[], prefix boolean, uni boolean, runs text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN s IS NULL THEN false ELSE (
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM unnest(phrase) t WHERE strpos(x.norm, t) = 0)
                THEN cv_phrase(cv_tokens(x.norm, runs, uni), phrase, prefix) ELSE false END
      FROM (SELECT cv_lower(normalize(s, NFKC)) AS norm) x) END
$$;

-- The bulk pages (no where clause: whole exports and streams), whose query text never changes,
-- as functions, so that PostgreSQL keeps their plans per connection (planning a query over many
-- partitions costs more than running a page of it). The same page as postgres-messages.ts
-- readSpliced builds for any query: one row more than the limit, aggregated in page order;
-- without a keyset the bound is a sentinel every message passes.
CREATE FUNCTION cv_page_by_seq(app int, max_seq bigint, after_seq bigint, lim int, sep bytea)
RETURNS TABLE (n text, body bytea, extra text, last_seq text) LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT count(*)::text, string_agg(p.e, sep), ((array_agg(length(p.e)))[lim + 1])::text, ((array_agg(p.seq))[least(count(*), lim)])::text
    FROM (SELECT m.seq, m.entity AS e FROM messages m
           WHERE m.app_id = app AND m.seq <= max_seq AND m.seq > after_seq
           ORDER BY m.seq LIMIT lim + 1) p;
END $$;

CREATE FUNCTION cv_page_by_time(app int, max_seq bigint, after_ts bigint, after_seq bigint, descending boolean, lim int, sep bytea)
RETURNS TABLE (n text, body bytea, extra text, last_seq text, last_ts text) LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
  IF descending THEN
    RETURN QUERY
    SELECT count(*)::text, string_agg(p.e, sep), ((array_agg(length(p.e)))[lim + 1])::text,
           ((array_agg(p.seq))[least(count(*), lim)])::text, ((array_agg(p.ts))[least(count(*), lim)])::text
      FROM (SELECT m.seq, m.timestamp AS ts, m.entity AS e FROM messages m
             WHERE m.app_id = app AND m.seq <= max_seq AND (m.timestamp, m.seq) < (after_ts, after_seq) AND m.timestamp <= after_ts
             ORDER BY m.timestamp DESC, m.seq DESC LIMIT lim + 1) p;
  ELSE
    RETURN QUERY
    SELECT count(*)::text, string_agg(p.e, sep), ((array_agg(length(p.e)))[lim + 1])::text,
           ((array_agg(p.seq))[least(count(*), lim)])::text, ((array_agg(p.ts))[least(count(*), lim)])::text
      FROM (SELECT m.seq, m.timestamp AS ts, m.entity AS e FROM messages m
             WHERE m.app_id = app AND m.seq <= max_seq AND (m.timestamp, m.seq) > (after_ts, after_seq) AND m.timestamp >= after_ts
             ORDER BY m.timestamp, m.seq LIMIT lim + 1) p;
  END IF;
END $$;

-- Stores a group commit of messages and returns the seq of the first (the others follow in
-- order). It must be the first write of its transaction: the seqs are taken under a short
-- session-level advisory lock together with the transaction's id, so that seq order is
-- transaction-id order (the high-water mark in postgres-messages.ts rests on it). The
-- ROW EXCLUSIVE lock on message_keys, taken before, is how readers see that a writer is in flight.
CREATE FUNCTION cv_insert_messages(
  app_ids int[], msg_ids text[], uuids text[], tss bigint[], createds bigint[], froms text[], tos text[],
  chat_types text[], body_types text[], lats float8[], lngs float8[], ftss text[], overflows text[],
  entities bytea, lens int[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n int := cardinality(app_ids);
  first bigint;
  locked boolean := false;
BEGIN
  IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
    RAISE EXCEPTION 'cv_insert_messages must be the first write of its transaction';
  END IF;
  LOCK TABLE message_keys IN ROW EXCLUSIVE MODE;
  BEGIN
    PERFORM pg_advisory_lock(1668707693, 'message_seq'::regclass::oid::int);
    locked := true;
    PERFORM pg_current_xact_id();
    first := nextval('message_seq');
    IF n > 1 THEN
      PERFORM setval('message_seq', first + n - 1);
    END IF;
    PERFORM pg_advisory_unlock(1668707693, 'message_seq'::regclass::oid::int);
    locked := false;
  EXCEPTION WHEN OTHERS OR query_canceled THEN
    IF locked THEN
      PERFORM pg_advisory_unlock(1668707693, 'message_seq'::regclass::oid::int);
    END IF;
    RAISE;
  END;
  INSERT INTO message_keys (seq, app_id, msg_id, timestamp)
  SELECT first + u.i - 1, u.a, u.mid, u.ts FROM unnest(app_ids, msg_ids, tss) WITH ORDINALITY AS u(a, mid, ts, i);
  INSERT INTO messages (seq, app_id, timestamp, created, lat, lng, uuid, msg_id, from_user, to_id, chat_type, body_type, fts, fts_overflow, entity)
  SELECT first + u.i - 1, u.a, u.ts, u.cr, u.lat, u.lng, u.uuid, u.mid, u.fr, u.too, u.ct, u.bt,
         u.fts::tsvector, string_to_array(u.ov, ' '),
         substring(entities FROM (sum(u.len) OVER (ORDER BY u.i) - u.len + 1)::int FOR u.len)
  FROM unnest(app_ids, tss, createds, lats, lngs, uuids, msg_ids, froms, tos, chat_types, body_types, ftss, overflows, lens)
       WITH ORDINALITY AS u(a, ts, cr, lat, lng, uuid, mid, fr, too, ct, bt, fts, ov, len, i);
  RETURN first;
END $$;

-- Stores messages copied from another store with their seqs (chatvault migrate); one whose seq
-- or msg_id is here already is left out. Resolves with how many were stored. Copied seqs do not
-- follow transaction-id order, so this is for a store that nobody walks meanwhile; the seq lock
-- is held to the end so that no insert takes seqs among them, and message_seq is moved past them.
CREATE FUNCTION cv_copy_messages(
  seqs bigint[], app_ids int[], msg_ids text[], uuids text[], tss bigint[], createds bigint[], froms text[], tos text[],
  chat_types text[], body_types text[], lats float8[], lngs float8[], ftss text[], overflows text[],
  entities bytea, lens int[]
) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  n int;
  top bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(1668707693, 'message_seq'::regclass::oid::int);
  WITH k AS (
    INSERT INTO message_keys (seq, app_id, msg_id, timestamp)
    SELECT u.seq, u.a, u.mid, u.ts FROM unnest(seqs, app_ids, msg_ids, tss) AS u(seq, a, mid, ts)
    ON CONFLICT DO NOTHING RETURNING seq)
  INSERT INTO messages (seq, app_id, timestamp, created, lat, lng, uuid, msg_id, from_user, to_id, chat_type, body_type, fts, fts_overflow, entity)
  SELECT u.seq, u.a, u.ts, u.cr, u.lat, u.lng, u.uuid, u.mid, u.fr, u.too, u.ct, u.bt, u.fts::tsvector, string_to_array(u.ov, ' '),
         substring(entities FROM u.off::int FOR u.len)
  FROM (SELECT v.*, sum(v.len) OVER (ORDER BY v.i) - v.len + 1 AS off
          FROM unnest(seqs, app_ids, tss, createds, lats, lngs, uuids, msg_ids, froms, tos, chat_types, body_types, ftss, overflows, lens)
               WITH ORDINALITY AS v(seq, a, ts, cr, lat, lng, uuid, mid, fr, too, ct, bt, fts, ov, len, i)) u
  WHERE u.seq IN (SELECT k.seq FROM k);
  GET DIAGNOSTICS n = ROW_COUNT;
  SELECT max(s) INTO top FROM unnest(seqs) s;
  IF top IS NOT NULL AND top > (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM message_seq) THEN
    PERFORM setval('message_seq', top);
  END IF;
  RETURN n;
END $$;
`;
