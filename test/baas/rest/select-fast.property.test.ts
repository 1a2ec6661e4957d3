import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runParser } from '../../../src/baas/rest/grammar/parsec.js';
import { fastSelect } from '../../../src/baas/rest/grammar/select-fast.js';
import { selectForest } from '../../../src/baas/rest/grammar/select.js';

// The fast select scanner must agree with the Parsec grammar on every input it accepts (and it must accept the
// common shapes, or it would be useless).

const TOKENS = [
  'id', 'title', 'a', 'B_2', '123', 'count', 'inner', 'left', 'innerx', 'lefty', 'rel', 'x',
  ',', ',', ',', ':', '::', '!', '!inner', '!left', '!fk', '(', '(', ')', ')', '*', '-', ' ', '->', '->>', '.sum()', '...', '"q"', '$', 'é', '()',
];

const selectish = fc.array(fc.constantFrom(...TOKENS), { maxLength: 14 }).map((ts) => ts.join(''));

const common = fc
  .array(
    fc.oneof(
      fc.constantFrom('id', 'title', '*', 'done', 'n:id', 'id::text', 'created_at'),
      fc.tuple(fc.constantFrom('', 'p:', 'author:'), fc.constantFrom('profiles', 'tags'), fc.constantFrom('', '!inner', '!owner', '!owner!inner', '!left', '!a!b', '!inner!fk', '!fk!left', '!inner!left'), fc.constantFrom('name', '*', 'id,name', '', 'x,y(z)')).map(
        ([alias, rel, params, inner]) => `${alias}${rel}${params}(${inner})`,
      ),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((xs) => xs.join(','));

function slow(input: string) {
  const r = runParser(selectForest, '', input);
  return r.ok ? r.value : `error: ${r.failure.details}`;
}

describe('fastSelect', () => {
  it('agrees with the grammar whenever it answers', () => {
    let answered = 0;
    fc.assert(
      fc.property(fc.oneof(selectish, common), (input) => {
        const fast = fastSelect(input);
        if (fast === null) return;
        answered++;
        expect(fast).toEqual(slow(input));
      }),
      { numRuns: 4000 },
    );
    expect(answered).toBeGreaterThan(1000);
  });

  it('answers the shapes clients send', () => {
    for (const s of ['', '*', 'id,title', 'id,profile:profiles!owner(name),tags(*)', 'n:id::text', 'a!inner!fk(b(c(*)))', 'rel()']) {
      expect(fastSelect(s)).not.toBeNull();
      expect(fastSelect(s)).toEqual(slow(s));
    }
  });

  it('leaves everything else to the grammar', () => {
    for (const s of ['id,', 'id)x', 'a b', 'data->x', 'my-col', '"q"', 'count()', 'count(*)', 'a!innerx(b)', '...rel(a)', 'x.sum()', 'a:b:c', 'rel(a)::text', 'é']) {
      expect(fastSelect(s)).toBeNull();
    }
  });
});
