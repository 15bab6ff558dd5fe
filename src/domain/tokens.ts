import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { errors } from '../errors.js';
import type { AppCache } from './app-cache.js';
import type { CacheInvalidation } from './cache-invalidation.js';
import type { AdminRow, AppRow, OrgRow, Store, UserRow } from '../store/store.js';

/** Who a token speaks for. */
export type TokenKind = 'admin' | 'org' | 'app' | 'user';
const KIND_CODES: Record<TokenKind, number> = { admin: 1, org: 2, app: 3, user: 4 };
const KINDS: Record<number, TokenKind> = { 1: 'admin', 2: 'org', 3: 'app', 4: 'user' };

export interface TokenClaims {
  kind: TokenKind;
  subject: number;
  /** The credential generation the token was issued under; a newer one revokes it. */
  gen: number;
  issued: number;
  /** Epoch seconds; 0 = never expires. */
  expires: number;
}

export type Principal =
  | { kind: 'admin'; admin: AdminRow }
  | { kind: 'org'; org: OrgRow }
  | { kind: 'app'; app: AppRow }
  | { kind: 'user'; user: UserRow; app: AppRow };

// `YWMt` is base64 of "ac-": Easemob's access tokens all start with it.
const PREFIX = 'YWMt';
const VERSION = 1;
const BODY = 1 + 1 + 8 + 4 + 4 + 4 + 6;
const MAC = 16;
const PRINCIPAL_TTL_MS = 1000;

/**
 * Stateless signed access tokens: the claims travel in the token, an HMAC proves we issued
 * them, and the credential generation lets a password or secret change revoke old tokens.
 * Nothing is stored per token, so tokens survive restarts and work on every node.
 */
export class TokenService {
  constructor(
    private readonly key: Buffer,
    private readonly store: Store,
    private readonly apps: AppCache,
    private readonly invalidation: CacheInvalidation,
  ) {
    invalidation.register('principals', () => this.forgetHere());
  }

  /** Issues a token; `ttlSeconds` 0 means it never expires. */
  issue(kind: TokenKind, subject: number, gen: number, ttlSeconds: number): string {
    const now = Math.floor(Date.now() / 1000);
    const b = Buffer.alloc(BODY + MAC);
    b.writeUInt8(VERSION, 0);
    b.writeUInt8(KIND_CODES[kind], 1);
    b.writeBigUInt64BE(BigInt(subject), 2);
    b.writeUInt32BE(gen >>> 0, 10);
    b.writeUInt32BE(now, 14);
    b.writeUInt32BE(ttlSeconds === 0 ? 0 : Math.min(now + ttlSeconds, 0xffffffff), 18);
    randomBytes(6).copy(b, 22);
    this.mac(b.subarray(0, BODY)).copy(b, BODY);
    return PREFIX + b.toString('base64url');
  }

  /** Reads and checks a token's signature and expiry; throws the matching 401. */
  decode(token: string): TokenClaims {
    if (!token.startsWith(PREFIX) || !/^[A-Za-z0-9_-]+$/.test(token)) throw errors.corruptToken();
    const b = Buffer.from(token.slice(PREFIX.length), 'base64url');
    if (b.length !== BODY + MAC || b.readUInt8(0) !== VERSION) throw errors.corruptToken();
    const kind = KINDS[b.readUInt8(1)];
    if (!kind) throw errors.corruptToken();
    if (!timingSafeEqual(this.mac(b.subarray(0, BODY)), b.subarray(BODY))) throw errors.unknownToken();
    const claims: TokenClaims = {
      kind,
      subject: Number(b.readBigUInt64BE(2)),
      gen: b.readUInt32BE(10),
      issued: b.readUInt32BE(14),
      expires: b.readUInt32BE(18),
    };
    if (claims.expires !== 0 && claims.expires <= Date.now() / 1000) throw errors.expiredToken();
    return claims;
  }

  /** Resolves a token to the principal it speaks for, checking it was not revoked. */
  async principal(token: string): Promise<Principal> {
    const hit = this.recent.get(token);
    const now = Date.now();
    if (hit && now - hit.at < PRINCIPAL_TTL_MS && (hit.expires === 0 || hit.expires > now / 1000)) return hit.principal;
    const c = this.decode(token);
    const principal = await this.resolve(c);
    if (this.recent.size >= 10_000) this.recent.clear();
    this.recent.set(token, { principal, at: now, expires: c.expires });
    return principal;
  }

  /**
   * Forgets the principals of recent tokens: called when this process changes something that
   * can revoke a token (credentials, a password, a deactivation, a deletion), so that it takes
   * effect at once here and, through the bus, on the other nodes; processes the bus does not
   * reach see it within PRINCIPAL_TTL_MS.
   */
  forget(): void {
    this.invalidation.invalidate('principals');
  }

  private forgetHere(): void {
    this.recent.clear();
    for (const f of this.forgetListeners) f();
  }

  /** Runs `f` whenever this node forgets its principals, for a change made here or on another node (other caches of auth-related state). */
  onForget(f: () => void): void {
    this.forgetListeners.push(f);
  }

  private readonly forgetListeners: (() => void)[] = [];

  // Every request presents a token; resolving one costs an HMAC and a lookup or two.
  private readonly recent = new Map<string, { principal: Principal; at: number; expires: number }>();

  private async resolve(c: TokenClaims): Promise<Principal> {
    switch (c.kind) {
      case 'admin': {
        const admin = await this.store.getAdminById(c.subject);
        if (!admin || admin.pwGen !== c.gen) throw errors.unknownToken();
        return { kind: 'admin', admin };
      }
      case 'org': {
        const org = await this.store.getOrgById(c.subject);
        if (!org || org.credGen !== c.gen) throw errors.unknownToken();
        return { kind: 'org', org };
      }
      case 'app': {
        const app = await this.apps.byId(c.subject);
        if (!app || app.credGen !== c.gen) throw errors.unknownToken();
        return { kind: 'app', app };
      }
      case 'user': {
        const user = await this.store.getUserById(c.subject);
        if (!user || user.pwGen !== c.gen) throw errors.unknownToken();
        // Deactivation suspends the user's tokens; they work again once it is activated.
        if (!user.activated) throw errors.deactivatedUser(user.username);
        const app = await this.apps.byId(user.appId);
        if (!app) throw errors.unknownToken();
        return { kind: 'user', user, app };
      }
    }
  }

  private mac(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update('token\0').update(body).digest().subarray(0, MAC);
  }
}

/** True when the principal may administer the app (its own app, its org's apps, or everything). */
export async function canAdminApp(store: Store, p: Principal, app: AppRow): Promise<boolean> {
  switch (p.kind) {
    case 'admin':
      return p.admin.sysadmin || (await store.isOrgAdmin(app.orgId, p.admin.id));
    case 'org':
      return p.org.id === app.orgId;
    case 'app':
      return p.app.id === app.id;
    case 'user':
      return false;
  }
}

/** True when the principal may administer the organization. */
export async function canAdminOrg(store: Store, p: Principal, org: OrgRow): Promise<boolean> {
  if (p.kind === 'admin') return p.admin.sysadmin || (await store.isOrgAdmin(org.id, p.admin.id));
  return p.kind === 'org' && p.org.id === org.id;
}
