import type { FastifyRequest } from 'fastify';
import { errors } from '../errors.js';
import type { Principal } from '../domain/tokens.js';
import type { AppRow } from '../store/store.js';
import type { Services } from '../services.js';

/** The bearer token of a request: `Authorization: Bearer x` (lenient spacing and case) or `?access_token=`. */
export function bearerToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  const value = Array.isArray(h) ? h[0] : h;
  if (value !== undefined) {
    const m = /^\s*bearer\s*(\S+)\s*$/i.exec(value);
    if (m) return m[1]!;
    if (value.trim() !== '') return value.trim().split(/\s+/).pop() ?? null;
  }
  const q = (req.query as Record<string, unknown> | undefined)?.access_token;
  return typeof q === 'string' && q !== '' ? q : null;
}

/** The principal behind the request's token, or null when it carries none. Bad tokens throw 401. */
export async function optionalPrincipal(s: Services, req: FastifyRequest): Promise<Principal | null> {
  const token = bearerToken(req);
  return token === null ? null : s.tokens.principal(token);
}

/** A principal, or 401 with the Usergrid permission message naming the verb and path. */
export async function requirePrincipal(s: Services, req: FastifyRequest, app: AppRow | null, path: string): Promise<Principal> {
  const p = await optionalPrincipal(s, req);
  if (!p) throw errors.noPermission(req.method.toLowerCase(), app?.uuid ?? '*', path);
  return p;
}

/** Passes when the token may administer the app (its app token, an org token or admin, the sysadmin). */
export async function requireAppAdmin(s: Services, req: FastifyRequest, app: AppRow, path: string): Promise<Principal> {
  const p = await requirePrincipal(s, req, app, path);
  if (!(await s.tenants.canAdminApp(p, app))) throw errors.noPermission(req.method.toLowerCase(), app.uuid, path);
  return p;
}

/**
 * Passes for an app admin, or for the IM user named in the path acting on itself.
 * Resolves to true when the caller is that user.
 */
export async function requireAdminOrSelf(s: Services, req: FastifyRequest, app: AppRow, username: string, path: string): Promise<boolean> {
  const p = await requirePrincipal(s, req, app, path);
  if (p.kind === 'user' && p.app.id === app.id && (p.user.username.toLowerCase() === username.toLowerCase() || p.user.uuid === username.toLowerCase())) {
    return true;
  }
  if (!(await s.tenants.canAdminApp(p, app))) throw errors.noPermission(req.method.toLowerCase(), app.uuid, path);
  return false;
}
