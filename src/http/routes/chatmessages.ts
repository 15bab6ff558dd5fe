import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ChatQueryParams } from '../../export/chat-query.js';
import { writeEntitiesPage, writeListPage, type PageFrame } from '../../export/page-writer.js';
import type { Services } from '../../services.js';
import { requireAppAdmin } from '../auth.js';
import { paramsOf } from '../envelope.js';
import { JSON_TYPE } from '../errors.js';

type AppParams = { org: string; app: string };

function first(v: unknown): string | undefined {
  const x = Array.isArray(v) ? v[0] : v;
  return typeof x === 'string' && x !== '' ? x : undefined;
}

function queryParams(req: FastifyRequest): ChatQueryParams {
  const q = req.query as Record<string, unknown>;
  return {
    // Usergrid also read the ql from `q` and `query`.
    ql: first(q.ql) ?? first(q.q) ?? first(q.query),
    limit: first(q.limit),
    cursor: first(q.cursor),
    since: first(q.since),
  };
}

/** The chat-message export API (spec §5.1): query with ql, page with cursors, purge. */
export function chatMessageRoutes(app: FastifyInstance, s: Services): void {

  const serve = async (req: FastifyRequest<{ Params: AppParams }>, reply: FastifyReply, purge: boolean) => {
    const a = await s.tenants.app(req.params.org, req.params.app, 'chatmessages');
    await requireAppAdmin(s, req, a, '/chatmessages');
    const plan = await s.chatQuery.plan(a, queryParams(req));
    const page = purge ? await s.chatQuery.purge(plan) : await s.chatQuery.page(plan);
    const frame: PageFrame = {
      action: purge ? 'delete' : 'get', app: a, params: paramsOf(req), uri: `${s.config.publicUrl}/${a.orgName}/${a.name}/chatmessages`,
      startedAt: req.startedAt, cursor: page.cursor, watermark: page.watermark,
    };
    const body = plan.select.kind === 'all' || purge ? writeEntitiesPage(frame, page.hits) : writeListPage(frame, page.hits, plan.select);
    return reply.type(JSON_TYPE).send(body);
  };

  app.get<{ Params: AppParams }>('/:org/:app/chatmessages', (req, reply) => serve(req, reply, false));
  app.delete<{ Params: AppParams }>('/:org/:app/chatmessages', (req, reply) => serve(req, reply, true));
}
