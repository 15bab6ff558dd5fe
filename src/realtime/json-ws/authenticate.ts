import { ApiError } from '../../errors.js';
import { verifyPassword } from '../../domain/passwords.js';
import type { Services } from '../../services.js';
import type { AppRow, UserRow } from '../../store/store.js';
import type { Credentials } from './client-frame.js';

export type AuthResult = { ok: true; app: AppRow; user: UserRow } | { ok: false; message: string };

/**
 * Who the credentials are: a REST user token (checked like a Bearer token: expiry, revocation,
 * deactivation), or appkey + user name + password. Never throws: a store failure is a refusal.
 */
export async function authenticate(s: Services, c: Credentials): Promise<AuthResult> {
  try {
    if ('token' in c) {
      const p = await s.tokens.principal(c.token);
      if (p.kind !== 'user') return { ok: false, message: 'not a user token' };
      return { ok: true, app: p.app, user: p.user };
    }
    const hash = c.appkey.indexOf('#');
    if (hash <= 0) return { ok: false, message: 'appkey is org#app' };
    const app = await s.store.getApp(c.appkey.slice(0, hash), c.appkey.slice(hash + 1));
    // getApp also matches uuids; an appkey names the app.
    if (!app || app.name.toLowerCase() !== c.appkey.slice(hash + 1).toLowerCase()) return { ok: false, message: 'wrong user name or password' };
    const user = await s.store.getUser(app.id, c.username);
    if (!user || user.username.toLowerCase() !== c.username.toLowerCase()) return { ok: false, message: 'wrong user name or password' };
    if (!(await verifyPassword(c.password, user.passwordHash))) return { ok: false, message: 'wrong user name or password' };
    if (!user.activated) return { ok: false, message: `user ${user.username} is deactivated` };
    return { ok: true, app, user };
  } catch (e) {
    return { ok: false, message: e instanceof ApiError ? (e.description ?? e.code) : 'login failed' };
  }
}
