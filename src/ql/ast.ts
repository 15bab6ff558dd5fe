/**
 * The syntax tree of a Usergrid `ql` query. It knows nothing about storage: the store compiles it
 * to whatever it runs. Property names are lower-cased by the parser (Usergrid property names are
 * case-insensitive); string literal contents keep their case, and the store compares them
 * without case.
 */

/** A literal value in a ql comparison. */
export type QlValue =
  | { kind: 'string'; value: string } // escapes decoded (\' -> ', \\ -> \, \n, \uXXXX, octal ...)
  | { kind: 'int'; value: bigint } // signed 64-bit; the lexer rejects anything wider
  | { kind: 'float'; value: number } // full double precision, unlike Usergrid's 32-bit floats
  | { kind: 'bool'; value: boolean }
  | { kind: 'uuid'; value: string }; // lower-cased 8-4-4-4-12
export type CmpOp = '=' | '<' | '<=' | '>' | '>=';
export type QlExpr =
  | { kind: 'cmp'; field: string; op: CmpOp; value: QlValue }
  | { kind: 'contains'; field: string; value: string }
  | { kind: 'within'; field: string; radius: number; lat: number; lng: number }
  | { kind: 'and'; left: QlExpr; right: QlExpr }
  | { kind: 'or'; left: QlExpr; right: QlExpr }
  | { kind: 'not'; expr: QlExpr };
export type Selection =
  | { kind: 'all' }
  | { kind: 'fields'; fields: string[] }
  | { kind: 'aliases'; pairs: { alias: string; field: string }[] };
export interface SortKey { field: string; dir: 'asc' | 'desc' }
export interface Query { select: Selection; where: QlExpr | null; orderBy: SortKey[]; limit: number | null }
