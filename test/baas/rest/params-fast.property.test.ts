import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { filterExpr, treePath } from '../../../src/baas/rest/grammar/filters.js';
import { orderTerms } from '../../../src/baas/rest/grammar/order.js';
import { fastFilterExpr, fastOrder, fastTreePath } from '../../../src/baas/rest/grammar/params-fast.js';
import { runParser, type Parser } from '../../../src/baas/rest/grammar/parsec.js';

// The fast scanners must agree with the Parsec grammar on every input they accept, and accept the common shapes.

const TOKENS = [
  'id', 'a', 'B_2', '123', 'not', 'eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'match', 'imatch', 'cs', 'cd', 'ov', 'sl',
  'sr', 'nxr', 'nxl', 'adj', 'is', 'in', 'null', 'NULL', 'not_null', 'true', 'False', 'unknown', 'fts', 'wfts', 'isdistinct', 'any', 'all',
  'asc', 'desc', 'nullsfirst', 'nullslast', '.', '.', '.', ',', '(', ')', '{', '}', '*', '%', ' ', '->', '->>', '"', '\\', 'é', '$', '',
];

const text = fc.array(fc.constantFrom(...TOKENS), { maxLength: 10 }).map((ts) => ts.join(''));
const anything = fc.oneof(text, fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 8 }));

function slow<T>(p: Parser<T>, input: string): T | string {
  const r = runParser(p, '', input);
  return r.ok ? r.value : `error: ${r.failure.details}`;
}

function agrees<T>(fast: (s: string) => T | null, p: Parser<T>, inputs: fc.Arbitrary<string>): number {
  let answered = 0;
  fc.assert(
    fc.property(inputs, (input) => {
      const f = fast(input);
      if (f === null) return;
      answered++;
      expect(f).toEqual(slow(p, input));
    }),
    { numRuns: 6000 },
  );
  return answered;
}

describe('fast query parameter scanners', () => {
  it('filter values: the grammar answer whenever they answer', () => {
    const common = fc.tuple(fc.constantFrom('', 'not.'), fc.constantFrom('eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'cs', 'ov', 'is', 'match'), anything).map(([n, op, v]) => `${n}${op}.${v}`);
    expect(agrees(fastFilterExpr, filterExpr, fc.oneof(text, common))).toBeGreaterThan(2000);
  });

  it('filter keys and order: the grammar answer whenever they answer', () => {
    expect(agrees(fastTreePath, treePath, fc.oneof(text, fc.constantFrom('id', 'created_at', 'A1')))).toBeGreaterThan(500);
    const orders = fc
      .array(fc.tuple(fc.constantFrom('id', 'name', 'asc', 'x1'), fc.constantFrom('', '.asc', '.desc', '.up'), fc.constantFrom('', '.nullsfirst', '.nullslast', '.nulls')), { minLength: 1, maxLength: 4 })
      .map((ts) => ts.map((t) => t.join('')).join(','));
    expect(agrees(fastOrder, orderTerms, fc.oneof(text, orders))).toBeGreaterThan(1000);
  });

  it('answer the shapes clients send', () => {
    for (const v of ['eq.5', 'not.eq.', 'lte.50', 'like.a*b', 'is.null', 'not.is.NULL', 'cs.{a,b}', 'eq.a.b.c', 'ilike.%x%']) expect(fastFilterExpr(v)).not.toBeNull();
    for (const o of ['id', 'id.desc', 'created_at.asc.nullslast,id', 'name.nullsfirst']) expect(fastOrder(o)).not.toBeNull();
    expect(fastTreePath('author_id')).not.toBeNull();
  });
});
