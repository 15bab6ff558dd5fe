import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CmpOp, QlExpr, QlValue, Query } from '../../src/ql/ast.js';
import { QlError } from '../../src/ql/errors.js';
import { MAX_PAREN_DEPTH, MAX_TREE_DEPTH, parseQl } from '../../src/ql/parser.js';

const str = (value: string): QlValue => ({ kind: 'string', value });
const int = (value: bigint | number): QlValue => ({ kind: 'int', value: BigInt(value) });
const cmp = (field: string, op: CmpOp, value: QlValue): QlExpr => ({ kind: 'cmp', field, op, value });
const and = (left: QlExpr, right: QlExpr): QlExpr => ({ kind: 'and', left, right });
const or = (left: QlExpr, right: QlExpr): QlExpr => ({ kind: 'or', left, right });
const not = (expr: QlExpr): QlExpr => ({ kind: 'not', expr });
const q = (over: Partial<Query>): Query => ({ select: { kind: 'all' }, where: null, orderBy: [], limit: null, ...over });
const where = (ql: string): QlExpr | null => parseQl(ql).where;

function parseFails(ql: string, code: QlError['code'], position: number, token?: string): QlError {
  let caught: unknown;
  try {
    parseQl(ql);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof QlError, `expected QlError for ${JSON.stringify(ql)}, got ${String(caught)}`);
  assert.equal(caught.code, code, `${ql}: ${caught.message}`);
  assert.equal(caught.position, position, `${ql}: ${caught.message}`);
  if (token !== undefined) assert.equal(caught.token, token);
  return caught;
}

describe('parser: clauses (spec §1.3 examples)', () => {
  it('accepts empty and blank ql as the query of everything', () => {
    assert.deepEqual(parseQl(''), q({}));
    assert.deepEqual(parseQl('   \n\t'), q({}));
  });

  it('makes every clause optional', () => {
    const a1 = cmp('a', '=', int(1));
    assert.deepEqual(parseQl('select *'), q({}));
    assert.deepEqual(parseQl('where a = 1'), q({ where: a1 }));
    assert.deepEqual(parseQl('a = 1'), q({ where: a1 }));
    assert.deepEqual(parseQl('select * a = 1'), q({ where: a1 }));
    assert.deepEqual(parseQl('select * where a = 1'), q({ where: a1 }));
    assert.deepEqual(parseQl('order by timestamp desc'), q({ orderBy: [{ field: 'timestamp', dir: 'desc' }] }));
    assert.deepEqual(parseQl('select name'), q({ select: { kind: 'fields', fields: ['name'] } }));
  });

  it('parses the Easemob chatmessages queries', () => {
    assert.deepEqual(parseQl('select * where timestamp>1403164734226'), q({ where: cmp('timestamp', '>', int(1403164734226n)) }));
    assert.deepEqual(
      parseQl('select * where timestamp<1403164734226 and timestamp>1403163586000 order by timestamp desc'),
      q({
        where: and(cmp('timestamp', '<', int(1403164734226n)), cmp('timestamp', '>', int(1403163586000n))),
        orderBy: [{ field: 'timestamp', dir: 'desc' }],
      }),
    );
  });

  it('parses projections: field lists and alias objects', () => {
    assert.deepEqual(parseQl('select a, b,c').select, { kind: 'fields', fields: ['a', 'b', 'c'] });
    assert.deepEqual(parseQl('select {n: name, a: age}').select, {
      kind: 'aliases',
      pairs: [{ alias: 'n', field: 'name' }, { alias: 'a', field: 'age' }],
    });
    assert.deepEqual(parseQl('select {N:Payload.Bodies.Msg} where a = 1').select, {
      kind: 'aliases',
      pairs: [{ alias: 'n', field: 'payload.bodies.msg' }],
    });
    parseFails('select', 'query_parse', 6, '<EOF>');
    parseFails('select {n name}', 'query_parse', 10, 'name');
    parseFails('select {n: name', 'query_parse', 15, '<EOF>');
    parseFails('select {}', 'query_parse', 8, '}');
    parseFails('select a,', 'query_parse', 9, '<EOF>');
    parseFails('select a, *', 'query_parse', 10, '*');
  });

  it('lower-cases property names and keywords but keeps string case', () => {
    assert.deepEqual(
      parseQl("SELECT * WHERE Name = 'Fred Smith' ORDER BY Created DESC, Payload.EXT.Key ASC"),
      q({
        where: cmp('name', '=', str('Fred Smith')),
        orderBy: [{ field: 'created', dir: 'desc' }, { field: 'payload.ext.key', dir: 'asc' }],
      }),
    );
  });

  it('accepts every comparison operator and its word form', () => {
    const pairs: [string, CmpOp][] = [['=', '='], ['eq', '='], ['<', '<'], ['lt', '<'], ['<=', '<='], ['lte', '<='],
      ['>', '>'], ['gt', '>'], ['>=', '>='], ['gte', '>=']];
    for (const [text, op] of pairs) assert.deepEqual(where(`age ${text} 30`), cmp('age', op, int(30)), text);
  });

  it('accepts every value kind', () => {
    assert.deepEqual(where("name = 'fred*'"), cmp('name', '=', str('fred*')));
    assert.deepEqual(where("name = '*'"), cmp('name', '=', str('*')));
    assert.deepEqual(where('flag = true'), cmp('flag', '=', { kind: 'bool', value: true }));
    assert.deepEqual(where('flag = FALSE'), cmp('flag', '=', { kind: 'bool', value: false }));
    assert.deepEqual(where('price = 100.5'), cmp('price', '=', { kind: 'float', value: 100.5 }));
    assert.deepEqual(where('owner = ABCDEF01-2345-6789-ABCD-EF0123456789'),
      cmp('owner', '=', { kind: 'uuid', value: 'abcdef01-2345-6789-abcd-ef0123456789' }));
    assert.deepEqual(where('location.latitude > -1.5e2'), cmp('location.latitude', '>', { kind: 'float', value: -150 }));
    assert.deepEqual(where("items.name = 'x'"), cmp('items.name', '=', str('x')));
    assert.deepEqual(where("payload.ext.my_key = 'v'"), cmp('payload.ext.my_key', '=', str('v')));
  });

  it('accepts identifiers that begin with keywords', () => {
    assert.deepEqual(parseQl('ltime > 5 order by ascending, orders desc'), q({
      where: cmp('ltime', '>', int(5)),
      orderBy: [{ field: 'ascending', dir: 'asc' }, { field: 'orders', dir: 'desc' }],
    }));
  });
});

describe('parser: expressions', () => {
  const a = cmp('a', '=', int(5));
  const b = cmp('b', '=', int(6));
  const c = cmp('c', '=', int(7));

  it('binds and tighter than or', () => {
    assert.deepEqual(where('a=5 or b=6 and c=7'), or(a, and(b, c)));
    assert.deepEqual(where('a=5 and b=6 or c=7'), or(and(a, b), c));
    assert.deepEqual(where('a=5 || b=6 && c=7'), or(a, and(b, c)));
  });

  it('binds not tighter than and', () => {
    assert.deepEqual(where('not a=5 and b=6'), and(not(a), b));
    assert.deepEqual(where('NOT (a=5 and b=6)'), not(and(a, b)));
  });

  it('is left-associative', () => {
    assert.deepEqual(where('a=5 or b=6 or c=7'), or(or(a, b), c));
    assert.deepEqual(where('a=5 and b=6 and c=7'), and(and(a, b), c));
  });

  it('lets parentheses override precedence', () => {
    assert.deepEqual(where('(a=5 or b=6) and c=7'), and(or(a, b), c));
    assert.deepEqual(where('((((a=5))))'), a);
  });

  it('rejects `not not` (as Usergrid does) but accepts `not (not ...)`', () => {
    parseFails('not not a=1', 'query_parse', 4, 'not');
    assert.deepEqual(where('not (not a=5)'), not(not(a)));
  });

  it('parses contains with a quoted string, Chinese included', () => {
    assert.deepEqual(where("payload.bodies.msg contains '中文'"), { kind: 'contains', field: 'payload.bodies.msg', value: '中文' });
    assert.deepEqual(where("name contains 'Gladys Kravitz' and not body contains 'x'"), and(
      { kind: 'contains', field: 'name', value: 'Gladys Kravitz' },
      not({ kind: 'contains', field: 'body', value: 'x' }),
    ));
    parseFails('name contains fred', 'query_parse', 14, 'fred');
    parseFails('name contains 5', 'query_parse', 14, '5');
  });

  it('parses within with int or float numbers, negatives included', () => {
    assert.deepEqual(where('location within 1000 of 37.776753, -122.407846'),
      { kind: 'within', field: 'location', radius: 1000, lat: 37.776753, lng: -122.407846 });
    assert.deepEqual(where('location within 0.5 of -33, 151 and a=5'),
      and({ kind: 'within', field: 'location', radius: 0.5, lat: -33, lng: 151 }, a));
    parseFails('location within 10 of 1', 'query_parse', 23, '<EOF>');
    parseFails('location within 10 of 1 2', 'query_parse', 24, '2');
    parseFails("location within '10' of 1, 2", 'query_parse', 16, "'10'");
    parseFails('location within 10, 1, 2', 'query_parse', 18, ',');
  });

  it('keeps 64-bit integers exact and reports overflow as number_format', () => {
    assert.deepEqual(where('n = 9223372036854775807'), cmp('n', '=', int(9223372036854775807n)));
    assert.deepEqual(where('n > -9223372036854775808'), cmp('n', '>', int(-9223372036854775808n)));
    const e = parseFails('n = 9223372036854775808', 'number_format', 4, '9223372036854775808');
    assert.match(e.message, /column 5/);
  });

  it('keeps floats in double precision', () => {
    const e = where('lat = 37.776753');
    assert.ok(e && e.kind === 'cmp' && e.value.kind === 'float');
    assert.equal(e.value.value, 37.776753);
  });

  it('decodes escapes in string values', () => {
    assert.deepEqual(where("name = 'O\\'Brien'"), cmp('name', '=', str("O'Brien")));
    assert.deepEqual(where("p = 'C:\\\\dir\\n\\u4e2d\\101'"), cmp('p', '=', str('C:\\dir\n中A')));
  });
});

describe('parser: order by and limit', () => {
  it('defaults to ascending and accepts several keys', () => {
    assert.deepEqual(parseQl('order by a, b desc, c asc').orderBy, [
      { field: 'a', dir: 'asc' }, { field: 'b', dir: 'desc' }, { field: 'c', dir: 'asc' },
    ]);
    assert.deepEqual(parseQl('order\n  by a').orderBy, [{ field: 'a', dir: 'asc' }]);
  });

  it('rejects the same key twice, whatever its case', () => {
    const e = parseFails('order by a desc, A asc', 'query_parse', 17, 'A');
    assert.equal(e.message, 'Attempted to set sort order for a more than once');
  });

  it('rejects order by without a key', () => {
    parseFails("name = 'x' order by", 'query_parse', 19, '<EOF>');
    parseFails('order by a,', 'query_parse', 11, '<EOF>');
    parseFails('order by desc', 'query_parse', 9, 'desc');
    parseFails('order a', 'query_parse', 0, 'order');
  });

  it('reads a trailing limit N', () => {
    assert.deepEqual(parseQl('limit 10'), q({ limit: 10 }));
    assert.deepEqual(parseQl('a = 5 limit 10'), q({ where: cmp('a', '=', int(5)), limit: 10 }));
    assert.deepEqual(parseQl('select * limit 0'), q({ limit: 0 }));
    assert.deepEqual(parseQl('select a, b LIMIT 3').limit, 3);
    assert.deepEqual(parseQl('order by timestamp desc limit 50'), q({ orderBy: [{ field: 'timestamp', dir: 'desc' }], limit: 50 }));
  });

  it('treats `limit` elsewhere as an ordinary field', () => {
    assert.deepEqual(parseQl('limit = 5 limit 7'), q({ where: cmp('limit', '=', int(5)), limit: 7 }));
    assert.deepEqual(parseQl('order by limit').orderBy, [{ field: 'limit', dir: 'asc' }]);
  });

  it('rejects a malformed or non-final limit at the word limit', () => {
    parseFails('a = 5 limit -1', 'query_parse', 6, 'limit');
    parseFails('a = 5 limit 1.5', 'query_parse', 6, 'limit');
    parseFails('a = 5 limit', 'query_parse', 6, 'limit');
    // Not a trailing limit, so `limit` is read as a field and its missing operator is the error.
    parseFails('limit 5 order by a', 'query_parse', 6, '5');
    parseFails('a = 5 limit 5 limit 6', 'query_parse', 6, 'limit');
  });
});

describe('parser: errors', () => {
  it('uses the Usergrid message with a 1-based character column', () => {
    const e = parseFails('a = abc', 'query_parse', 4, 'abc');
    assert.equal(e.message, "The query cannot be parsed. The token 'abc' at column 5 on line 1 cannot be parsed");
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'QlError');
  });

  it('names <EOF> at the end of input', () => {
    const e = parseFails('select * where name =', 'query_parse', 21, '<EOF>');
    assert.equal(e.message, "The query cannot be parsed. The token '<EOF>' at column 22 on line 1 cannot be parsed");
    parseFails("select * where name = 'x' and", 'query_parse', 29, '<EOF>');
    parseFails('select * where', 'query_parse', 14, '<EOF>');
    parseFails('(a = 1', 'query_parse', 6, '<EOF>');
  });

  it('rejects trailing text, naming the first unused token', () => {
    parseFails('a = 1 b = 2', 'query_parse', 6, 'b');
    parseFails('a = 5)', 'query_parse', 5, ')');
    parseFails("name = 'O''Brien'", 'query_parse', 10, "'Brien'");
    parseFails('order by a b', 'query_parse', 11, 'b');
    parseFails('select * where a = 1 order by b desc x', 'query_parse', 37, 'x');
    parseFails('select a = 1', 'query_parse', 9, '=');
  });

  it('rejects queries that start with an unusable keyword instead of returning everything', () => {
    parseFails('desc = 1', 'query_parse', 0, 'desc');
    parseFails('within = 1', 'query_parse', 0, 'within');
    parseFails('where', 'query_parse', 5, '<EOF>');
  });

  it('rejects operators Usergrid does not have', () => {
    parseFails('a <> 1', 'query_parse', 3, '>');
    parseFails('a != 1', 'query_token', 2, '!');
    parseFails('a ne 1', 'query_parse', 2, 'ne');
    parseFails('a in 1', 'query_parse', 2, 'in');
    parseFails('a like 1', 'query_parse', 2, 'like');
  });

  it('requires an identifier on the left of a comparison', () => {
    parseFails('1 = a', 'query_parse', 0, '1');
    parseFails("'a' = 1", 'query_parse', 0, "'a'");
    parseFails('abcdef01-2345-6789-abcd-ef0123456789 = 1', 'query_parse', 0);
    parseFails('true = 1', 'query_parse', 0, 'true');
    parseFails('a = 1 and', 'query_parse', 9, '<EOF>');
    parseFails('a', 'query_parse', 1, '<EOF>');
  });

  it('passes lexer errors through with their positions', () => {
    parseFails('a = "x"', 'query_token', 4, '"');
    parseFails("a = 'x", 'query_token', 4, "'");
    parseFails('a = 1a', 'query_token', 5, 'a');
  });
});

describe('parser: limits and robustness', () => {
  it(`accepts ${MAX_PAREN_DEPTH} nested parentheses and rejects one more`, () => {
    const nest = (n: number): string => `${'('.repeat(n)}a = 1${')'.repeat(n)}`;
    assert.deepEqual(where(nest(MAX_PAREN_DEPTH)), cmp('a', '=', int(1)));
    const e = parseFails(nest(MAX_PAREN_DEPTH + 1), 'query_parse', MAX_PAREN_DEPTH, '(');
    assert.match(e.message, /nested more than/);
  });

  it('survives hostile nesting without a stack overflow', () => {
    parseFails('('.repeat(100_000), 'query_parse', MAX_PAREN_DEPTH, '(');
    parseFails('not ('.repeat(50_000), 'query_parse', 5 * MAX_PAREN_DEPTH + 4, '(');
  });

  it(`bounds the tree depth at ${MAX_TREE_DEPTH}`, () => {
    const chain = (n: number): string => Array.from({ length: n }, (_, i) => `a = ${i}`).join(' or ');
    assert.equal(where(chain(MAX_TREE_DEPTH))?.kind, 'or');
    const ql = chain(MAX_TREE_DEPTH + 1);
    parseFails(ql, 'query_parse', ql.lastIndexOf(' or ') + 1, 'or');
  });

  it('parses a multi-KB query (its speed is measured in bench/, not here)', () => {
    const ql = `select * where ${Array.from({ length: 80 }, (_, i) => `(payload.ext.k${i} = 'value ${i}' or timestamp > ${1403164734226 + i})`).join(' and ')} order by timestamp desc limit 100`;
    assert.ok(ql.length > 4000);
    const q = parseQl(ql);
    assert.equal(q.limit, 100);
    assert.deepEqual(q.orderBy, [{ field: 'timestamp', dir: 'desc' }]);
    assert.equal(q.where?.kind, 'and');
  });

  it('throws nothing but QlError for thousands of random inputs (fixed seed)', () => {
    let seed = 0x5eed1234;
    // mulberry32: tiny, deterministic, good enough to shuffle test inputs.
    const rand = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const chars = "ab_.-019eE'\"\\u{}():,*<>=!&|  \t\n中😀\u0000xyz+#";
    const words = ['select', '*', 'where', 'a', 'b.c', '=', '<', '>=', 'lt', 'and', 'or', '&&', '||', 'not', '(', ')',
      'order by', 'asc', 'desc', ',', "'s'", "'\\u4e2d'", "'\\", '1', '-2', '3.5', '.5e3', '99999999999999999999', 'true',
      'abcdef01-2345-6789-abcd-ef0123456789', 'contains', 'within', 'of', 'limit', '10', '{', '}', ':', 'x:y', '!', '"'];
    const codes = new Set(['query_parse', 'query_token', 'number_format']);
    let parsed = 0;
    for (let i = 0; i < 4000; i++) {
      const len = Math.floor(rand() * 24);
      const ql = i % 2 === 0
        ? Array.from({ length: len }, () => pick(words)).join(rand() < 0.5 ? ' ' : '')
        : Array.from({ length: len * 2 }, () => pick([...chars])).join('');
      try {
        parseQl(ql);
        parsed++;
      } catch (e) {
        assert.ok(e instanceof QlError, `non-QlError for ${JSON.stringify(ql)}: ${String(e)}`);
        assert.ok(codes.has(e.code));
        assert.ok(e.position >= 0 && e.position <= ql.length, `bad position ${e.position} for ${JSON.stringify(ql)}`);
        assert.ok(e.code === 'query_parse' && e.message.startsWith('Attempted') ? true : /at column \d+ on line 1/.test(e.message));
      }
    }
    assert.ok(parsed > 0, 'the generator should produce some valid queries too');
  });
});
