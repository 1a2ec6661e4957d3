import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DotContext,
  insertInterval,
  intervalsCover,
  intervalsLength,
  normalizeIntervals,
  type Interval,
} from '../../src/presence/crdt-context.js';

const intervalArb = fc
  .tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 6 }))
  .map(([a, len]): Interval => [a, a + len]);

function members(ivs: Interval[]): Set<number> {
  const out = new Set<number>();
  for (const [a, b] of ivs) for (let c = a; c <= b; c++) out.add(c);
  return out;
}

function isCanonical(ivs: Interval[]): boolean {
  return ivs.every(([a, b], i) => a <= b && (i === 0 || a > ivs[i - 1][1] + 1));
}

describe('interval sets', () => {
  it('insertInterval and normalizeIntervals agree with a plain set of counters', () => {
    fc.assert(
      fc.property(fc.array(intervalArb, { maxLength: 20 }), (input) => {
        const ivs: Interval[] = [];
        for (const [a, b] of input) insertInterval(ivs, a, b);
        const expected = members(input);
        expect(isCanonical(ivs)).toBe(true);
        expect(members(ivs)).toEqual(expected);
        expect(normalizeIntervals(input)).toEqual(ivs);
        expect(intervalsLength(ivs)).toBe(expected.size);
        for (let c = 0; c <= 50; c++) expect(intervalsCover(ivs, c)).toBe(expected.has(c));
      }),
      { numRuns: 500 },
    );
  });

  it('DotContext tracks prefix and max per replica', () => {
    const ctx = new DotContext();
    ctx.add('a', 2, 3);
    expect(ctx.prefix('a')).toBe(0);
    expect(ctx.max('a')).toBe(3);
    ctx.add('a', 1);
    expect(ctx.prefix('a')).toBe(3);
    ctx.add('a', 5);
    expect(ctx.toJSON()).toEqual({ a: [[1, 3], [5, 5]] });
    expect(ctx.covers('a', 4)).toBe(false);
    expect(ctx.covers('b', 1)).toBe(false);
    ctx.delete('a');
    expect(ctx.toJSON()).toEqual({});
  });
});
