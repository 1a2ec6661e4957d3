/**
 * Direct scanners for the query parameters clients send most: a plain filter key (`id`), a filter value with a
 * simple operator (`eq.5`, `not.like.a*`, `is.null`), an `order` of plain columns (`id.desc.nullslast,name`). Each
 * returns exactly what the Parsec grammar (./filters.ts, ./order.ts) returns for those inputs, or null for anything
 * else (JSON paths, embedded paths, `in.(...)`, modifiers, full text, quotes, spaces, errors), which the grammar then
 * parses with PostgREST's error texts. The grammar engine costs tens of microseconds per request; these, about one.
 * A differential property test (test/baas/rest/params-fast.property.test.ts) holds them equal to the grammar.
 */
import type { EmbedPath, Field, OpExpr, OrderTerm, QuantOperator, SimpleOperator } from './ast.js';

const NAME = /^[A-Za-z0-9_]+$/;
const FILTER = /^(not\.)?(eq|neq|gt|gte|lt|lte|like|ilike|match|imatch|cs|cd|ov|sl|sr|nxr|nxl|adj)\.(.*)$/s;
const IS = /^(not\.)?is\.(null|not_null|true|false|unknown)$/i;
const ORDER_TERM = /^([A-Za-z0-9_]+)(?:\.(asc|desc))?(?:\.(nullsfirst|nullslast))?$/;
const SIMPLE = new Set<string>(['neq', 'cs', 'cd', 'ov', 'sl', 'sr', 'nxr', 'nxl', 'adj']);

/** A filter key that is one plain name: no embed path, no JSON path. */
export function fastTreePath(key: string): { path: EmbedPath; field: Field } | null {
  return NAME.test(key) ? { path: [], field: { name: key, jsonPath: [] } } : null;
}

export function fastFilterExpr(value: string): OpExpr | null {
  const m = FILTER.exec(value);
  if (m) {
    const negated = m[1] !== undefined;
    const op = m[2]!;
    const operand = m[3]!;
    return SIMPLE.has(op)
      ? { negated, operation: { kind: 'simple', op: op as SimpleOperator, value: operand } }
      : { negated, operation: { kind: 'quant', op: op as QuantOperator, value: operand } };
  }
  const is = IS.exec(value);
  if (is) return { negated: is[1] !== undefined, operation: { kind: 'is', value: is[2]!.toLowerCase() as 'null' } };
  return null;
}

export function fastOrder(value: string): OrderTerm[] | null {
  const terms: OrderTerm[] = [];
  for (const text of value.split(',')) {
    const m = ORDER_TERM.exec(text);
    if (!m) return null;
    terms.push({
      type: 'field',
      field: { name: m[1]!, jsonPath: [] },
      ...(m[2] !== undefined ? { direction: m[2] as 'asc' | 'desc' } : {}),
      ...(m[3] !== undefined ? { nulls: m[3] === 'nullsfirst' ? ('first' as const) : ('last' as const) } : {}),
    });
  }
  return terms;
}
