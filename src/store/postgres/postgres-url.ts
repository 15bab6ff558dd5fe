// Schema names chatvault accepts in `?schema=`: plain identifiers, so they need no escaping in the
// `options` connection parameter, and at most 63 bytes (PostgreSQL's identifier length).
const SCHEMA_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Splits chatvault's own `schema=<name>` parameter off a PostgreSQL URL (pg would silently ignore
 * it), and the URL's `options` parameter too: the store appends its search_path to those, whereas
 * an `options` left in the URL would replace the store's.
 */
export function parseDatabaseUrl(url: string): { connectionString: string; schema: string | null; options: string | null } {
  const u = new URL(url);
  const schema = u.searchParams.get('schema');
  const options = u.searchParams.get('options');
  u.searchParams.delete('schema');
  u.searchParams.delete('options');
  if (schema !== null && !SCHEMA_NAME_RE.test(schema)) {
    throw new Error(`DATABASE_URL: schema must be a plain identifier (letters, digits, _), not ${JSON.stringify(schema)}`);
  }
  return { connectionString: u.toString(), schema, options };
}
