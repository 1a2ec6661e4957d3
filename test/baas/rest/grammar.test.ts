import { describe, expect, it } from 'vitest';
import type { QueryParams } from '../../../src/baas/rest/grammar/ast.js';
import { negotiate, parseAccept } from '../../../src/baas/rest/grammar/media-type.js';
import { parsePayload } from '../../../src/baas/rest/grammar/payload.js';
import { checkStrictPreferences, parsePreferences, preferenceApplied } from '../../../src/baas/rest/grammar/prefer.js';
import { parseQueryParams, parseQueryString } from '../../../src/baas/rest/grammar/query-params.js';
import { LIMIT_ZERO, readStatus, topLevelRange } from '../../../src/baas/rest/grammar/range.js';
import { MAX_EMBED_DEPTH, MAX_FILTERS, MAX_LOGIC_DEPTH, MAX_QUERY_BYTES } from '../../../src/baas/rest/limits.js';

// Golden ASTs for every item of the query-string grammar of spec §1.2 and §9.1.

const q = (qs: string): QueryParams => parseQueryParams(parseQueryString(qs));
const col = (name: string, jsonPath: unknown[] = []) => ({ name, jsonPath });
const error = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return { status: (err as { status: number }).status, ...(err as { body(): object }).body() };
  }
  throw new Error('no error');
};

describe('select', () => {
  it('defaults to * and takes column lists', () => {
    expect(q('').select).toEqual([{ type: 'field', field: col('*') }]);
    expect(q('select=a,b').select).toEqual([{ type: 'field', field: col('a') }, { type: 'field', field: col('b') }]);
    expect(q('select=').select).toEqual([]);
  });

  it('aliases, casts and JSON paths', () => {
    expect(q('select=full:name::text,data->a->>b,data->0,"odd, name":x').select).toEqual([
      { type: 'field', field: col('name'), alias: 'full', cast: 'text' },
      { type: 'field', field: col('data', [{ arrow: '->', key: { kind: 'key', value: 'a' } }, { arrow: '->>', key: { kind: 'key', value: 'b' } }]) },
      { type: 'field', field: col('data', [{ arrow: '->', key: { kind: 'index', value: '+0' } }]) },
      { type: 'field', field: col('x'), alias: 'odd, name' },
    ]);
  });

  it('tolerates spaces around items (the client strips them, others may not)', () => {
    expect(q('select= id , title ').select).toEqual([{ type: 'field', field: col('id') }, { type: 'field', field: col('title') }]);
  });

  it('embeds: to-one/to-many alike, alias, !hint, !inner, !left, nested, empty', () => {
    expect(q('select=id,profile:profiles!todos_owner_fkey!inner(name,avatar:pics(url)),tags!left(*),users!inner()').select).toEqual([
      { type: 'field', field: col('id') },
      {
        type: 'relation',
        relation: 'profiles',
        alias: 'profile',
        hint: 'todos_owner_fkey',
        joinType: 'inner',
        children: [
          { type: 'field', field: col('name') },
          { type: 'relation', relation: 'pics', alias: 'avatar', children: [{ type: 'field', field: col('url') }] },
        ],
      },
      { type: 'relation', relation: 'tags', joinType: 'left', children: [{ type: 'field', field: col('*') }] },
      { type: 'relation', relation: 'users', joinType: 'inner', children: [] },
    ]);
    expect(q('select=a!inner!fk(*)').select).toEqual([{ type: 'relation', relation: 'a', hint: 'fk', joinType: 'inner', children: [{ type: 'field', field: col('*') }] }]);
  });

  it('spreads and aggregates parse (the planner decides whether they are allowed)', () => {
    expect(q('select=...rel(a),count(),total:amount.sum()::int').select).toEqual([
      { type: 'spread', relation: 'rel', children: [{ type: 'field', field: col('a') }] },
      { type: 'field', field: col('*'), aggregate: 'count' },
      { type: 'field', field: col('amount'), alias: 'total', aggregate: 'sum', aggregateCast: 'int' },
    ]);
  });
});

describe('filters', () => {
  const op = (qs: string) => q(qs).filters.map((f) => f.filter.expr);

  it.each([
    ['eq', 'quant'], ['neq', 'simple'], ['gt', 'quant'], ['gte', 'quant'], ['lt', 'quant'], ['lte', 'quant'],
    ['like', 'quant'], ['ilike', 'quant'], ['match', 'quant'], ['imatch', 'quant'], ['cs', 'simple'], ['cd', 'simple'],
    ['ov', 'simple'], ['sl', 'simple'], ['sr', 'simple'], ['nxr', 'simple'], ['nxl', 'simple'], ['adj', 'simple'],
  ])('%s', (name, kind) => {
    expect(op(`c=${name}.v.w`)).toEqual([{ negated: false, operation: { kind, op: name, value: 'v.w' } }]);
  });

  it('is, isdistinct, in (with quoted items), fts with config, not., any/all', () => {
    expect(op('a=is.NULL&b=not.is.not_null&c=is.True&d=is.unknown')).toEqual([
      { negated: false, operation: { kind: 'is', value: 'null' } },
      { negated: true, operation: { kind: 'is', value: 'not_null' } },
      { negated: false, operation: { kind: 'is', value: 'true' } },
      { negated: false, operation: { kind: 'is', value: 'unknown' } },
    ]);
    expect(op('a=isdistinct.x')).toEqual([{ negated: false, operation: { kind: 'isdistinct', value: 'x' } }]);
    expect(op('a=in.(1,2,"a,b","q\\"x\\\\")&b=not.in.()')).toEqual([
      { negated: false, operation: { kind: 'in', values: ['1', '2', 'a,b', 'q"x\\'] } },
      { negated: true, operation: { kind: 'in', values: [''] } },
    ]);
    expect(op('t=fts.cat&t=plfts(english).fat%20cat&t=phfts.a&t=not.wfts(simple).x')).toEqual([
      { negated: false, operation: { kind: 'fts', op: 'fts', value: 'cat' } },
      { negated: false, operation: { kind: 'fts', op: 'plfts', config: 'english', value: 'fat cat' } },
      { negated: false, operation: { kind: 'fts', op: 'phfts', value: 'a' } },
      { negated: true, operation: { kind: 'fts', op: 'wfts', config: 'simple', value: 'x' } },
    ]);
    expect(op('a=like(any).{a*,b*}&b=eq(all).{1,2}')).toEqual([
      { negated: false, operation: { kind: 'quant', op: 'like', quantifier: 'any', value: '{a*,b*}' } },
      { negated: false, operation: { kind: 'quant', op: 'eq', quantifier: 'all', value: '{1,2}' } },
    ]);
  });

  it('keys carry an embed path and a JSON path; repeated keys are all kept', () => {
    expect(q('films.roles.year=gt.2000&data->>k=eq.1&n=gt.1&n=lt.9').filters).toEqual([
      { path: ['films', 'roles'], filter: { field: col('year'), expr: { negated: false, operation: { kind: 'quant', op: 'gt', value: '2000' } } } },
      { path: [], filter: { field: col('data', [{ arrow: '->>', key: { kind: 'key', value: 'k' } }]), expr: { negated: false, operation: { kind: 'quant', op: 'eq', value: '1' } } } },
      { path: [], filter: { field: col('n'), expr: { negated: false, operation: { kind: 'quant', op: 'gt', value: '1' } } } },
      { path: [], filter: { field: col('n'), expr: { negated: false, operation: { kind: 'quant', op: 'lt', value: '9' } } } },
    ]);
  });

  it('decodes %XX and + (as a space) in keys and values; & and ; separate parameters', () => {
    expect(q('a=eq.x%2Cy+z;b=eq.1').filters.map((f) => [f.filter.field.name, f.filter.expr.operation])).toEqual([
      ['a', { kind: 'quant', op: 'eq', value: 'x,y z' }],
      ['b', { kind: 'quant', op: 'eq', value: '1' }],
    ]);
  });
});

describe('or / and', () => {
  it('nests, negates, quotes values with reserved characters, takes arrays', () => {
    const leaf = (name: string, operation: object, negated = false) => ({ type: 'filter', filter: { field: col(name), expr: { negated, operation } } });
    expect(q('or=(a.eq.1,and(b.gt.2,c.not.is.null),not.or(d.eq."x,y",e.cs.{1,2}))').logic).toEqual([
      {
        path: [],
        tree: {
          type: 'expr',
          negated: false,
          op: 'or',
          children: [
            leaf('a', { kind: 'quant', op: 'eq', value: '1' }),
            { type: 'expr', negated: false, op: 'and', children: [leaf('b', { kind: 'quant', op: 'gt', value: '2' }), leaf('c', { kind: 'is', value: 'null' }, true)] },
            { type: 'expr', negated: true, op: 'or', children: [leaf('d', { kind: 'quant', op: 'eq', value: 'x,y' }), leaf('e', { kind: 'simple', op: 'cs', value: '{1,2}' })] },
          ],
        },
      },
    ]);
  });

  it('not.and / embedded or', () => {
    expect(q('not.and=(a.eq.1)&films.or=(b.eq.2)&films.not.or=(c.eq.3)').logic.map((l) => [l.path, l.tree.type === 'expr' && [l.tree.negated, l.tree.op]])).toEqual([
      [[], [true, 'and']],
      [['films'], [false, 'or']],
      [['films'], [true, 'or']],
    ]);
  });
});

describe('order, limit, offset, Range', () => {
  it('several terms, directions, nulls, JSON paths, related and embedded orders', () => {
    expect(q('order=a.desc.nullslast,b,c->>k.asc,d.nullsfirst,rel(x).desc&films.order=year').order).toEqual([
      {
        path: [],
        terms: [
          { type: 'field', field: col('a'), direction: 'desc', nulls: 'last' },
          { type: 'field', field: col('b') },
          { type: 'field', field: col('c', [{ arrow: '->>', key: { kind: 'key', value: 'k' } }]), direction: 'asc' },
          { type: 'field', field: col('d'), nulls: 'first' },
          { type: 'relation', relation: 'rel', field: col('x'), direction: 'desc' },
        ],
      },
      { path: ['films'], terms: [{ type: 'field', field: col('year') }] },
    ]);
  });

  it('limit/offset per embed path; later duplicates win; unreadable numbers mean all rows', () => {
    const r = q('limit=10&offset=20&films.limit=2&films.offset=1&a.offset=3&limit=5&b.limit=x').ranges;
    expect([...r.values()]).toEqual([
      { path: [], range: { offset: 20n, upper: 24n } },
      { path: ['films'], range: { offset: 1n, upper: 2n } },
      { path: ['a'], range: { offset: 3n, upper: null } },
      { path: ['b'], range: { offset: 0n, upper: null } },
    ]);
  });

  it('Range header (GET only) intersected with limit/offset; limit=0; errors 416 PGRST103', () => {
    const root = (qs: string) => q(qs).ranges.get('')?.range;
    expect(topLevelRange('GET', undefined, '0-19')).toEqual({ offset: 0n, upper: 19n });
    expect(topLevelRange('GET', root('offset=5'), '0-19')).toEqual({ offset: 5n, upper: 19n });
    expect(topLevelRange('GET', undefined, '10-')).toEqual({ offset: 10n, upper: null });
    expect(topLevelRange('HEAD', undefined, '10-')).toEqual({ offset: 0n, upper: null });
    expect(topLevelRange('GET', undefined, 'items=0-1')).toEqual({ offset: 0n, upper: null });
    expect(topLevelRange('GET', root('limit=0'), '3-9')).toEqual(LIMIT_ZERO);
    expect(error(() => topLevelRange('GET', undefined, '9-3'))).toEqual({
      status: 416, code: 'PGRST103', message: 'Requested range not satisfiable',
      details: 'The lower boundary must be lower than or equal to the upper boundary in the Range header.', hint: null,
    });
    expect(error(() => topLevelRange('GET', root('limit=-1'), undefined))).toMatchObject({ status: 416, details: 'Limit should be greater than or equal to zero.' });
    expect(error(() => topLevelRange('PUT', root('limit=1'), undefined))).toMatchObject({ status: 400, code: 'PGRST114' });
  });

  it('status and Content-Range of a read', () => {
    expect(readStatus({ offset: 0n, upper: 0n }, 1n, 5n)).toEqual({ status: 206, contentRange: '0-0/5' });
    expect(readStatus({ offset: 0n, upper: null }, 5n, 5n)).toEqual({ status: 200, contentRange: '0-4/5' });
    expect(readStatus({ offset: 0n, upper: null }, 3n, null)).toEqual({ status: 200, contentRange: '0-2/*' });
    expect(readStatus({ offset: 0n, upper: null }, 0n, 0n)).toEqual({ status: 200, contentRange: '*/0' });
    expect(readStatus({ offset: 10n, upper: null }, 0n, 5n)).toEqual({ status: 416, contentRange: '*/5' });
  });
});

describe('columns, on_conflict', () => {
  it('quoted and bare names', () => {
    expect(q('columns="a","b c",d&on_conflict=id, other').columns).toEqual(['a', 'b c', 'd']);
    expect(q('on_conflict=id, other').onConflict).toEqual(['id', 'other']);
  });
});

describe('Prefer', () => {
  const prefs = (...h: string[]) => parsePreferences(h, { allowTransactionOverride: true });

  it('comma-joined, order-free, spaces tolerated, first of each kind wins, across headers', () => {
    expect(prefs('resolution=merge-duplicates, return=representation', 'count=exact,resolution=ignore-duplicates')).toEqual({
      resolution: 'merge-duplicates', representation: 'full', count: 'exact', invalid: ['resolution=ignore-duplicates'].filter(() => false),
    });
    expect(prefs('return=minimal', 'return=headers-only').representation).toBe('none');
    expect(prefs('missing=default,tx=rollback,handling=lenient,count=planned,timezone=UTC')).toMatchObject({
      missing: 'default', transaction: 'rollback', handling: 'lenient', count: 'planned', timezone: 'UTC',
    });
    expect(parsePreferences(['tx=rollback'], { allowTransactionOverride: false }).transaction).toBeUndefined();
  });

  it('handling=strict refuses unknown values with PGRST122; lenient ignores them', () => {
    const p = prefs('handling=strict, nope, return=xyz');
    expect(p.invalid).toEqual(['nope', 'return=xyz']);
    expect(error(() => checkStrictPreferences(p))).toEqual({
      status: 400, code: 'PGRST122', message: 'Invalid preferences given with handling=strict', details: 'Invalid preferences: nope, return=xyz', hint: null,
    });
    expect(() => checkStrictPreferences(prefs('nope'))).not.toThrow();
  });

  it('Preference-Applied lists what was honoured in upstream order', () => {
    expect(preferenceApplied(prefs('count=exact, return=representation, resolution=merge-duplicates'))).toBe(
      'resolution=merge-duplicates, return=representation, count=exact',
    );
    expect(preferenceApplied(prefs('x'))).toBeNull();
  });
});

describe('Accept', () => {
  const pick = (h?: string) => negotiate(parseAccept(h));

  it('json by default and for */*, singular object, csv, stripped nulls', () => {
    expect(pick()).toEqual({ format: 'json', stripNulls: false, contentType: 'application/json; charset=utf-8' });
    expect(pick('*/*')).toMatchObject({ format: 'json' });
    expect(pick('application/vnd.pgrst.object+json')).toEqual({
      format: 'singular', stripNulls: false, contentType: 'application/vnd.pgrst.object+json; charset=utf-8',
    });
    expect(pick('ApplicatIon/vnd.PgRsT.object+json;nulls=stripped')).toMatchObject({ format: 'singular', stripNulls: true });
    expect(pick('text/csv')).toEqual({ format: 'csv', stripNulls: false, contentType: 'text/csv; charset=utf-8' });
    expect(pick('application/vnd.pgrst.array+json;nulls=stripped')).toMatchObject({ format: 'json', stripNulls: true });
  });

  it('orders by q and specificity; unknown types are 406 PGRST107 listing them', () => {
    expect(pick('text/csv;q=0.5, application/json')).toMatchObject({ format: 'json' });
    expect(pick('text/html, text/csv')).toMatchObject({ format: 'csv' });
    expect(error(() => pick('text/html, application/xml;q=0.9'))).toEqual({
      status: 406, code: 'PGRST107', message: 'None of these media types are available: text/html, application/xml', details: null, hint: null,
    });
    expect(error(() => pick('application/vnd.pgrst.plan+json'))).toMatchObject({
      message: 'None of these media types are available: application/vnd.pgrst.plan+json; for="application/json"',
    });
  });
});

describe('JSON body (columns and keys)', () => {
  it('with columns the body passes unparsed; its shape is read from its first byte', () => {
    expect(parsePayload(' \n[{"a":1}', { columns: ['a', 'b', 'a'], rpc: false })).toEqual({ json: ' \n[{"a":1}', isArray: true, keys: ['a', 'b'] });
    expect(parsePayload('{"x":1}', { columns: ['x'], rpc: false })).toMatchObject({ isArray: false });
  });

  it('without columns: the keys of the object, or of every object of an array (which must agree)', () => {
    expect(parsePayload('{"b":1,"a":2}', { rpc: false })).toEqual({ json: '{"b":1,"a":2}', isArray: false, keys: ['a', 'b'] });
    expect(parsePayload('[{"a":1,"b":2},{"b":3,"a":4}]', { rpc: false }).keys).toEqual(['a', 'b']);
    expect(parsePayload('[]', { rpc: false })).toEqual({ json: '[]', isArray: true, keys: [] });
    expect(parsePayload('42', { rpc: false })).toEqual({ json: '[]', isArray: true, keys: [] });
    expect(parsePayload('', { rpc: true })).toEqual({ json: '{}', isArray: false, keys: [] });
  });

  it('PGRST102 for invalid JSON and for objects with different keys', () => {
    const body = { status: 400, code: 'PGRST102', details: null, hint: null };
    expect(error(() => parsePayload('{"a":', { rpc: false }))).toEqual({ ...body, message: 'Empty or invalid json' });
    expect(error(() => parsePayload('', { rpc: false }))).toEqual({ ...body, message: 'Empty or invalid json' });
    expect(error(() => parsePayload('[{"a":1},{"b":1}]', { rpc: false }))).toEqual({ ...body, message: 'All object keys must match' });
    expect(error(() => parsePayload('[{"a":1},{"a":1,"b":2}]', { rpc: false }))).toMatchObject({ message: 'All object keys must match' });
    expect(error(() => parsePayload('[1,2]', { rpc: false }))).toMatchObject({ message: 'All object keys must match' });
  });
});

describe('bounds (Performer)', () => {
  it('query string length, filter count, nesting of or/and and of embeds', () => {
    expect(error(() => parseQueryString('a=' + 'x'.repeat(MAX_QUERY_BYTES)))).toMatchObject({ status: 400, code: 'PGRST100', message: 'Query string too long' });
    const leaves = Array.from({ length: MAX_FILTERS }, (_, i) => `c.eq.${i}`).join(',');
    expect(q(`or=(${leaves})`).logic).toHaveLength(1);
    expect(error(() => q(`or=(${leaves})&d=eq.1`))).toEqual({
      status: 400, code: 'PGRST100', message: 'Too many filters', details: `The request has ${MAX_FILTERS + 1} filter conditions; the limit is ${MAX_FILTERS}.`, hint: null,
    });
    const params = Array.from({ length: 257 }, (_, i) => `c=eq.${i}`).join('&');
    expect(error(() => q(params))).toMatchObject({ message: 'Too many query parameters' });
    const nested = (n: number) => `or=(${'or('.repeat(n - 1)}a.eq.1${')'.repeat(n - 1)})`;
    expect(q(nested(MAX_LOGIC_DEPTH)).logic).toHaveLength(1);
    expect(error(() => q(nested(MAX_LOGIC_DEPTH + 1)))).toMatchObject({ code: 'PGRST100', message: 'Nesting too deep' });
    const embeds = (n: number) => `select=${'a('.repeat(n)}b${')'.repeat(n)}`;
    expect(q(embeds(MAX_EMBED_DEPTH)).select).toHaveLength(1);
    expect(error(() => q(embeds(MAX_EMBED_DEPTH + 1)))).toMatchObject({ code: 'PGRST100', message: 'Nesting too deep' });
  });

  it('a very deep nesting is refused before it can exhaust the stack', () => {
    const deep = `or=(${'or('.repeat(4000)}a.eq.1${')'.repeat(4000)})`;
    expect(error(() => q(deep))).toMatchObject({ message: 'Nesting too deep' });
  });
});
