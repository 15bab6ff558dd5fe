import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, errors } from '../errors.js';

export const JSON_TYPE = 'application/json;charset=UTF-8';

/** The Easemob error body of an ApiError (spec §0.4). */
export function errorBody(e: ApiError, startedAt: number): Record<string, unknown> {
  if (e.oauth) return { error: e.code, error_description: e.description };
  const now = Date.now();
  const body: Record<string, unknown> = { error: e.code, timestamp: now, duration: Math.max(0, now - startedAt) };
  if (e.exception) body.exception = e.exception;
  if (e.description !== undefined) body.error_description = e.description;
  return body;
}

/** Maps anything thrown while serving a request to the ApiError the client should see. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const fe = err as Partial<FastifyError> & { status?: number; type?: string };
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errors.tooLarge();
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(415, 'web_application', 'Unsupported Media Type');
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new ApiError(415, 'web_application', 'Unsupported Media Type');
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_MAX_PARAM_LENGTH':
    case 'FST_ERR_ASYNC_CONSTRAINT':
      return errors.notFound();
  }
  if (fe.type === 'entity.too.large' || fe.statusCode === 413) return errors.tooLarge();
  if (err instanceof SyntaxError) return errors.jsonParse(err.message);
  // PostgreSQL's text cannot hold U+0000 (SQLSTATE 22021): a value a client sent, not a fault here.
  if (fe.code === '22021') return errors.illegalArgument('a value of the request contains the NUL character (U+0000), which cannot be stored or looked up');
  // Errors the HTTP layer raised about the request itself (aborted body, bad framing).
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new ApiError(fe.statusCode, 'illegal_argument', fe.message ?? 'this is an invalid request.');
  }
  return errors.internal();
}

/** Installs the one error path: every error leaves through here in the Easemob shape. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const api = toApiError(err);
    if (api.status >= 500 && api.status !== 503) req.log.error({ err }, 'request failed');
    else req.log.debug({ code: api.code, description: api.description }, 'request refused');
    void reply.code(api.status).type(JSON_TYPE).send(errorBody(api, req.startedAt ?? Date.now()));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).type(JSON_TYPE).send(errorBody(errors.notFound(), req.startedAt ?? Date.now()));
  });
}

/**
 * Errors Fastify raises while routing, before any hook runs (a path with bad percent-encoding, a
 * path segment over maxParamLength): without this they leave in Fastify's own shape.
 */
export function frameworkErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const api = toApiError(err);
  void reply.code(api.status).type(JSON_TYPE).send(errorBody(api, req.startedAt || Date.now()));
}

/**
 * Handles bytes on a connection that are not a valid request. Some Easemob clients send a stray
 * `{}` after a GET with `Connection: close`; node's parser reads it as a broken second request
 * while the first is still being answered. Writing a 400 then would destroy the real answer, so
 * while a response is in flight we let it finish and close the socket afterwards.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  const inFlight = (socket as Socket & { _httpMessage?: { writableFinished?: boolean; once(e: string, f: () => void): void } })._httpMessage;
  if (inFlight && !inFlight.writableFinished) {
    inFlight.once('finish', () => socket.destroySoon());
    return;
  }
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const api = tooLarge ? new ApiError(431, 'illegal_argument', 'Request header fields too large') : errors.illegalArgument('this is an invalid request.');
  const body = JSON.stringify(errorBody(api, Date.now()));
  socket.end(
    `HTTP/1.1 ${api.status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: ${JSON_TYPE}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
