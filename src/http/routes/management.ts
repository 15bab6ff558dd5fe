import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errors } from '../../errors.js';
import type { Services } from '../../services.js';
import type { AppRow } from '../../store/store.js';
import { requireAppAdmin, requirePrincipal } from '../auth.js';
import { envelope } from '../envelope.js';

type Params = { org: string; app: string };

function bodyObject(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (b === undefined) return {};
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw errors.illegalArgument('the request body must be a JSON object');
  return b as Record<string, unknown>;
}

function str(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v.trim() === '') throw errors.illegalArgument(`${key} must be provided`);
  return v.trim();
}

/** The request's path, for the permission message (the route pattern would show `:org`). */
function pathOf(req: FastifyRequest): string {
  return req.url.split('?')[0]!;
}

/** The application entity of the management API. */
function appEntity(a: AppRow): Record<string, unknown> {
  return {
    uuid: a.uuid, type: 'application', name: `${a.orgName}/${a.name}`, created: a.created, modified: a.created,
    organizationName: a.orgName, applicationName: a.name, appkey: `${a.orgName}#${a.name}`,
    allow_open_registration: a.openRegistration,
  };
}

/** The Usergrid management API (spec §1.3): admin tokens, organizations, apps, credentials. */
export function managementRoutes(app: FastifyInstance, s: Services): void {
  // Read s.config.publicUrl per request: with PORT=0 it only gets its real port once the server listens.

  app.post('/management/token', async (req) => s.tenants.managementToken(bodyObject(req)));

  const createOrg = async (req: FastifyRequest) => {
    const p = await requirePrincipal(s, req, null, '/management/organizations');
    if (p.kind !== 'admin' || !p.admin.sysadmin) throw errors.unauthorized('Only the system administrator may create organizations');
    const b = bodyObject(req);
    const { org, owner } = await s.tenants.createOrg(str(b, 'organization'), {
      username: str(b, 'username'),
      email: typeof b.email === 'string' && b.email.trim() !== '' ? b.email.trim() : `${str(b, 'username')}@localhost`,
      password: str(b, 'password'),
    });
    const now = Date.now();
    return {
      action: 'new organization', status: 'ok',
      data: { owner: await s.tenants.adminView(owner), organization: { name: org.name, uuid: org.uuid } },
      timestamp: now, duration: now - req.startedAt,
    };
  };
  for (const orgs of ['/management/organizations', '/management/orgs']) {
    app.post(orgs, createOrg);

    for (const apps of ['applications', 'apps']) {
      const base = `${orgs}/:org/${apps}`;

      app.get<{ Params: { org: string } }>(base, async (req) => {
        const org = await s.tenants.org(req.params.org);
        await s.tenants.requireOrgAdmin(await requirePrincipal(s, req, null, pathOf(req)), org);
        const now = Date.now();
        return { action: 'get organization application', data: await s.tenants.appMap(org), timestamp: now, duration: now - req.startedAt };
      });

      app.post<{ Params: { org: string } }>(base, async (req) => {
        const org = await s.tenants.org(req.params.org);
        await s.tenants.requireOrgAdmin(await requirePrincipal(s, req, null, pathOf(req)), org);
        const b = bodyObject(req);
        const created = await s.tenants.createApp(org, str(b, 'name'), b.allow_open_registration === true);
        const now = Date.now();
        return {
          action: 'new application for organization', entities: [appEntity(created)],
          data: { [`${org.name}/${created.name}`]: created.uuid }, timestamp: now, duration: now - req.startedAt,
        };
      });

      const one = `${base}/:app`;
      app.get<{ Params: Params }>(one, async (req) => {
        const a = await s.tenants.app(req.params.org, req.params.app, '');
        await s.tenants.requireOrgAdmin(await requirePrincipal(s, req, a, pathOf(req)), await s.tenants.org(a.orgName));
        return envelope(req, s.config.publicUrl, { action: 'get', app: a, entities: [appEntity(a)] });
      });

      const creds = `${one}/credentials`;
      const credentialsOf = async (req: FastifyRequest<{ Params: Params }>, regenerate: boolean) => {
        const a = await s.tenants.app(req.params.org, req.params.app, 'credentials');
        await s.tenants.requireOrgAdmin(await requirePrincipal(s, req, a, pathOf(req)), await s.tenants.org(a.orgName));
        const cur = regenerate ? await s.tenants.regenerateCredentials(a) : a;
        const now = Date.now();
        return {
          action: regenerate ? 'generate application client credentials' : 'get application client credentials',
          timestamp: now, duration: now - req.startedAt,
          credentials: { client_id: cur.clientId, client_secret: cur.clientSecret },
        };
      };
      app.get<{ Params: Params }>(creds, (req) => credentialsOf(req, false));
      app.post<{ Params: Params }>(creds, (req) => credentialsOf(req, true));
    }
  }

  // The app itself: `GET /{org}/{app}` shows it, `PUT` switches open registration.
  app.get<{ Params: Params }>('/:org/:app', async (req) => {
    const a = await s.tenants.app(req.params.org, req.params.app, '');
    await requireAppAdmin(s, req, a, '/');
    return envelope(req, s.config.publicUrl, { action: 'get', app: a, path: '', entities: [appEntity(a)] });
  });
  app.put<{ Params: Params }>('/:org/:app', async (req) => {
    const a = await s.tenants.app(req.params.org, req.params.app, '');
    await requireAppAdmin(s, req, a, '/');
    const b = bodyObject(req);
    const open = b.allow_open_registration ?? b.allowOpenRegistration;
    if (typeof open !== 'boolean') throw errors.illegalArgument('allow_open_registration must be true or false');
    const updated = await s.tenants.setOpenRegistration(a, open);
    return envelope(req, s.config.publicUrl, { action: 'put', app: updated, path: '', entities: [appEntity(updated)] });
  });
}
