import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errors } from '../../errors.js';
import type { Services } from '../../services.js';

/** The token request: the JSON/form body, plus HTTP Basic client credentials when sent that way. */
function grantBody(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (b !== undefined && (typeof b !== 'object' || b === null || Array.isArray(b))) {
    throw errors.illegalArgument('the token request must be a JSON object');
  }
  const body: Record<string, unknown> = { ...(b as Record<string, unknown> | undefined) };
  const m = /^\s*basic\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (m && body.client_id === undefined) {
    const [id, ...secret] = Buffer.from(m[1]!, 'base64').toString('utf8').split(':');
    body.client_id = id;
    body.client_secret = secret.join(':');
    body.grant_type ??= 'client_credentials';
  }
  return body;
}

/** `POST /{org}/{app}/token` (spec §1.1, §1.2): app-admin and IM-user tokens. */
export function tokenRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Params: { org: string; app: string } }>('/:org/:app/token', async (req) => {
    const a = await s.tenants.app(req.params.org, req.params.app, 'token');
    const body = grantBody(req);
    if (body.grant_type === 'client_credentials') return s.tenants.appToken(a, body);
    return s.users.passwordToken(a, body);
  });
}
