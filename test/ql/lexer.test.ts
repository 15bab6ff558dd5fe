import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QlError } from '../../src/ql/errors.js';
import { type Token, tokenize } from '../../src/ql/lexer.js';

/** A compact, comparable view of a token. */
function brief(t: Token): string {
  switch (t.kind) {
    case 'sym':
      return `sym:${t.sym}`;
    case 'ident':
      return `ident:${t.name}`;
    case 'eof':
      return 'eof';
    case 'int':
      return `int:${t.value}`;
    default:
      return `${t.kind}:${String(t.value)}`;
  }
}

const kinds = (ql: string): string[] => tokenize(ql).map(brief);

function lexFails(ql: string, code: QlError['code'], position: number, token?: string): QlError {
  let caught: unknown;
  try {
    tokenize(ql);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof QlError, `expected QlError for ${JSON.stringify(ql)}, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.equal(caught.position, position);
  if (token !== undefined) assert.equal(caught.token, token);
  assert.match(caught.message, new RegExp(`at column ${position + 1} on line 1`));
  return caught;
}

const stringValue = (ql: string): string => {
  const [t] = tokenize(ql);
  assert.ok(t && t.kind === 'string', `not a string token: ${ql}`);
  return t.value;
};

describe('lexer: tokens and positions', () => {
  it('splits a query and records start/end/text of each token', () => {
    const toks = tokenize("select * where Name = 'Fred'");
    assert.deepEqual(
      toks.map((t) => [t.kind, t.start, t.end, t.text]),
      [
        ['sym', 0, 6, 'select'],
        ['sym', 7, 8, '*'],
        ['sym', 9, 14, 'where'],
        ['ident', 15, 19, 'Name'],
        ['sym', 20, 21, '='],
        ['string', 22, 28, "'Fred'"],
        ['eof', 28, 28, ''],
      ],
    );
  });

  it('always ends with eof at the input length, even for empty or blank input', () => {
    assert.deepEqual(tokenize('').map((t) => [t.kind, t.start]), [['eof', 0]]);
    assert.deepEqual(tokenize(' \t\r\n\f ').map((t) => [t.kind, t.start]), [['eof', 6]]);
  });

  it('folds keyword synonyms and is case-insensitive for keywords', () => {
    assert.deepEqual(kinds('LT lte Eq GT gte < <= = > >= && || AND Or NOT'), [
      'sym:<', 'sym:<=', 'sym:=', 'sym:>', 'sym:>=', 'sym:<', 'sym:<=', 'sym:=', 'sym:>', 'sym:>=',
      'sym:and', 'sym:or', 'sym:and', 'sym:or', 'sym:not', 'eof',
    ]);
    assert.deepEqual(kinds('SELECT Where ASC desc Contains WITHIN of * , ( ) { } :'), [
      'sym:select', 'sym:where', 'sym:asc', 'sym:desc', 'sym:contains', 'sym:within', 'sym:of',
      'sym:*', 'sym:,', 'sym:(', 'sym:)', 'sym:{', 'sym:}', 'sym::', 'eof',
    ]);
    assert.deepEqual(kinds('true FALSE'), ['bool:true', 'bool:false', 'eof']);
  });

  it('uses longest match, so words that start with a keyword are identifiers', () => {
    assert.deepEqual(kinds('ltime ascending orders notes android truefalse'), [
      'ident:ltime', 'ident:ascending', 'ident:orders', 'ident:notes', 'ident:android', 'ident:truefalse', 'eof',
    ]);
  });

  it('lower-cases identifiers and keeps dotted and dashed paths whole', () => {
    assert.deepEqual(kinds('payload.bodies.msg Payload.EXT.my_key _x a-b.c_1'), [
      'ident:payload.bodies.msg', 'ident:payload.ext.my_key', 'ident:_x', 'ident:a-b.c_1', 'eof',
    ]);
    const [t] = tokenize('Payload.Ext');
    assert.equal(t?.text, 'Payload.Ext');
  });

  it('reads `order by` as one token across any whitespace', () => {
    for (const ql of ['order by', 'ORDER BY', 'order  by', 'order\tby', 'order\n\r by']) {
      const toks = tokenize(ql);
      assert.equal(toks.length, 2, ql);
      assert.equal(brief(toks[0]!), 'sym:order by');
      assert.equal(toks[0]!.end, ql.length);
    }
  });

  it('keeps a lone `order` reserved and `by`/`orderby` as identifiers', () => {
    assert.deepEqual(kinds('order x'), ['sym:order', 'ident:x', 'eof']);
    assert.deepEqual(kinds('order byx'), ['sym:order', 'ident:byx', 'eof']);
    assert.deepEqual(kinds('orderby by'), ['ident:orderby', 'ident:by', 'eof']);
    assert.deepEqual(kinds('order'), ['sym:order', 'eof']);
  });

  it('skips exactly the Usergrid whitespace set', () => {
    assert.deepEqual(kinds('a\t=\r\n1\f'), ['ident:a', 'sym:=', 'int:1', 'eof']);
    lexFails('a\v= 1', 'query_token', 1);
    lexFails('a\u00a0= 1', 'query_token', 1);
  });
});

describe('lexer: numbers', () => {
  it('reads integers as bigint, with an optional minus', () => {
    assert.deepEqual(kinds('0 42 -7 007 1403164734226'), ['int:0', 'int:42', 'int:-7', 'int:7', 'int:1403164734226', 'eof']);
    assert.deepEqual(kinds('a=-5'), ['ident:a', 'sym:=', 'int:-5', 'eof']);
  });

  it('accepts the full signed 64-bit range and rejects overflow with number_format', () => {
    assert.deepEqual(kinds('9223372036854775807 -9223372036854775808'), [
      'int:9223372036854775807', 'int:-9223372036854775808', 'eof',
    ]);
    const e = lexFails('a = 9223372036854775808', 'number_format', 4, '9223372036854775808');
    assert.match(e.message, /9223372036854775808/);
    lexFails('-9223372036854775809', 'number_format', 0);
    lexFails('123456789012345678901234567890', 'number_format', 0);
  });

  it('reads every float form as a double', () => {
    const floats = (ql: string): number[] =>
      tokenize(ql).flatMap((t) => (t.kind === 'float' ? [t.value] : t.kind === 'eof' ? [] : [NaN]));
    assert.deepEqual(floats('1.5 5. .5 -.5 1e3 1E+3 2e-2 -1.25e2 5.e1 37.776753 -122.407846'), [
      1.5, 5, 0.5, -0.5, 1000, 1000, 0.02, -125, 50, 37.776753, -122.407846,
    ]);
    // Not rounded through a 32-bit float as Usergrid did (37.776753 -> 37.776752).
    assert.equal(floats('37.776753')[0], 37.776753);
    assert.equal(floats('0.1')[0], 0.1);
  });

  it('rejects infinite floats with number_format', () => {
    lexFails('a = 1e999', 'number_format', 4, '1e999');
    lexFails('-1.0e400', 'number_format', 0);
  });

  it('rejects a number glued to letters, digits or dots', () => {
    lexFails('1a', 'query_token', 1, 'a');
    lexFails('a = 12abc', 'query_token', 6, 'a');
    lexFails('1.2.3', 'query_token', 3, '.');
    lexFails('5e', 'query_token', 1, 'e');
    lexFails('5e+', 'query_token', 1, 'e');
    lexFails('7_', 'query_token', 1, '_');
  });

  it('leaves a minus after a number as the start of the next token', () => {
    assert.deepEqual(kinds('5-3'), ['int:5', 'int:-3', 'eof']);
  });

  it('rejects a minus that starts no number', () => {
    lexFails('a = -x', 'query_token', 4, '-');
    lexFails('a = -', 'query_token', 4, '-');
    lexFails('-.', 'query_token', 0, '-');
  });
});

describe('lexer: UUIDs', () => {
  it('reads unquoted UUIDs, lower-cased, whether they start with a digit or a letter', () => {
    assert.deepEqual(kinds('8272C9B0-1234-11E4-8C21-0800200C9A66 abcdef01-2345-6789-abcd-ef0123456789'), [
      'uuid:8272c9b0-1234-11e4-8c21-0800200c9a66', 'uuid:abcdef01-2345-6789-abcd-ef0123456789', 'eof',
    ]);
    assert.deepEqual(kinds('(abcdef01-2345-6789-abcd-ef0123456789)'), [
      'sym:(', 'uuid:abcdef01-2345-6789-abcd-ef0123456789', 'sym:)', 'eof',
    ]);
  });

  it('treats UUID-like text with more identifier characters as an identifier', () => {
    assert.deepEqual(kinds('abcdef01-2345-6789-abcd-ef0123456789x'), ['ident:abcdef01-2345-6789-abcd-ef0123456789x', 'eof']);
    assert.deepEqual(kinds('abcdef01-2345-6789-abcd-ef012345678'), ['ident:abcdef01-2345-6789-abcd-ef012345678', 'eof']);
    assert.deepEqual(kinds('abcdef01-2345-6789-abcd-ef0123456789.a'), ['ident:abcdef01-2345-6789-abcd-ef0123456789.a', 'eof']);
  });
});

describe('lexer: strings', () => {
  it('keeps case and non-ASCII text', () => {
    assert.equal(stringValue("'Hello World'"), 'Hello World');
    assert.equal(stringValue("'你好，世界'"), '你好，世界');
    assert.equal(stringValue("'😀 emoji'"), '😀 emoji');
    assert.equal(stringValue("''"), '');
  });

  it('decodes the simple escapes', () => {
    assert.equal(stringValue("'O\\'Brien'"), "O'Brien");
    assert.equal(stringValue("'a\\\\b'"), 'a\\b');
    assert.equal(stringValue("'\\b\\t\\n\\f\\r\\\"\\/'"), '\b\t\n\f\r"/');
  });

  it('decodes \\uXXXX escapes', () => {
    assert.equal(stringValue("'\\u4e2d\\u6587'"), '中文');
    assert.equal(stringValue("'x\\u0041y'"), 'xAy');
    assert.equal(stringValue("'\\uFFFF'"), '\uffff');
  });

  it('decodes octal escapes by longest match up to \\377', () => {
    assert.equal(stringValue("'\\0'"), '\0');
    assert.equal(stringValue("'\\101\\102'"), 'AB');
    assert.equal(stringValue("'\\377'"), '\u00ff');
    assert.equal(stringValue("'\\7'"), '\u0007');
    assert.equal(stringValue("'\\77'"), '?');
    assert.equal(stringValue("'\\400'"), ' 0');
    assert.equal(stringValue("'\\1019'"), 'A9');
  });

  it('allows raw newlines and any other character inside quotes', () => {
    assert.equal(stringValue("'a\nb\"c!'"), 'a\nb"c!');
  });

  it('reports unterminated strings at the opening quote', () => {
    const e = lexFails("name = 'abc", 'query_token', 7, "'");
    assert.match(e.message, /never closed/);
    lexFails("'", 'query_token', 0);
    lexFails("'abc\\'", 'query_token', 0);
    lexFails("'abc\\", 'query_token', 0);
  });

  it('reports bad escapes at the backslash', () => {
    const e = lexFails("a = 'x\\qy'", 'query_token', 6, '\\');
    assert.match(e.message, /\\q/);
    lexFails("'\\u12'", 'query_token', 1);
    lexFails("'\\u12g4'", 'query_token', 1);
    lexFails("'\\8'", 'query_token', 1);
  });

  it('rejects double-quoted strings', () => {
    const e = lexFails('name = "fred"', 'query_token', 7, '"');
    assert.match(e.message, /single quotes/);
  });

  it('keeps the SQL-style doubled quote as two strings', () => {
    assert.deepEqual(kinds("'O''Brien'"), ['string:O', 'string:Brien', 'eof']);
  });
});

describe('lexer: invalid characters', () => {
  it('rejects ! and != at the !', () => {
    const e = lexFails('a != 1', 'query_token', 2, '!');
    assert.equal(e.message, "The query cannot be tokenized. The character '!' at column 3 on line 1 is not valid here");
    lexFails('!a', 'query_token', 0, '!');
  });

  it('lexes <> as two operators (the parser rejects it)', () => {
    assert.deepEqual(kinds('a <> 1'), ['ident:a', 'sym:<', 'sym:>', 'int:1', 'eof']);
  });

  it('rejects a single & or |, and other stray characters', () => {
    lexFails('a = 1 & b = 2', 'query_token', 6, '&');
    lexFails('a = 1 | b = 2', 'query_token', 6, '|');
    for (const c of ['#', '%', '+', ';', '[', '@', '$', '?', '~', '^', '`', '\\', '中']) lexFails(`a ${c}`, 'query_token', 2, c);
  });

  it('names a character outside the BMP whole, and escapes control characters', () => {
    const e = lexFails('a 😀', 'query_token', 2, '😀');
    assert.match(e.message, /'😀'/);
    const c = lexFails('a \u0001', 'query_token', 2);
    assert.match(c.message, /'\\u0001'/);
  });
});
