import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileLike, lowerCodePoint } from '../../src/replication/changes/like.js';
import { PatternError } from '../../src/replication/changes/pattern.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

// LIKE/ILIKE (like.ts) against a slow but obviously right reference and against PostgreSQL 18 itself: a C-locale
// database (ASCII case folding, so ILIKE cases there use letters whose case only ASCII defines) and a database
// with the builtin C.UTF-8 locale (Unicode simple case mapping, which is what our ILIKE implements).

/** LIKE by dynamic programming over (pattern position, subject position): quadratic, no cleverness. */
function referenceLike(pattern: string, subject: string, caseInsensitive: boolean): boolean {
  const fold = (cp: number) => (caseInsensitive ? lowerCodePoint(cp) : cp);
  const tokens: Array<{ any: 'one' | 'run' | null; cp: number }> = [];
  const p = Array.from(pattern, (ch) => ch.codePointAt(0)!);
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0x5c) {
      if (i + 1 >= p.length) throw new PatternError('LIKE pattern must not end with escape character');
      tokens.push({ any: null, cp: fold(p[++i]!) });
    } else if (p[i] === 0x25) tokens.push({ any: 'run', cp: 0 });
    else if (p[i] === 0x5f) tokens.push({ any: 'one', cp: 0 });
    else tokens.push({ any: null, cp: fold(p[i]!) });
  }
  const s = Array.from(subject, (ch) => fold(ch.codePointAt(0)!));
  // can[j] after processing tokens[0..k): the first j subject characters can be matched.
  let can = s.map(() => false).concat(false);
  can[0] = true;
  for (const t of tokens) {
    const next = can.map(() => false);
    for (let j = 0; j <= s.length; j++) {
      if (t.any === 'run') next[j] = can[j]! || (j > 0 && next[j - 1]!);
      else if (j > 0 && can[j - 1]) next[j] = t.any === 'one' || s[j - 1] === t.cp;
    }
    can = next;
  }
  return can[s.length]!;
}

const like = (pattern: string, subject: string, ci = false) => compileLike(pattern, ci).test(subject);

describe('LIKE matcher (golden)', () => {
  it.each([
    ['abc', 'abc', false, true],
    ['abc', 'abcd', false, false],
    ['a%', 'a', false, true],
    ['a%', 'ba', false, false],
    ['%', '', false, true],
    ['', '', false, true],
    ['', 'a', false, false],
    ['_', '', false, false],
    ['_', '😀', false, true],
    ['__', '😀', false, false],
    ['%a%a%a%a%a%a%b', 'a'.repeat(200), false, false],
    ['%a%a%a%a%a%a%b', `${'a'.repeat(200)}b`, false, true],
    ['a\\%', 'a%', false, true],
    ['a\\%', 'ab', false, false],
    ['a\\_', 'a_', false, true],
    ['a\\_', 'ab', false, false],
    ['\\\\', '\\', false, true],
    ['\\a', 'a', false, true],
    ['%\n%', 'x\ny', false, true],
    ['A%', 'abc', false, false],
    ['A%', 'abc', true, true],
    ['%B_', 'abc', true, true],
    // Postgres' lower() character by character (checked against PostgreSQL 15, C.UTF-8): İ lowers to i, ẞ to ß,
    // Σ to σ (never to final ς), and ſ stays ſ.
    ['i', 'İ', true, true],
    ['İ', 'i', true, true],
    ['ẞ', 'ß', true, true],
    ['ς', 'Σ', true, false],
    ['σ', 'Σ', true, true],
    ['s', 'ſ', true, false],
    ['é%', 'ÉCOLE', true, true],
    // More than 32 tokens: the state set spans several words.
    [`${'_'.repeat(40)}x`, `${'y'.repeat(40)}x`, false, true],
    [`${'_'.repeat(40)}x`, `${'y'.repeat(39)}x`, false, false],
    [`%${'ab'.repeat(40)}%`, `zz${'ab'.repeat(40)}zz`, false, true],
    [`%${'ab'.repeat(40)}%`, `zz${'ab'.repeat(39)}zz`, false, false],
  ])('%j LIKE %j (case-insensitive %s) is %s', (pattern, subject, ci, expected) => {
    expect(like(pattern, subject, ci)).toBe(expected);
    expect(referenceLike(pattern, subject, ci)).toBe(expected);
  });

  it('rejects a pattern ending in the escape character, with Postgres message', () => {
    expect(() => compileLike('abc\\', false)).toThrow(new PatternError('LIKE pattern must not end with escape character'));
    expect(() => compileLike('\\', true)).toThrow(PatternError);
    expect(like('abc\\\\', 'abc\\')).toBe(true);
  });
});

const piece = (...units: string[]) => fc.constantFrom(...units);
const patternOf = (units: fc.Arbitrary<string>, maxLength: number) => fc.array(units, { maxLength }).map((p) => p.join(''));
const subjectOf = (units: fc.Arbitrary<string>, maxLength: number) => fc.array(units, { maxLength }).map((p) => p.join(''));

describe('LIKE matcher agrees with a reference', () => {
  it('on many random patterns and subjects, long ones included', () => {
    const units = piece('a', 'b', 'B', '😀', '%', '_', '\\%', '\\_', '\\\\', '\\a', 'İ', 'ẞ', 'ß');
    const text = piece('a', 'b', 'B', 'A', '😀', '%', '_', '\\', 'i', 'İ', 'ß', 'ẞ');
    fc.assert(
      fc.property(patternOf(units, 80), subjectOf(text, 90), fc.boolean(), (pattern, subject, ci) => {
        expect(like(pattern, subject, ci)).toBe(referenceLike(pattern, subject, ci));
      }),
      { numRuns: 4000, seed: 20260611 },
    );
  });

  it('on patterns that match: a subject built from the pattern always matches', () => {
    // Instantiate each wildcard (`%` with 0-3 characters, `_` with one) so the subject matches by construction.
    const part = fc.oneof(
      piece('a', 'b', '😀').map((c) => [c, c] as const),
      fc.tuple(piece('%'), fc.array(piece('a', 'b', 'x'), { maxLength: 3 })).map(([p, fill]) => [p, fill.join('')] as const),
      piece('a', 'x', '😀').map((c) => ['_', c] as const),
    );
    fc.assert(
      fc.property(fc.array(part, { maxLength: 60 }), (parts) => {
        const pattern = parts.map(([p]) => p).join('');
        const subject = parts.map(([, s]) => s).join('');
        expect(like(pattern, subject)).toBe(true);
      }),
      { numRuns: 2000, seed: 20260612 },
    );
  });
});

/**
 * A pattern and a subject made from it (each `%` filled with 0-3 characters, `_` with one, a `flippable` letter
 * maybe in the other case), then maybe one character changed: cases near the boundary between matching and not.
 */
function instantiated(
  units: fc.Arbitrary<string>,
  text: fc.Arbitrary<string>,
  flippable: RegExp,
): fc.Arbitrary<{ pattern: string; subject: string }> {
  const part = fc.tuple(units, fc.array(text, { maxLength: 3 }), fc.boolean());
  return fc
    .tuple(fc.array(part, { maxLength: 25 }), fc.option(fc.tuple(fc.nat(), text), { freq: 2 }))
    .map(([parts, change]) => {
      const pattern = parts.map(([u]) => u).join('');
      const subject = Array.from(
        parts
          .map(([u, fill, flip]) => {
            if (u === '%') return fill.join('');
            if (u === '_') return fill[0] ?? 'a';
            const literal = u.startsWith('\\') ? u.slice(1) : u;
            if (!flip || !flippable.test(literal)) return literal;
            return literal === literal.toLowerCase() ? literal.toUpperCase() : literal.toLowerCase();
          })
          .join(''),
      );
      if (change && subject.length > 0) subject[change[0] % subject.length] = change[1];
      return { pattern, subject: subject.join('') };
    });
}

// Generated cases evaluated by Postgres in one query per database.
async function postgresLike(client: pg.Client, cases: ReadonlyArray<{ pattern: string; subject: string }>): Promise<Array<[boolean, boolean]>> {
  const res = await client.query<{ l: boolean; i: boolean }>(
    `SELECT x.s LIKE x.p AS l, x.s ILIKE x.p AS i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(p, s, n) ORDER BY x.n`,
    [cases.map((c) => c.pattern), cases.map((c) => c.subject)],
  );
  return res.rows.map((r) => [r.l, r.i]);
}

describe('LIKE and ILIKE agree with PostgreSQL', () => {
  const databases: Array<{ db: TestDatabase; client: pg.Client }> = [];
  const connect = async (prefix: string, options = '') => {
    const db = await createTestDatabase(prefix, options);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    databases.push({ db, client });
    return client;
  };
  let cLocale: pg.Client;
  let unicode: pg.Client;

  beforeAll(async () => {
    cLocale = await connect('like_c', `TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'`);
    unicode = await connect('like_utf8', `TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'`);
  });
  afterAll(async () => {
    for (const { db, client } of databases) {
      await client.end();
      await db.drop();
    }
  });

  const compare = async (client: pg.Client, units: fc.Arbitrary<string>, text: fc.Arbitrary<string>, flippable: RegExp, seed: number) => {
    const short = fc.record({ pattern: patternOf(units, 6), subject: subjectOf(text, 6) });
    const long = fc.record({ pattern: patternOf(units, 30), subject: subjectOf(text, 40) });
    const cases = fc.sample(fc.oneof(short, long, instantiated(units, text, flippable)), { numRuns: 3000, seed });
    const expected = await postgresLike(client, cases);
    cases.forEach((c, k) => {
      const got = [like(c.pattern, c.subject), like(c.pattern, c.subject, true)];
      expect({ ...c, got }).toEqual({ ...c, got: expected[k] });
    });
    // Both answers must be well represented, or the comparison says little.
    const matched = expected.filter(([l, i]) => l || i).length;
    expect(matched).toBeGreaterThan(cases.length / 10);
    expect(matched).toBeLessThan(cases.length * 0.9);
  };

  it('in a C-locale database (letters with ASCII case only)', async () => {
    const units = piece('a', 'b', 'B', 'é', '😀', ' ', '\n', '%', '%', '_', '\\%', '\\_', '\\\\', '\\b');
    const text = piece('a', 'A', 'b', 'B', 'é', '😀', ' ', '\n', '%', '_', '\\');
    await compare(cLocale, units, text, /^[a-z]$/i, 20260613);
  });

  it('in a builtin C.UTF-8 database (Unicode case mapping, character by character)', async () => {
    const units = piece('a', 'B', 'é', 'É', 'ß', 'ẞ', 'İ', 'i', 'σ', 'Σ', 'ς', 'ſ', 's', 'ǅ', '😀', '%', '_', '\\%', '\\_');
    const text = piece('a', 'A', 'b', 'B', 'é', 'É', 'ß', 'ẞ', 'İ', 'i', 'I', 'σ', 'Σ', 'ς', 'ſ', 's', 'S', 'ǅ', 'ǆ', 'Ǆ', '😀', '_');
    await compare(unicode, units, text, /^\p{L}$/u, 20260614);
  });
});
