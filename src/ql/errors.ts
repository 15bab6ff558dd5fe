/**
 * Errors of the ql lexer and parser. The codes are the Usergrid error codes a client sees
 * (HTTP 400 `query_parse`, `query_token`, `number_format`), so the HTTP layer can pass them on
 * unchanged.
 */

export type QlErrorCode = 'query_parse' | 'query_token' | 'number_format';

/** The only thing the ql lexer and parser ever throw. */
export class QlError extends Error {
  override readonly name = 'QlError';

  constructor(
    readonly code: QlErrorCode,
    message: string,
    /** 0-based index (UTF-16 code units) into the ql string as the caller passed it. */
    readonly position: number,
    /** The offending token's source text (`<EOF>` at the end of input), or the offending character. */
    readonly token: string,
  ) {
    super(message);
  }
}

// A hostile multi-KB token would otherwise be echoed whole into logs and error bodies.
const MAX_SHOWN = 60;

/** Renders a token or character for a message: control characters escaped, long text cut. */
export function showText(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    out += cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ? `\\u${cp.toString(16).padStart(4, '0')}` : ch;
    if (out.length >= MAX_SHOWN) return `${out}...`;
  }
  return out;
}

/** A syntax error in Usergrid's wording, naming the token and its 1-based column. */
export function parseError(token: string, position: number, detail?: string): QlError {
  const base = `The query cannot be parsed. The token '${showText(token)}' at column ${position + 1} on line 1 cannot be parsed`;
  return new QlError('query_parse', detail ? `${base} (${detail})` : base, position, token);
}

/** A lexer error naming the offending character and its 1-based column. */
export function tokenError(char: string, position: number, reason: string): QlError {
  const msg = `The query cannot be tokenized. The character '${showText(char)}' at column ${position + 1} on line 1 ${reason}`;
  return new QlError('query_token', msg, position, char);
}

/** An integer literal that does not fit in a signed 64-bit long, or a float that overflows. */
export function numberError(text: string, position: number, reason: string): QlError {
  const msg = `The number '${showText(text)}' at column ${position + 1} on line 1 ${reason}`;
  return new QlError('number_format', msg, position, text);
}
