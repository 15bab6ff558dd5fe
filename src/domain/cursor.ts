import { createHmac, timingSafeEqual } from 'node:crypto';
import { errors } from '../errors.js';

const MAC = 12;

/**
 * Opaque, signed paging cursors. A cursor is base64url of `<hash>:<payload>` like Usergrid's
 * (so a plain listing's cursor starts `LTU2ODc0MzQz`), where the payload carries the keyset
 * position and an HMAC over the position and its scope (app, collection, query). A cursor is
 * therefore only ever accepted by the query that made it.
 */
export class CursorCodec {
  constructor(private readonly key: Buffer) {}

  /** Encodes a position for the given scope. */
  encode(scope: string, position: unknown, hash = '-56874343'): string {
    const body = Buffer.from(JSON.stringify(position), 'utf8');
    const payload = Buffer.concat([this.mac(scope, body), body]).toString('base64url');
    return Buffer.from(`${hash}:${payload}`, 'utf8').toString('base64url');
  }

  /** Decodes a cursor made by encode for the same scope; anything else is a 400. */
  decode(scope: string, cursor: string): unknown {
    const text = /^[A-Za-z0-9_-]{1,4096}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
    const colon = text.indexOf(':');
    const raw = colon > 0 ? Buffer.from(text.slice(colon + 1), 'base64url') : Buffer.alloc(0);
    if (raw.length <= MAC) throw errors.illegalArgument(`cursor '${cursor.slice(0, 64)}' is not a valid cursor`);
    const body = raw.subarray(MAC);
    if (!timingSafeEqual(raw.subarray(0, MAC), this.mac(scope, body))) {
      throw errors.illegalArgument('cursor does not belong to this query: it was made by another query, app or server');
    }
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch {
      throw errors.illegalArgument('cursor is not a valid cursor');
    }
  }

  private mac(scope: string, body: Buffer): Buffer {
    return createHmac('sha256', this.key).update('cursor\0').update(scope).update('\0').update(body).digest().subarray(0, MAC);
  }
}
