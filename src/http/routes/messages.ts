import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseBody, parseSend, type TargetType } from '../../domain/messages.js';
import { errors } from '../../errors.js';
import type { Services } from '../../services.js';
import { requireAppAdmin } from '../auth.js';
import { envelope } from '../envelope.js';

type AppParams = { org: string; app: string };

function truthy(v: unknown): boolean {
  const s = Array.isArray(v) ? v[0] : v;
  return s === 'true' || s === '1' || s === true;
}

/** Sending messages (spec §4.1, and the pre-2014 routes of §4.2). */
export function messageRoutes(app: FastifyInstance, s: Services): void {
  const limits = { bodyLimit: s.config.messageMaxBytes };

  app.post<{ Params: AppParams }>('/:org/:app/messages', limits, async (req) => {
    const a = await s.tenants.app(req.params.org, req.params.app, 'messages');
    await requireAppAdmin(s, req, a, '/messages');
    const sent = await s.messages.send(a, parseSend(req.body));
    const useMsgId = truthy((req.query as Record<string, unknown>).useMsgId);
    const data: Record<string, string> = {};
    for (const [target, m] of sent) data[target] = useMsgId ? m.msgId : 'success';
    return envelope(req, s.config.publicUrl, { action: 'post', app: a, path: '/messages', entities: [], data });
  });

  // Before 2014-07-10 messages went to one user or group at a time, with type "text".
  const legacy = (targetType: TargetType, param: 'username' | 'group') =>
    async (req: FastifyRequest<{ Params: AppParams & Record<string, string> }>) => {
      const target = req.params[param]!;
      const a = await s.tenants.app(req.params.org, req.params.app, `${targetType === 'users' ? 'users' : 'groups'}/${target}/messages`);
      await requireAppAdmin(s, req, a, '/messages');
      const b = req.body;
      if (typeof b !== 'object' || b === null || Array.isArray(b)) throw errors.illegalArgument('this is an invalid request.');
      const raw = b as Record<string, unknown>;
      const msg = 'msg' in raw && typeof raw.msg === 'object' ? raw.msg : raw;
      const from = typeof raw.from === 'string' && raw.from !== '' ? raw.from : 'admin';
      await s.messages.send(a, { targetType, targets: [target], body: parseBody(msg), from, ext: undefined });
      return envelope(req, s.config.publicUrl, { action: 'post', app: a, entities: [], data: [{ result_code: 200, result_content: { result: 'ok' } }] });
    };
  app.post('/:org/:app/users/:username/messages', limits, legacy('users', 'username'));
  app.post('/:org/:app/groups/:group/messages', limits, legacy('chatgroups', 'group'));
}
