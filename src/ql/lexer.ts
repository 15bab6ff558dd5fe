/**
 * Hand-written tokenizer for Usergrid `ql` (spec usergrid-ql.md §1.2), with our deliberate
 * changes: the input is not lower-cased as a whole (string literals keep their case, and so
 * positions stay true to what the client sent), escapes in strings are decoded, `order` and `by`
 * may be separated by any whitespace, and floats keep double precision.
 */
import { numberError, showText, tokenError } from './errors.js';

/** Punctuation and keywords after folding synonyms (`lt` -> `<`, `&&` -> `and`, ...). */
export type Sym =
  | 'select' | 'where' | 'order by' | 'order' | 'asc' | 'desc'
  | 'and' | 'or' | 'not' | 'contains' | 'within' | 'of'
  | '<' | '<=' | '=' | '>' | '>='
  | '*' | ',' | '(' | ')' | '{' | '}' | ':';

interface Span {
  /** 0-based index of the first character in the original ql. */
  start: number;
  /** Index just past the last character. */
  end: number;
  /** The source text as written (for error messages); empty for `eof`. */
  text: string;
}

export type Token = Span &
  (
    | { kind: 'sym'; sym: Sym }
    | { kind: 'ident'; name: string } // lower-cased
    | { kind: 'string'; value: string } // quotes removed, escapes decoded
    | { kind: 'int'; value: bigint }
    | { kind: 'float'; value: number }
    | { kind: 'bool'; value: boolean }
    | { kind: 'uuid'; value: string } // lower-cased
    | { kind: 'eof' }
  );

export type TokenKind = Token['kind'];

// `order` is reserved on its own too: Usergrid cannot name a property `order`, and a lone
// `order` is far more likely a typo of `order by` than a field.
const WORDS: ReadonlyMap<string, Sym> = new Map<string, Sym>([
  ['select', 'select'], ['where', 'where'], ['order', 'order'], ['asc', 'asc'], ['desc', 'desc'],
  ['and', 'and'], ['or', 'or'], ['not', 'not'], ['contains', 'contains'], ['within', 'within'], ['of', 'of'],
  ['lt', '<'], ['lte', '<='], ['eq', '='], ['gt', '>'], ['gte', '>='],
]);

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isLetter = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isHex = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
const isIdentStart = (c: number): boolean => isLetter(c) || c === 95;
/** `.` and `-` continue an identifier, so `payload.ext.my-key` is one token. */
const isIdentPart = (c: number): boolean => isIdentStart(c) || isDigit(c) || c === 46 || c === 45;
const isOctal = (c: number): boolean => c >= 48 && c <= 55;
/** Usergrid's whitespace set: space, tab, LF, FF, CR. */
const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 12 || c === 13;

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', '"': '"', "'": "'", '\\': '\\', '/': '/',
};

/** The character (whole code point) at `i`, for naming it in an error. */
function charAt(s: string, i: number): string {
  const cp = s.codePointAt(i);
  return cp === undefined ? '' : String.fromCodePoint(cp);
}

/** Index past a UUID starting at `i`, or -1. A UUID glued to more identifier text is not one. */
function matchUuid(s: string, i: number): number {
  const groups = [8, 4, 4, 4, 12];
  let j = i;
  for (let g = 0; g < groups.length; g++) {
    if (g > 0) {
      if (s.charCodeAt(j) !== 45) return -1;
      j++;
    }
    for (let k = 0; k < groups[g]!; k++, j++) if (!isHex(s.charCodeAt(j))) return -1;
  }
  return j < s.length && isIdentPart(s.charCodeAt(j)) ? -1 : j;
}

/** Scans a single-quoted string at `start`; returns the decoded value and the index past it. */
function scanString(s: string, start: number): { value: string; end: number } {
  let value = '';
  let i = start + 1;
  let chunk = i;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 39) return { value: value + s.slice(chunk, i), end: i + 1 };
    if (c !== 92) {
      i++;
      continue;
    }
    value += s.slice(chunk, i);
    const e = s[i + 1];
    if (e === undefined) break;
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      value += simple;
      i += 2;
    } else if (e === 'u') {
      let ok = true;
      for (let k = 2; k < 6; k++) ok &&= isHex(s.charCodeAt(i + k));
      if (!ok) throw tokenError('\\', i, `starts an invalid escape sequence '${showText(s.slice(i, i + 6))}' (\\u needs 4 hex digits)`);
      value += String.fromCharCode(parseInt(s.slice(i + 2, i + 6), 16));
      i += 6;
    } else if (isOctal(e.charCodeAt(0))) {
      // Longest match as in Java: \0-\377, so \400 is \40 followed by '0'.
      const max = e <= '3' ? 3 : 2;
      let n = 1;
      while (n < max && isOctal(s.charCodeAt(i + 1 + n))) n++;
      value += String.fromCharCode(parseInt(s.slice(i + 1, i + 1 + n), 8));
      i += 1 + n;
    } else {
      throw tokenError('\\', i, `starts an invalid escape sequence '\\${showText(charAt(s, i + 1))}'`);
    }
    chunk = i;
  }
  throw tokenError("'", start, 'starts a string that is never closed');
}

/** Scans a number at `start` (optional `-`, int or float); the caller checked it starts one. */
function scanNumber(s: string, start: number): Token {
  let i = start;
  if (s.charCodeAt(i) === 45) i++;
  let isFloat = false;
  while (isDigit(s.charCodeAt(i))) i++;
  if (s.charCodeAt(i) === 46) {
    isFloat = true;
    i++;
    while (isDigit(s.charCodeAt(i))) i++;
  }
  const e = s.charCodeAt(i);
  if (e === 101 || e === 69) {
    let j = i + 1;
    const sign = s.charCodeAt(j);
    if (sign === 43 || sign === 45) j++;
    if (isDigit(s.charCodeAt(j))) {
      while (isDigit(s.charCodeAt(j))) j++;
      i = j;
      isFloat = true;
    }
  }
  // `1a`, `1.2.3` and `5e` are errors rather than two tokens, as in Usergrid.
  if (isIdentPart(s.charCodeAt(i)) && s.charCodeAt(i) !== 45) {
    throw tokenError(charAt(s, i), i, 'cannot follow a number');
  }
  const text = s.slice(start, i);
  if (isFloat) {
    const value = Number(text);
    // Usergrid turns 3.4e39 into Infinity; an infinite bound is never what the client meant.
    if (!Number.isFinite(value)) throw numberError(text, start, 'is out of range for a double');
    return { kind: 'float', value, start, end: i, text };
  }
  const value = BigInt(text);
  if (value < INT64_MIN || value > INT64_MAX) throw numberError(text, start, 'does not fit in a signed 64-bit integer');
  return { kind: 'int', value, start, end: i, text };
}

/** Index past `by` if whitespace then a standalone `by` follow `i`, else -1. */
function matchBy(s: string, i: number): number {
  let j = i;
  while (isSpace(s.charCodeAt(j))) j++;
  if (j === i || (s[j] !== 'b' && s[j] !== 'B') || (s[j + 1] !== 'y' && s[j + 1] !== 'Y')) return -1;
  return j + 2 < s.length && isIdentPart(s.charCodeAt(j + 2)) ? -1 : j + 2;
}

function scanWord(s: string, start: number): Token {
  let i = start + 1;
  while (isIdentPart(s.charCodeAt(i))) i++;
  const text = s.slice(start, i);
  const lower = text.toLowerCase();
  if (lower === 'true' || lower === 'false') return { kind: 'bool', value: lower === 'true', start, end: i, text };
  const sym = WORDS.get(lower);
  if (sym === 'order') {
    const end = matchBy(s, i);
    if (end >= 0) return { kind: 'sym', sym: 'order by', start, end, text: s.slice(start, end) };
  }
  if (sym !== undefined) return { kind: 'sym', sym, start, end: i, text };
  return { kind: 'ident', name: lower, start, end: i, text };
}

/** Splits a ql string into tokens, always ending with an `eof` token at `ql.length`. */
export function tokenize(ql: string): Token[] {
  const out: Token[] = [];
  const n = ql.length;
  let i = 0;
  const sym = (sym: Sym, len: number): void => {
    out.push({ kind: 'sym', sym, start: i, end: i + len, text: ql.slice(i, i + len) });
    i += len;
  };
  while (i < n) {
    const c = ql.charCodeAt(i);
    const next = ql.charCodeAt(i + 1);
    if (isSpace(c)) {
      i++;
      continue;
    }
    // UUIDs go before identifiers and numbers so `abcdef01-...` and `12345678-...` stay whole.
    const uuidEnd = isHex(c) ? matchUuid(ql, i) : -1;
    if (uuidEnd >= 0) {
      const text = ql.slice(i, uuidEnd);
      out.push({ kind: 'uuid', value: text.toLowerCase(), start: i, end: uuidEnd, text });
      i = uuidEnd;
    } else if (c === 39) {
      const { value, end } = scanString(ql, i);
      out.push({ kind: 'string', value, start: i, end, text: ql.slice(i, end) });
      i = end;
    } else if (isIdentStart(c)) {
      const t = scanWord(ql, i);
      out.push(t);
      i = t.end;
    } else if (
      isDigit(c) ||
      (c === 46 && isDigit(next)) ||
      (c === 45 && (isDigit(next) || (next === 46 && isDigit(ql.charCodeAt(i + 2)))))
    ) {
      const t = scanNumber(ql, i);
      out.push(t);
      i = t.end;
    } else if (c === 60) {
      if (next === 61) sym('<=', 2);
      else sym('<', 1);
    } else if (c === 62) {
      if (next === 61) sym('>=', 2);
      else sym('>', 1);
    } else if (c === 61) {
      sym('=', 1);
    } else if (c === 38 && next === 38) {
      sym('and', 2);
    } else if (c === 124 && next === 124) {
      sym('or', 2);
    } else if (c === 42) {
      sym('*', 1);
    } else if (c === 44) {
      sym(',', 1);
    } else if (c === 40) {
      sym('(', 1);
    } else if (c === 41) {
      sym(')', 1);
    } else if (c === 123) {
      sym('{', 1);
    } else if (c === 125) {
      sym('}', 1);
    } else if (c === 58) {
      sym(':', 1);
    } else if (c === 34) {
      throw tokenError('"', i, 'cannot be used: strings take single quotes');
    } else {
      throw tokenError(charAt(ql, i), i, 'is not valid here');
    }
  }
  out.push({ kind: 'eof', start: n, end: n, text: '' });
  return out;
}
