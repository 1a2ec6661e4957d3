import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RestError } from '../../../src/baas/rest/errors.js';
import { settingsStatement, type RequestSettings } from '../../../src/baas/rest/http/transaction.js';
import { build, type RequestOptions , openFixture, type Fixture } from './support.js';

// Injection properties of the SQL builder:
// 1. Shape: any value in any value position (encoded as a client encodes it) gives the SAME SQL text as a benign
//    value; only the parameters differ.
// 2. No request text in SQL: arbitrary raw text in any position of the request (identifier positions included) is
//    either refused with a RestError or never appears in the SQL text.
// 3. Such statements run: Postgres answers a data error at worst, never a syntax or shape error.

let fx: Fixture;

beforeAll(async () => {
  fx = await openFixture('rest_shape');
});

afterAll(async () => {
  await fx?.close();
});

const HOSTILE = [
  "'", '"', ';', '--', '/*', '*/', '$1', '$$', '\\', "'; drop table todos; --", ')', '(', ',', '.', ':', '::', '*', '%', '&',
  '=', '+', '\u0000', 'é', '😀', ' ', '\t', '\n', '->', '->>', '!inner', 'not.', 'or(', '{', '}', '[', ']', 'NULL', 'eq.', 'E\'',
];

/** Strings made to hurt: hostile fragments, any code points, or both. */
const nasty: fc.Arbitrary<string> = fc.oneof(
  fc.array(fc.constantFrom(...HOSTILE), { maxLength: 6 }).map((xs) => xs.join('')),
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.tuple(fc.string({ maxLength: 8 }), fc.constantFrom(...HOSTILE), fc.string({ unit: 'binary', maxLength: 8 })).map((xs) => xs.join('')),
);

const enc = encodeURIComponent;
/** As supabase-js / a careful client quotes an item of in.(...) or a value inside or=(...): always double-quoted. */
const quoted = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

interface Template {
  name: string;
  make: (a: string, b: string) => { path: string; options?: RequestOptions };
  /** Values that the grammar reads as something else on purpose (documented ambiguities). */
  skip?: (a: string, b: string) => boolean;
}

const TEMPLATES: Template[] = [
  ...['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'match', 'imatch', 'isdistinct'].map((op) => ({
    name: `filter ${op}`,
    make: (a: string) => ({ path: `todos?select=id&title=${op}.${enc(a)}` }),
  })),
  ...['cs', 'cd', 'ov'].map((op) => ({
    name: `array filter ${op}`,
    make: (a: string) => ({ path: `todos?select=id&tags=${op}.${enc(a)}` }),
  })),
  { name: 'not. filter', make: (a) => ({ path: `todos?select=id&title=not.like.${enc(a)}` }) },
  { name: 'eq(any)', make: (a) => ({ path: `todos?select=id&title=eq(any).${enc(a)}` }) },
  { name: 'in list', make: (a, b) => ({ path: `todos?select=id&title=in.(${enc(quoted(a))},${enc(quoted(b))})` }) },
  { name: 'fts value', make: (a) => ({ path: `todos?select=id&search=wfts(english).${enc(a)}` }) },
  { name: 'or/and values', make: (a, b) => ({ path: `todos?select=id&or=(title.eq.${enc(quoted(a))},and(title.like.${enc(quoted(b))},id.gt.1))` }) },
  { name: 'JSON key in a filter', make: (a, b) => ({ path: `profiles?select=id&data->>${enc(quoted(a))}=eq.${enc(b)}` }) },
  { name: 'JSON key in select and order', make: (a) => ({ path: `profiles?select=data->${enc(quoted(a))}&order=data->>${enc(quoted(a))}.desc` }) },
  { name: 'alias', make: (a, b) => ({ path: `todos?select=${enc(quoted(a))}:id,${enc(quoted(b))}:profiles!owner(name)` }) },
  { name: 'embedded filter value', make: (a) => ({ path: `profiles?select=id,todos!owner(id)&todos.title=eq.${enc(a)}` }) },
  { name: 'Prefer', make: (a) => ({ path: 'todos?select=id', options: { prefer: `count=exact, ${a.replace(/[,\r\n]/g, '')}` } }), skip: (a) => /^\s*(count|return|resolution|missing|tx|handling)=/.test(a) },
  { name: 'Range header', make: (a) => ({ path: 'todos?select=id', options: { range: a } }) },
  { name: 'insert body', make: (a, b) => ({ path: 'todos', options: { method: 'POST', prefer: 'return=representation', body: { title: a, tags: [b] } } }) },
  { name: 'update body and filter', make: (a, b) => ({ path: `todos?title=eq.${enc(b)}`, options: { method: 'PATCH', body: { title: a } } }) },
  {
    name: 'rpc arguments',
    make: (a, b) => ({ path: `rpc/add?a=${enc(a)}&b=${enc(b)}` }),
    // `?a=eq.1` on a GET rpc is a filter on the result, by PostgREST's grammar.
    skip: (a, b) => [a, b].some((v) => /^(not\.)?[a-z]+[.(]/.test(v)),
  },
  { name: 'rpc body', make: (a) => ({ path: 'rpc/echo', options: { method: 'POST', body: { v: a } } }) },
];

const BENIGN = ['benign', 'value'] as const;

describe('statement shape', () => {
  it.each(TEMPLATES)('$name: any value gives the benign statement text', (t) => {
    const benign = build(fx.cache, t.make(...BENIGN).path, t.make(...BENIGN).options);
    fc.assert(
      fc.property(nasty, nasty, (a, b) => {
        if (t.skip?.(a, b)) return;
        const { path, options } = t.make(a, b);
        let statement;
        try {
          statement = build(fx.cache, path, options);
        } catch (err) {
          // Only the Range header may be refused (PGRST103 for a reversed range); values are never a grammar error.
          expect(err).toBeInstanceOf(RestError);
          expect(t.name).toBe('Range header');
          return;
        }
        expect(statement.text).toBe(benign.text);
        expect(statement.values).toHaveLength(benign.values.length);
      }),
      { numRuns: 150 },
    );
  });
});

describe('no request text in SQL', () => {
  const MARK = 'Zq9X';
  const marked = nasty.map((s) => `${MARK}${s}${MARK}`);
  const positions: Array<(v: string) => { path: string; options?: RequestOptions }> = [
    (v) => ({ path: `todos?select=${enc(v)}` }),
    (v) => ({ path: `todos?select=id,${enc(v)}(*)` }),
    (v) => ({ path: `todos?select=id,profiles!${enc(v)}(name)` }),
    (v) => ({ path: `todos?select=id::${enc(v)}` }),
    (v) => ({ path: `todos?${enc(v)}=eq.1` }),
    (v) => ({ path: `todos?title=${enc(v)}` }),
    (v) => ({ path: `todos?order=${enc(v)}` }),
    (v) => ({ path: `todos?or=${enc(v)}` }),
    (v) => ({ path: `todos?limit=${enc(v)}&offset=${enc(v)}` }),
    (v) => ({ path: `todos?select=id,profiles!owner(name)&${enc(v)}.limit=1` }),
    (v) => ({ path: `todos?on_conflict=${enc(v)}`, options: { method: 'POST', prefer: 'resolution=merge-duplicates', body: { title: 't' } } }),
    (v) => ({ path: `todos?columns=${enc(v)}`, options: { method: 'POST', body: [{ title: 't' }] } }),
    (v) => ({ path: 'todos', options: { method: 'POST', body: { [v]: 1 } } }),
    (v) => ({ path: 'todos', options: { prefer: v, accept: v, range: v } }),
    (v) => ({ path: 'todos', options: { schema: v } }),
    (v) => ({ path: 'todos', options: { method: 'POST', schema: v, body: { title: 't' } } }),
    (v) => ({ path: `${enc(v)}` }),
    (v) => ({ path: `rpc/${enc(v)}?a=1` }),
    (v) => ({ path: `rpc/add?${enc(v)}=1&b=2` }),
    // Value positions: these go through, and the text must still stay out.
    (v) => ({ path: `todos?title=eq.${enc(v)}` }),
    (v) => ({ path: `todos?or=(title.eq.${enc(quoted(v))})` }),
    (v) => ({ path: `profiles?select=${enc(quoted(v))}:data->${enc(quoted(v))}` }),
    (v) => ({ path: `todos?search=fts(${enc(v.replace(/[^A-Za-z0-9_ $]/g, ''))}).x` }),
  ];

  it.each(positions.map((p, i) => [i, p] as const))('position %i: refused, or the text stays out of the SQL', (i, position) => {
    let built = 0;
    fc.assert(
      fc.property(marked, (v) => {
        const { path, options } = position(v);
        let text: string;
        try {
          text = build(fx.cache, path, options).text;
        } catch (err) {
          expect(err).toBeInstanceOf(RestError);
          return;
        }
        built++;
        expect(text).not.toContain(MARK);
      }),
      { numRuns: 120 },
    );
    // Identifier positions are refused (no such column/table/type); value positions must really have been built.
    if (i >= positions.length - 4) expect(built).toBeGreaterThan(0);
  });
});

describe('the per-request settings', () => {
  // Role claim, claims, headers, method and path reach Postgres as parameters of one constant statement (the role
  // through realtime.performer_api_role, which refuses roles `authenticator` does not belong to).
  it('have the same SQL text whatever the request says', () => {
    const benign = settingsStatement(settingsOf(...BENIGN), false).text;
    fc.assert(
      fc.property(nasty, nasty, (a, b) => {
        const { text, values } = settingsStatement(settingsOf(a, b), false);
        expect(text).toBe(benign);
        expect(values).toContain(a);
      }),
      { numRuns: 300 },
    );
  });
});

function settingsOf(a: string, b: string): RequestSettings {
  return {
    role: a,
    claimsJson: JSON.stringify({ role: a, sub: b }),
    sub: b,
    email: a,
    method: b,
    path: `/${a}`,
    headersJson: JSON.stringify({ [a]: b }),
    searchPath: '"public"',
    statementTimeoutMs: 1000,
  };
}

describe('statements with hostile values run', () => {
  // What a value may do at run time: be the wrong data for the column or pattern. Never break the statement.
  const acceptable = (err: { code?: string; message: string }): boolean =>
    (err.code ?? '').startsWith('22') || (err.code === '42601' && /tsquery/.test(err.message)) || err.code === '23502';

  it('filters, or/and, JSON keys, aliases, bodies: answered or refused as data', async () => {
    const runnable = TEMPLATES.filter((t) => t.name !== 'Range header');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...runnable), nasty, nasty, async (t, a, b) => {
        if (t.skip?.(a, b)) return;
        const { path, options } = t.make(a, b);
        const statement = build(fx.cache, path, options);
        await fx.client.query('BEGIN');
        try {
          await fx.client.query(statement.text, statement.values);
        } catch (err) {
          const e = err as { code?: string; message: string };
          if (!acceptable(e)) throw new Error(`${t.name}: ${e.code} ${e.message}\n${statement.text}`);
        } finally {
          await fx.client.query('ROLLBACK');
        }
      }),
      { numRuns: 300 },
    );
  });
});
