import { ApiError } from '../../errors.js';
import { verifyPassword } from '../../domain/passwords.js';
import type { Services } from '../../services.js';
import type { AppRow, UserRow } from '../../store/store.js';

/**
 * SASL PLAIN as the Easemob SDKs use it (spec §4.3): `authzid NUL authcid NUL password`, authzid
 * the bare JID `{org}#{app}_{user}@{domain}` (or empty), authcid its localpart, and the password
 * either `$t$` + a REST user token or the user's own password — the same store as REST, so the
 * same token expiry, revocation and deactivation rules.
 */

export type AuthOutcome = { ok: true; app: AppRow; user: UserRow } | { ok: false; condition: 'not-authorized' | 'malformed-request' | 'account-disabled' };

const TOKEN_PREFIX = '$t$';
// App names may contain `_`, so `{app}_{user}` has several readings; each costs a lookup.
const MAX_APP_CANDIDATES = 8;

/** Decodes the base64 PLAIN message; null when it is not three NUL-separated parts. */
export function decodePlain(b64: string): { authzid: string; authcid: string; password: string } | null {
  const s = b64.trim();
  if (s === '' || s === '=' || !/^[A-Za-z0-9+/]+={0,2}$/.test(s)) return null;
  const parts = Buffer.from(s, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3) return null;
  const [authzid, authcid, password] = parts as [string, string, string];
  return { authzid, authcid, password };
}

/** Checks a PLAIN message; never throws (a store failure is a failed login). */
export async function authenticatePlain(s: Services, b64: string, domain: string): Promise<AuthOutcome> {
  const plain = decodePlain(b64);
  if (!plain) return { ok: false, condition: 'malformed-request' };
  const { authzid, authcid, password } = plain;
  const hash = authcid.indexOf('#');
  if (hash <= 0 || authcid.includes('@')) return { ok: false, condition: 'not-authorized' };
  // Acting for someone else is not a thing here: the authzid, when given, is the authcid's own JID.
  if (authzid !== '' && authzid.toLowerCase() !== `${authcid}@${domain}`.toLowerCase()) return { ok: false, condition: 'not-authorized' };
  try {
    if (password.startsWith(TOKEN_PREFIX)) return await byToken(s, authcid, password.slice(TOKEN_PREFIX.length));
    return await byPassword(s, authcid.slice(0, hash), authcid.slice(hash + 1), password);
  } catch {
    return { ok: false, condition: 'not-authorized' };
  }
}

async function byToken(s: Services, authcid: string, token: string): Promise<AuthOutcome> {
  let principal;
  try {
    principal = await s.tokens.principal(token);
  } catch (e) {
    // A deactivated user's token is valid but suspended: tell the client so.
    return { ok: false, condition: e instanceof ApiError && e.code === 'auth_unactivated_appuser' ? 'account-disabled' : 'not-authorized' };
  }
  if (principal.kind !== 'user') return { ok: false, condition: 'not-authorized' };
  const { app, user } = principal;
  // The token decides who logs in; the authcid must name that very user (case-insensitively, like user names).
  if (`${app.orgName}#${app.name}_${user.username}`.toLowerCase() !== authcid.toLowerCase()) return { ok: false, condition: 'not-authorized' };
  return { ok: true, app, user };
}

async function byPassword(s: Services, org: string, rest: string, password: string): Promise<AuthOutcome> {
  let tried = 0;
  for (let i = rest.indexOf('_'); i > 0 && tried < MAX_APP_CANDIDATES; i = rest.indexOf('_', i + 1)) {
    const appName = rest.slice(0, i);
    const username = rest.slice(i + 1);
    if (username === '') break;
    tried++;
    const app = await s.store.getApp(org, appName);
    // getApp also matches uuids; a JID names the app by name.
    if (!app || app.name.toLowerCase() !== appName.toLowerCase()) continue;
    const user = await s.store.getUser(app.id, username);
    if (!user || user.username.toLowerCase() !== username.toLowerCase()) continue;
    if (!(await verifyPassword(password, user.passwordHash))) return { ok: false, condition: 'not-authorized' };
    if (!user.activated) return { ok: false, condition: 'account-disabled' };
    return { ok: true, app, user };
  }
  return { ok: false, condition: 'not-authorized' };
}
