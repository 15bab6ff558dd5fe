import { textTokens, type ContainsQuery } from '../../domain/text-match.js';

/**
 * The full text of chat messages on PostgreSQL, with the meaning `contains` has everywhere
 * (domain/text-match.ts): the tokens are cut here, in JavaScript, by the same code SQLite's index
 * uses, and PostgreSQL only stores and matches them.
 *
 * A message's tokens become a `tsvector` written as a literal (never re-parsed by a text search
 * configuration): each `bi` token (words and CJK bigrams) with its positions, so that a phrase is
 * a tsquery of `<->` steps, and each single character of `uni` as a position-less lexeme behind a
 * `~` mark (no token contains `~`), for the one-CJK-character queries. A GIN index serves both.
 *
 * tsvector has limits (positions up to 16,383, at most 255 positions per lexeme, lexemes under
 * 2 KiB, 1 MiB in all) past which it would silently lose positions or fail. A message that passes
 * one keeps its token list in `fts_overflow` instead and is matched by an exact scan of that list
 * (there are few such messages: chat texts are short).
 */

const MAX_POSITION = 16383;
const MAX_POSITIONS_PER_LEXEME = 255;
/** Bytes of a lexeme; tsvector refuses 2,047 and more. */
export const MAX_LEXEME_BYTES = 2000;
const MAX_VECTOR_BYTES = 900_000;

/** How a message's text is stored for `contains`: a tsvector literal, or the overflow token list. */
export interface StoredText {
  fts: string | null;
  /** Tokens joined by spaces (tokens never contain one), for messages past tsvector's limits. */
  overflow: string | null;
}

const quote = (lexeme: string): string => `'${lexeme.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/** The stored form of a message's text (null text: nothing to find). */
export function storedText(text: string | null): StoredText {
  if (!text) return { fts: null, overflow: null };
  const { bi, uni } = textTokens(text);
  const singles = new Set<string>();
  for (const u of uni) if (u.length <= 2 && [...u].length === 1) singles.add(`~${u}`);
  const positions = new Map<string, number[]>();
  let fits = bi.length <= MAX_POSITION;
  let bytes = 0;
  for (let i = 0; fits && i < bi.length; i++) {
    const t = bi[i]!;
    let ps = positions.get(t);
    if (!ps) {
      const b = Buffer.byteLength(t);
      if (b > MAX_LEXEME_BYTES) fits = false;
      bytes += b + 8;
      positions.set(t, (ps = []));
    }
    ps.push(i + 1);
    if (ps.length > MAX_POSITIONS_PER_LEXEME) fits = false;
  }
  bytes += singles.size * 8;
  if (!fits || bytes > MAX_VECTOR_BYTES) return { fts: null, overflow: [...bi, ...singles].join(' ') };
  const parts: string[] = [];
  for (const [t, ps] of positions) parts.push(`${quote(t)}:${ps.join(',')}`);
  for (const s of singles) if (!positions.has(s)) parts.push(quote(s));
  return { fts: parts.length > 0 ? parts.join(' ') : null, overflow: null };
}

/** A `contains` query as PostgreSQL matches it: a tsquery over `fts` and the phrase for overflow rows. */
export interface TextQuery {
  /** Null when no message within tsvector's limits can match (a token too long for a lexeme). */
  tsquery: string | null;
  /** The phrase as stored tokens (a lone CJK character as its `~` lexeme). */
  phrase: string[];
  prefix: boolean;
}

export function textQuery(q: ContainsQuery): TextQuery {
  const phrase = q.column === 'uni' ? [`~${q.phrase[0]!}`] : q.phrase;
  const tooLong = phrase.some((t) => Buffer.byteLength(t) > MAX_LEXEME_BYTES);
  const tsquery = tooLong
    ? null
    : phrase.map((t, i) => (q.prefix && i === phrase.length - 1 ? `${quote(t)}:*` : quote(t))).join(' <-> ');
  return { tsquery, phrase, prefix: q.prefix };
}

// The character classes of text-match.ts, which PostgreSQL needs to cut the text of fields that
// have no token index (contains on `from`, `payload.ext.x`, ...). Keep these two in step with it.
const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\u3005\u30fc]/u;
const WORD = /[\p{L}\p{N}]/u;

let tokenPattern: string | null = null;

const esc = (cp: number): string => (cp > 0xffff ? `\\U${cp.toString(16).padStart(8, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`);

/**
 * A PostgreSQL regular expression whose matches are the runs text-match.ts cuts text into:
 * group 1 a run of CJK characters, group 2 a run of other letters and digits. Built once from
 * this Node's Unicode tables, the same ones the JavaScript tokenizer uses.
 */
export function tokenRunPattern(): string {
  if (tokenPattern) return tokenPattern;
  const cjk: [number, number][] = [];
  const word: [number, number][] = [];
  const add = (list: [number, number][], cp: number) => {
    const last = list[list.length - 1];
    if (last && last[1] === cp - 1) last[1] = cp;
    else list.push([cp, cp]);
  };
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const ch = String.fromCodePoint(cp);
    if (CJK.test(ch)) add(cjk, cp);
    else if (WORD.test(ch)) add(word, cp);
  }
  const cls = (list: [number, number][]) => `[${list.map(([a, b]) => (a === b ? esc(a) : `${esc(a)}-${esc(b)}`)).join('')}]`;
  tokenPattern = `(${cls(cjk)}+)|(${cls(word)}+)`;
  return tokenPattern;
}
