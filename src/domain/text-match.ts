/**
 * What `contains` means, in one place: a case-insensitive match of a word or phrase. Text is cut
 * into tokens: runs of letters and digits become lower-cased words; Chinese, Japanese and Korean
 * text, which has no spaces, becomes overlapping two-character tokens (bigrams), so that any run
 * of two or more characters can be found as a phrase of bigrams, and single characters through
 * a separate list of unigrams. Store adapters index these token lists (SQLite FTS5, PostgreSQL
 * arrays); `textContains` is the same rule applied directly, for fields without an index.
 */

const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\u3005\u30fc]/u;
const WORD = /[\p{L}\p{N}]/u;

interface Run {
  cjk: boolean;
  text: string;
}

function runs(text: string): Run[] {
  const out: Run[] = [];
  let cur: Run | null = null;
  for (const ch of text.normalize('NFKC').toLowerCase()) {
    const cjk = CJK.test(ch);
    if (cjk || WORD.test(ch)) {
      if (cur && cur.cjk === cjk) cur.text += ch;
      else {
        cur = { cjk, text: ch };
        out.push(cur);
      }
    } else {
      cur = null;
    }
  }
  return out;
}

/** Token lists of a text: `bi` (words and CJK bigrams, in order) and `uni` (words and single CJK characters). */
export function textTokens(text: string): { bi: string[]; uni: string[] } {
  const bi: string[] = [];
  const uni: string[] = [];
  for (const r of runs(text)) {
    if (!r.cjk) {
      bi.push(r.text);
      uni.push(r.text);
      continue;
    }
    const chars = [...r.text];
    if (chars.length === 1) bi.push(chars[0]!);
    for (let i = 0; i + 1 < chars.length; i++) bi.push(chars[i]! + chars[i + 1]!);
    uni.push(...chars);
  }
  return { bi, uni };
}

/** A `contains` query as token lists: which column to search, the phrase, and a trailing-`*` prefix flag. */
export interface ContainsQuery {
  column: 'bi' | 'uni';
  phrase: string[];
  prefix: boolean;
}

/** Turns a `contains '...'` literal into the token phrase to look for; null when it has no word at all. */
export function containsQuery(literal: string): ContainsQuery | null {
  const prefix = literal.trimEnd().endsWith('*');
  const rs = runs(prefix ? literal.trimEnd().slice(0, -1) : literal);
  if (rs.length === 0) return null;
  // A lone CJK character is looked up among the unigrams; everything else as a phrase of bigrams.
  if (rs.length === 1 && rs[0]!.cjk && [...rs[0]!.text].length === 1) return { column: 'uni', phrase: [rs[0]!.text], prefix: false };
  const { bi } = textTokens(rs.map((r) => r.text).join(' '));
  return { column: 'bi', phrase: bi, prefix: prefix && !rs[rs.length - 1]!.cjk };
}

/** The rule itself, for fields that have no text index: does `text` contain the query's words in order? */
export function textContains(text: string, q: ContainsQuery): boolean {
  const hay = textTokens(text)[q.column];
  const n = q.phrase.length;
  outer: for (let i = 0; i + n <= hay.length; i++) {
    for (let j = 0; j < n; j++) {
      const h = hay[i + j]!;
      const want = q.phrase[j]!;
      const ok = q.prefix && j === n - 1 ? h.startsWith(want) : h === want;
      if (!ok) continue outer;
    }
    return true;
  }
  return false;
}
