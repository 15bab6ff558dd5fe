import type { FastifyRequest } from 'fastify';
import type { AppRow } from '../store/store.js';

/** The fields of a Usergrid response envelope, in the order Usergrid wrote them. */
export interface EnvelopeParts {
  action: string;
  app?: AppRow;
  path?: string;
  /** Overrides the uri (default: public URL + /org/app + path). */
  uri?: string;
  entities?: unknown[];
  list?: unknown[];
  data?: unknown;
  cursor?: string;
  count?: number;
  /** Omit `params` (some endpoints answered without it). */
  noParams?: boolean;
}

/** Every query parameter echoed with array values, as Usergrid did. */
export function paramsOf(req: FastifyRequest): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const q = req.query as Record<string, string | string[] | undefined> | undefined;
  if (!q) return out;
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.map(String) : [String(v)];
  }
  return out;
}

/** Builds the Usergrid envelope (spec §0.3) for a successful response. */
export function envelope(req: FastifyRequest, publicUrl: string, p: EnvelopeParts): Record<string, unknown> {
  const now = Date.now();
  const out: Record<string, unknown> = { action: p.action };
  if (p.app) out.application = p.app.uuid;
  if (!p.noParams) out.params = paramsOf(req);
  if (p.path !== undefined) out.path = p.path;
  const base = p.app ? `${publicUrl}/${p.app.orgName}/${p.app.name}` : publicUrl;
  out.uri = p.uri ?? base + (p.path ?? '');
  if (p.entities !== undefined) out.entities = p.entities;
  if (p.list !== undefined) out.list = p.list;
  if (p.data !== undefined) out.data = p.data;
  out.timestamp = now;
  out.duration = Math.max(0, now - req.startedAt);
  if (p.app) {
    out.organization = p.app.orgName;
    out.applicationName = p.app.name;
  }
  if (p.cursor !== undefined) out.cursor = p.cursor;
  if (p.count !== undefined) out.count = p.count;
  return out;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Epoch ms when the request arrived; feeds `duration`. */
    startedAt: number;
    /** The Content-Type the client declared, before chatvault read the body as JSON anyway. */
    declaredType: string | undefined;
  }
}
