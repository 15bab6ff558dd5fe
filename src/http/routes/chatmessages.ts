import fs from 'node:fs';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors } from '../../errors.js';
import { exportChunks, STREAM_PAGE, type StreamEnd, type StreamFormat } from '../../export/stream.js';
import type { ChatQueryParams } from '../../export/chat-query.js';
import { writeEntitiesBody, writeEntitiesPage, writeListPage, type PageFrame } from '../../export/page-writer.js';
import type { Services } from '../../services.js';
import { requireAppAdmin } from '../auth.js';
import { envelope, paramsOf } from '../envelope.js';
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
    const frame = (cursor: string | undefined, watermark: string): PageFrame => ({
      action: purge ? 'delete' : 'get', app: a, params: paramsOf(req), uri: `${s.config.publicUrl}/${a.orgName}/${a.name}/chatmessages`,
      startedAt: req.startedAt, cursor, watermark,
    });
    if (plan.select.kind === 'all' && !purge) {
      // Whole records: read as one buffer, spliced into the envelope.
      const p = await s.chatQuery.splicedPage(plan, ',');
      return reply.type(JSON_TYPE).send(writeEntitiesBody(frame(p.cursor, p.watermark), p.count, p.body));
    }
    const page = purge ? await s.chatQuery.purge(plan) : await s.chatQuery.page(plan);
    const f = frame(page.cursor, page.watermark);
    const body = plan.select.kind === 'all' || purge ? writeEntitiesPage(f, page.hits) : writeListPage(f, page.hits, plan.select);
    return reply.type(JSON_TYPE).send(body);
  };

  app.get<{ Params: AppParams }>('/:org/:app/chatmessages', (req, reply) => serve(req, reply, false));

  // Hourly archives (spec §5.3): a signed, expiring link to a gzip of the hour's records.
  app.get<{ Params: AppParams & { hour: string } }>('/:org/:app/chatmessages/:hour', async (req) => {
    const a = await s.tenants.app(req.params.org, req.params.app, `chatmessages/${req.params.hour}`);
    await requireAppAdmin(s, req, a, '/chatmessages');
    const link = await s.archives.link(a, req.params.hour, first((req.query as Record<string, unknown>).tz), s.config.publicUrl);
    return envelope(req, s.config.publicUrl, { action: 'get', app: a, uri: `${s.config.publicUrl}/${a.orgName}/${a.name}/chatmessages/${req.params.hour}`, data: [link] });
  });

  // The link itself needs no token: its signature and expiry are the credential.
  app.get<{ Params: AppParams & { file: string } }>('/:org/:app/chatmessages/archives/:file', async (req, reply) => {
    const a = await s.tenants.app(req.params.org, req.params.app, 'chatmessages/archives');
    const q = req.query as Record<string, unknown>;
    const f = await s.archives.open(a, req.params.file, { tz: first(q.tz), Expires: first(q.Expires), Signature: first(q.Signature) });
    return reply
      .type('application/gzip')
      .header('content-length', f.size)
      .header('content-disposition', `attachment; filename="${req.params.file}"`)
      .send(fs.createReadStream(f.path));
  });

  // Streaming export: every matching message, no limit, with backpressure; resumable with `after`.
  app.get<{ Params: AppParams }>('/:org/:app/chatmessages/export', async (req, reply) => {
    const a = await s.tenants.app(req.params.org, req.params.app, 'chatmessages/export');
    await requireAppAdmin(s, req, a, '/chatmessages');
    const q = req.query as Record<string, unknown>;
    const fmt = (first(q.format) ?? 'ndjson').toLowerCase();
    if (fmt !== 'ndjson' && fmt !== 'jsonl' && fmt !== 'csv') throw errors.illegalArgument(`format can only be ndjson or csv, not ${fmt}`);
    const format: StreamFormat = fmt === 'csv' ? 'csv' : 'ndjson';
    const gzip = ['true', '1'].includes(first(q.gzip) ?? '');
    const { ql, since } = queryParams(req);
    const plan = await s.chatQuery.streamPlan(a, { ql, since, after: first(q.after), pageSize: STREAM_PAGE });
    let ended: StreamEnd | undefined;
    const chunks = Readable.from(exportChunks(s.chatQuery, plan, format, (e) => (ended = e)), { objectMode: false });
    const ext = format === 'csv' ? 'csv' : 'ndjson';
    if (format === 'csv') {
      // A CSV has no room for an end line: a complete stream ends with these trailer headers.
      reply.trailer('x-export-count', async () => (ended ? String(ended.count) : ''));
      reply.trailer('x-export-watermark', async () => ended?.watermark ?? '');
    }
    if (gzip) {
      reply.type('application/gzip').header('content-disposition', `attachment; filename="${a.orgName}-${a.name}-chatmessages.${ext}.gz"`);
      const gz = createGzip();
      chunks.on('error', (e) => gz.destroy(e));
      return reply.send(chunks.pipe(gz));
    }
    reply.type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
    return reply.send(chunks);
  });
  app.delete<{ Params: AppParams }>('/:org/:app/chatmessages', (req, reply) => serve(req, reply, true));
}
