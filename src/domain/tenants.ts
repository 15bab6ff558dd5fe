import { ApiError, errors } from '../errors.js';
import { DuplicateError, type AdminRow, type AppRow, type OrgRow, type Store } from '../store/store.js';
import { clientSecret, uuidV1 } from '../util/ids.js';
import type { AppCache } from './app-cache.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { canAdminApp, canAdminOrg, type Principal, type TokenService } from './tokens.js';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$/;
// Path segments that routes own: an org with one of these names could never be reached.
const RESERVED_ORGS = new Set(['management', 'status', 'ws', 'console', 'export', 'health', 'metrics']);

/** Credentials of an app as the CLI and the API print them. */
export interface AppCredentials {
  org: string;
  app: string;
  application: string;
  appkey: string;
  client_id: string;
  client_secret: string;
}

/** Organizations, apps, admin users and the tokens they are granted. */
export class TenantService {
  constructor(
    private readonly store: Store,
    private readonly tokens: TokenService,
    private readonly ttl: number,
    private readonly apps: AppCache,
  ) {}

  /** Creates the system administrator, or updates its password when it already exists. */
  async ensureSysadmin(username: string, password: string): Promise<AdminRow> {
    const existing = await this.store.findAdmin(username);
    if (existing && existing.sysadmin && (await verifyPassword(password, existing.passwordHash))) return existing;
    return this.store.upsertAdmin({
      uuid: existing?.uuid ?? uuidV1(),
      username,
      email: existing?.email ?? `${username}@localhost`,
      passwordHash: await hashPassword(password),
      sysadmin: true,
      created: existing?.created ?? Date.now(),
    });
  }

  /** Creates an organization with its first admin user (who may already exist). */
  async createOrg(name: string, admin: { username: string; email: string; password: string }): Promise<{ org: OrgRow; owner: AdminRow }> {
    checkName('organization', name);
    if (RESERVED_ORGS.has(name.toLowerCase())) throw errors.illegalArgument(`organization name ${name} is reserved`);
    if (await this.store.getOrgByName(name)) throw new ApiError(400, 'duplicate_unique_property_exists', `Organization ${name} already exists`);
    let owner = await this.store.findAdmin(admin.username);
    if (owner) {
      if (!(await verifyPassword(admin.password, owner.passwordHash))) {
        throw new ApiError(400, 'duplicate_unique_property_exists', `Admin user ${admin.username} already exists`);
      }
    } else {
      if (!/^[a-zA-Z0-9_.@-]{1,64}$/.test(admin.username)) throw errors.illegalArgument(`username [${admin.username}] is not legal`);
      owner = await this.store.createAdmin({
        uuid: uuidV1(), username: admin.username, email: admin.email, passwordHash: await hashPassword(admin.password),
        sysadmin: false, created: Date.now(),
      });
    }
    let org: OrgRow;
    try {
      org = await this.store.createOrg({ uuid: uuidV1(), name, clientId: clientSecret(18), clientSecret: clientSecret(21), created: Date.now() });
    } catch (e) {
      if (e instanceof DuplicateError) throw new ApiError(400, 'duplicate_unique_property_exists', `Organization ${name} already exists`);
      throw e;
    }
    await this.store.addOrgAdmin(org.id, owner.id);
    return { org, owner };
  }

  /** The org by name, created (administered by `adminId`, if given) when missing: for the CLI and first start. */
  async ensureOrg(name: string, adminId?: number): Promise<OrgRow> {
    let org = await this.store.getOrgByName(name);
    if (!org) {
      checkName('organization', name);
      if (RESERVED_ORGS.has(name.toLowerCase())) throw errors.illegalArgument(`organization name ${name} is reserved`);
      org = await this.store.createOrg({ uuid: uuidV1(), name, clientId: clientSecret(18), clientSecret: clientSecret(21), created: Date.now() });
    }
    if (adminId !== undefined) await this.store.addOrgAdmin(org.id, adminId);
    return org;
  }

  /** Creates an app in an organization. */
  async createApp(org: OrgRow, name: string, openRegistration = false): Promise<AppRow> {
    checkName('application', name);
    try {
      return await this.store.createApp({
        uuid: uuidV1(), orgId: org.id, name, clientId: clientSecret(18), clientSecret: clientSecret(21), openRegistration, created: Date.now(),
      });
    } catch (e) {
      if (e instanceof DuplicateError) throw new ApiError(400, 'duplicate_unique_property_exists', `Application ${org.name}/${name} already exists`);
      throw e;
    }
  }

  /** Issues new client credentials; every token of the old ones stops working. */
  async regenerateCredentials(app: AppRow): Promise<AppRow> {
    const updated = await this.store.setAppCredentials(app.id, clientSecret(18), clientSecret(21));
    this.apps.clear();
    this.tokens.forget();
    return updated;
  }

  /** Switches open registration of an app. */
  async setOpenRegistration(app: AppRow, open: boolean): Promise<AppRow> {
    const updated = await this.store.setOpenRegistration(app.id, open);
    this.apps.clear();
    return updated;
  }

  /** The org, or 404. */
  async org(name: string): Promise<OrgRow> {
    const org = await this.store.getOrgByName(name);
    if (!org) throw errors.orgNotFound(name);
    return org;
  }

  /** The app of `/{org}/{app}/...`, or the documented 404. */
  async app(orgName: string, appName: string, rest: string): Promise<AppRow> {
    const app = await this.apps.get(orgName, appName);
    if (!app) throw errors.appNotFound(orgName, appName, rest);
    return app;
  }

  /** Fails with 401 unless the principal may administer the org. */
  async requireOrgAdmin(p: Principal, org: OrgRow): Promise<void> {
    if (!(await canAdminOrg(this.store, p, org))) throw errors.unauthorized('No organization access authorized');
  }

  /** `POST /management/token`: an admin user's password grant or an org's client credentials. */
  async managementToken(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const ttl = readTtl(body, this.ttl);
    const grant = body.grant_type;
    if (grant === 'password') {
      const username = typeof body.username === 'string' ? body.username : '';
      const password = typeof body.password === 'string' ? body.password : '';
      const admin = username ? await this.store.findAdmin(username) : null;
      if (!admin || !(await verifyPassword(password, admin.passwordHash))) throw errors.invalidGrant('invalid username or password');
      return {
        access_token: this.tokens.issue('admin', admin.id, admin.pwGen, ttl),
        expires_in: ttl,
        user: await this.adminView(admin),
      };
    }
    if (grant === 'client_credentials') {
      const org = typeof body.client_id === 'string' ? await this.store.getOrgByClientId(body.client_id) : null;
      if (!org) throw errors.invalidGrant('client_id does not match');
      if (body.client_secret !== org.clientSecret) throw errors.invalidGrant('client_secret does not match');
      return {
        access_token: this.tokens.issue('org', org.id, org.credGen, ttl),
        expires_in: ttl,
        organization: await this.orgView(org),
      };
    }
    throw unsupportedGrant(grant);
  }

  /** `POST /{org}/{app}/token` with client credentials (the password grant is the user service's). */
  async appToken(app: AppRow, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const ttl = readTtl(body, this.ttl);
    if (body.client_id !== app.clientId) throw errors.invalidGrant('client_id does not match');
    if (body.client_secret !== app.clientSecret) throw errors.invalidGrant('client_secret does not match');
    return { access_token: this.tokens.issue('app', app.id, app.credGen, ttl), expires_in: ttl, application: app.uuid };
  }

  /** What the CLI and the credentials endpoint print for an app. */
  credentials(app: AppRow): AppCredentials {
    return {
      org: app.orgName, app: app.name, application: app.uuid, appkey: `${app.orgName}#${app.name}`,
      client_id: app.clientId, client_secret: app.clientSecret,
    };
  }

  /** Usergrid's admin-user object, with the orgs and apps it administers. */
  async adminView(admin: AdminRow): Promise<Record<string, unknown>> {
    const organizations: Record<string, unknown> = {};
    for (const org of await this.store.orgsOfAdmin(admin.id)) organizations[org.name] = await this.orgView(org);
    return {
      applicationId: '00000000-0000-0000-0000-000000000001',
      username: admin.username, email: admin.email, name: admin.username,
      uuid: admin.uuid, activated: true, disabled: false, adminUser: true, properties: {},
      displayEmailAddress: `${admin.username} <${admin.email}>`,
      organizations,
    };
  }

  /** An organization with its applications, as Usergrid listed them. */
  async orgView(org: OrgRow): Promise<Record<string, unknown>> {
    return { name: org.name, uuid: org.uuid, applications: await this.appMap(org) };
  }

  /** `{"org/app": "<uuid>", ...}` of every app of the org. */
  async appMap(org: OrgRow): Promise<Record<string, string>> {
    const apps: Record<string, string> = {};
    for (const a of await this.store.listApps(org.id)) apps[`${org.name}/${a.name}`] = a.uuid;
    return apps;
  }

  /** True when the principal may administer the app. */
  canAdminApp(p: Principal, app: AppRow): Promise<boolean> {
    return canAdminApp(this.store, p, app);
  }
}

function checkName(what: string, name: string): void {
  if (!NAME_RE.test(name)) {
    throw errors.illegalArgument(`${what} name [${name}] is not legal: use 1-64 letters, digits, '-' or '_', starting with a letter or digit`);
  }
}

/** `ttl` in seconds (number or numeric string); 0 means the token never expires. */
export function readTtl(body: Record<string, unknown>, fallback: number): number {
  const raw = body.ttl;
  if (raw === undefined || raw === null || raw === '') return fallback;
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 10 * 365 * 86400) throw errors.illegalArgument('ttl must be a whole number of seconds (0 = never expires)');
  return n;
}

export function unsupportedGrant(grant: unknown): ApiError {
  return new ApiError(
    400, 'unsupported_grant_type',
    grant === undefined ? 'grant_type must be provided' : `grant_type ${JSON.stringify(grant)} is not supported`,
    undefined, true,
  );
}
