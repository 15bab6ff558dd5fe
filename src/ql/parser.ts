/**
 * Recursive-descent parser for Usergrid `ql` (spec usergrid-ql.md §1.3):
 *
 *   ql        ::= [ "select" selection ] [ [ "where" ] expr ] [ "order by" sortkey { "," sortkey } ]
 *                 [ "limit" INT ] EOF
 *   expr      ::= and { ("or" | "||") and }
 *   and       ::= not { ("and" | "&&") not }
 *   not       ::= "not" primary | primary
 *   primary   ::= "(" expr ")" | IDENT cmpOp value | IDENT "contains" STRING
 *               | IDENT "within" number "of" number "," number
 *
 * Deliberate differences from Usergrid 1.x: the whole input must be used (Usergrid silently
 * drops whatever it cannot parse, so `a = 5 limit 10` or `a = 5)` quietly meant `a = 5`), a
 * trailing `limit N` is understood, and nesting is bounded so hostile input cannot exhaust the
 * stack of this parser or of the code that walks the tree afterwards.
 */
import type { CmpOp, QlExpr, QlValue, Query, Selection, SortKey } from './ast.js';
import { parseError, QlError } from './errors.js';
import { type Sym, type Token, tokenize } from './lexer.js';

/** Deepest parenthesis nesting accepted; each level costs a few stack frames here. */
export const MAX_PAREN_DEPTH = 200;
/**
 * Deepest tree accepted (a left-associative chain of N `or`s is N deep). Consumers walk the
 * tree recursively and SQLite caps expression depth at 1000, so a bound belongs here, at
 * the place that can name the offending token.
 */
export const MAX_TREE_DEPTH = 1000;

const isCmpOp = (s: Sym): s is CmpOp => s === '<' || s === '<=' || s === '=' || s === '>' || s === '>=';

/** A subtree and its depth, so depth is checked while building instead of by a second walk. */
interface Sized {
  e: QlExpr;
  d: number;
}

class Parser {
  private pos = 0;
  private parens = 0;

  constructor(private readonly toks: Token[]) {}

  private peek(ahead = 0): Token {
    // The eof token is last and never consumed, so clamping keeps lookahead total.
    return this.toks[Math.min(this.pos + ahead, this.toks.length - 1)]!;
  }

  private advance(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.pos++;
    return t;
  }

  private isSym(sym: Sym, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === 'sym' && t.sym === sym;
  }

  private fail(t: Token, detail?: string): QlError {
    return parseError(t.kind === 'eof' ? '<EOF>' : t.text, t.start, detail);
  }

  /** Consumes `sym` if it is next. */
  private accept(sym: Sym): boolean {
    if (!this.isSym(sym)) return false;
    this.advance();
    return true;
  }

  private expectSym(sym: Sym): Token {
    if (!this.isSym(sym)) throw this.fail(this.peek());
    return this.advance();
  }

  private ident(): string {
    const t = this.peek();
    if (t.kind !== 'ident') throw this.fail(t);
    this.advance();
    return t.name;
  }

  /** `limit N` followed by nothing else; other uses of the word `limit` are ordinary fields. */
  private atTrailingLimit(): boolean {
    const kw = this.peek();
    const n = this.peek(1);
    return kw.kind === 'ident' && kw.name === 'limit' && n.kind === 'int' && n.value >= 0n && this.peek(2).kind === 'eof';
  }

  parseQuery(): Query {
    let select: Selection = { kind: 'all' };
    if (this.accept('select')) select = this.selection();

    let where: QlExpr | null = null;
    if (this.accept('where')) {
      where = this.expr().e;
    } else {
      // Usergrid makes `where` optional (`select * a = 1`), so an expression may start here.
      const t = this.peek();
      const startsExpr = (t.kind === 'ident' && !this.atTrailingLimit()) || this.isSym('(') || this.isSym('not');
      if (startsExpr) where = this.expr().e;
    }

    const orderBy: SortKey[] = [];
    if (this.accept('order by')) {
      do {
        const t = this.peek();
        const field = this.ident();
        if (orderBy.some((k) => k.field === field)) {
          throw new QlError('query_parse', `Attempted to set sort order for ${field} more than once`, t.start, t.text);
        }
        const dir: SortKey['dir'] = this.accept('desc') ? 'desc' : 'asc';
        if (dir === 'asc') this.accept('asc');
        orderBy.push({ field, dir });
      } while (this.accept(','));
    }

    let limit: number | null = null;
    if (this.atTrailingLimit()) {
      this.advance();
      const n = this.advance();
      if (n.kind === 'int') limit = Number(n.value);
    }

    const rest = this.peek();
    if (rest.kind !== 'eof') throw this.fail(rest);
    return { select, where, orderBy, limit };
  }

  private selection(): Selection {
    if (this.isSym('*')) {
      this.advance();
      return { kind: 'all' };
    }
    if (this.isSym('{')) {
      this.advance();
      const pairs: { alias: string; field: string }[] = [];
      do {
        // Aliases are lower-cased like every identifier, as Usergrid's output keys were.
        const alias = this.ident();
        this.expectSym(':');
        pairs.push({ alias, field: this.ident() });
      } while (this.accept(','));
      this.expectSym('}');
      return { kind: 'aliases', pairs };
    }
    const fields: string[] = [];
    do fields.push(this.ident());
    while (this.accept(','));
    return { kind: 'fields', fields };
  }

  private join(kind: 'and' | 'or', l: Sized, r: Sized, at: Token): Sized {
    const d = Math.max(l.d, r.d) + 1;
    if (d > MAX_TREE_DEPTH) throw this.fail(at, `the query is nested more than ${MAX_TREE_DEPTH} levels deep`);
    return { e: { kind, left: l.e, right: r.e }, d };
  }

  private expr(): Sized {
    let left = this.andExpr();
    while (this.isSym('or')) {
      const op = this.advance();
      left = this.join('or', left, this.andExpr(), op);
    }
    return left;
  }

  private andExpr(): Sized {
    let left = this.notExpr();
    while (this.isSym('and')) {
      const op = this.advance();
      left = this.join('and', left, this.notExpr(), op);
    }
    return left;
  }

  private notExpr(): Sized {
    if (!this.isSym('not')) return this.primary();
    const op = this.advance();
    // `not not x` is rejected, as in Usergrid (not binds to one primary); `not (not x)` works.
    const inner = this.primary();
    if (inner.d + 1 > MAX_TREE_DEPTH) throw this.fail(op, `the query is nested more than ${MAX_TREE_DEPTH} levels deep`);
    return { e: { kind: 'not', expr: inner.e }, d: inner.d + 1 };
  }

  private primary(): Sized {
    const t = this.peek();
    if (this.isSym('(')) {
      if (this.parens >= MAX_PAREN_DEPTH) throw this.fail(t, `parentheses nested more than ${MAX_PAREN_DEPTH} levels deep`);
      this.advance();
      this.parens++;
      const inner = this.expr();
      this.expectSym(')');
      this.parens--;
      return inner;
    }
    const field = this.ident();
    const op = this.advance();
    if (op.kind === 'sym' && isCmpOp(op.sym)) {
      return { e: { kind: 'cmp', field, op: op.sym, value: this.value() }, d: 1 };
    }
    if (op.kind === 'sym' && op.sym === 'contains') {
      const s = this.advance();
      if (s.kind !== 'string') throw this.fail(s);
      return { e: { kind: 'contains', field, value: s.value }, d: 1 };
    }
    if (op.kind === 'sym' && op.sym === 'within') {
      const radius = this.number();
      this.expectSym('of');
      const lat = this.number();
      this.expectSym(',');
      const lng = this.number();
      return { e: { kind: 'within', field, radius, lat, lng }, d: 1 };
    }
    throw this.fail(op);
  }

  private value(): QlValue {
    const t = this.advance();
    switch (t.kind) {
      case 'string':
        return { kind: 'string', value: t.value };
      case 'int':
        return { kind: 'int', value: t.value };
      case 'float':
        return { kind: 'float', value: t.value };
      case 'bool':
        return { kind: 'bool', value: t.value };
      case 'uuid':
        return { kind: 'uuid', value: t.value };
      default:
        // Includes bare words: `a = abc` is an error, not a string, as in Usergrid.
        throw this.fail(t);
    }
  }

  private number(): number {
    const t = this.advance();
    if (t.kind === 'int') return Number(t.value);
    if (t.kind === 'float') return t.value;
    throw this.fail(t);
  }
}

/** Parses a Usergrid `ql` string into a Query; throws QlError (and nothing else) on bad input. */
export function parseQl(ql: string): Query {
  try {
    return new Parser(tokenize(ql)).parseQuery();
  } catch (e) {
    if (e instanceof QlError) throw e;
    // Only a bug could land here; a caller must still see a 400-style error, not a crash.
    const message = e instanceof Error ? e.message : String(e);
    throw new QlError('query_parse', `The query cannot be parsed (${message})`, 0, '');
  }
}
