/**
 * The statement cache for requests with a body (POST, PATCH: src/baas/rest/http/statement-cache.ts): a body of a
 * shape seen before (same keys, object or array) gets exactly the statement a fresh build gives it, a new shape
 * never gets another shape's statement, what the cache keeps never holds a body, and a reloaded schema cache starts
 * empty. Against a real schema cache and Postgres.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedStatement, rememberStatement, statementKey, type CachedStatement } from '../../../src/baas/rest/http/statement-cache.js';
import { prepareRequest } from '../../../src/baas/rest/request.js';
import { loadSchemaCache } from '../../../src/baas/rest/schema/load.js';
import type { SchemaCache } from '../../../src/baas/rest/schema/types.js';
import { buildStatement } from '../../../src/baas/rest/sql/statement.js';
import { openFixture, rolledBack, type Fixture } from './support.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await openFixture('rest_cache_writes');
});
afterAll(async () => fx?.close());

interface Req {
  method: 'POST' | 'PATCH';
  /** Path and query under /rest/v1. */
  target: string;
  headers?: Record<string, string>;
  body: string;
}

/** What the HTTP module does with a request: the cached statement if any, else prepare, build and remember. */
function serve(cache: SchemaCache, r: Req): CachedStatement & { hit: boolean } {
  const [path, query = ''] = r.target.split(/\?(.*)/s);
  const headers = { 'content-type': 'application/json', ...r.headers };
  const key = statementKey(r.method, path, query, headers);
  const hit = key === null ? undefined : cachedStatement(cache, key, r.body);
  if (hit) return { ...hit, hit: true };
  const fresh = build(cache, r);
  if (key !== null) rememberStatement(cache, key, fresh);
  return { ...fresh, hit: false };
}

function build(cache: SchemaCache, r: Req): CachedStatement {
  const [path, query = ''] = r.target.split(/\?(.*)/s);
  const headers: Record<string, string> = { 'content-type': 'application/json', ...r.headers };
  const prepared = prepareRequest(
    { method: r.method, path, query, header: (n) => (headers[n] === undefined ? [] : [headers[n]]), body: r.body },
    { schemas: cache.schemas, maxRows: null, allowTransactionOverride: true },
  );
  return { prepared, built: buildStatement({ cache, ...prepared }) };
}

/** A schema cache of its own (the statement cache hangs off the object), so tests do not see each other's entries. */
const freshCache = (): SchemaCache => ({ ...fx.cache });

const text = fc.string({ unit: 'binary', maxLength: 16 });
const rep = { prefer: 'return=representation' };

/** Request shapes with a body; `make` puts the two values into a body of the same shape each time. */
const SHAPES: Array<{ name: string; make: (a: string, b: string) => Req }> = [
  { name: 'insert object', make: (a, b) => ({ method: 'POST', target: '/todos', headers: rep, body: JSON.stringify({ title: a, tags: [b] }) }) },
  { name: 'insert array', make: (a, b) => ({ method: 'POST', target: '/todos', body: JSON.stringify([{ title: a, done: true }, { title: b, done: false }]) }) },
  { name: 'insert array with columns', make: (a, b) => ({ method: 'POST', target: '/todos?columns=title,tags', headers: rep, body: JSON.stringify([{ title: a }, { title: b, tags: [a] }]) }) },
  {
    name: 'upsert with missing=default',
    make: (a, b) => ({ method: 'POST', target: '/todos?on_conflict=id', headers: { prefer: 'resolution=merge-duplicates, missing=default, return=representation' }, body: JSON.stringify({ id: 7, title: a, done: b.length > 2 }) }),
  },
  { name: 'update with filter', make: (a, b) => ({ method: 'PATCH', target: '/todos?title=eq.a&id=gt.0', headers: rep, body: JSON.stringify({ title: a, tags: [b] }) }) },
  { name: 'rpc named arguments', make: (a, b) => ({ method: 'POST', target: '/rpc/add', body: JSON.stringify({ a: a.length, b: b.length }) }) },
  { name: 'rpc single json argument', make: (a, b) => ({ method: 'POST', target: '/rpc/echo', body: JSON.stringify({ v: a, w: [b] }) }) },
];

describe('a body of a shape seen before', () => {
  it.each(SHAPES)('$name: gets the statement a fresh build gives that body', (shape) => {
    fc.assert(
      fc.property(text, text, text, text, (a, b, c, d) => {
        const cache = freshCache();
        expect(serve(cache, shape.make(a, b)).hit).toBe(false);
        const second = serve(cache, shape.make(c, d));
        expect(second.hit).toBe(true);
        const fresh = build(cache, shape.make(c, d));
        expect(second.built.text).toBe(fresh.built.text);
        expect(second.built.values).toEqual(fresh.built.values);
        expect(second.built.bodyParams).toEqual(fresh.built.bodyParams);
      }),
      { numRuns: 60 },
    );
  });

  it('runs with its own body, not the one that built it', async () => {
    const cache = freshCache();
    serve(cache, { method: 'POST', target: '/notes', headers: rep, body: JSON.stringify({ id: 50, body: 'first' }) });
    const second = serve(cache, { method: 'POST', target: '/notes', headers: rep, body: JSON.stringify({ body: 'second', id: 51 }) });
    expect(second.hit).toBe(true);
    const rows = await rolledBack(fx.client, async () => (await fx.client.query({ text: second.built.text, values: second.built.values, rowMode: 'array' })).rows);
    expect(JSON.parse(rows[0][4] as string)).toEqual([{ id: 51, body: 'second', 'Odd "Name"': null, score: null }]);
  });
});

describe('a new body shape', () => {
  it('never gets the statement of another shape', () => {
    const cache = freshCache();
    const bodies = [{ title: 'x' }, { title: 'x', done: true }, { done: true }, [{ title: 'x' }], [{ title: 'x', done: true }], {}, []];
    const texts = new Set<string>();
    for (const body of bodies) {
      const r: Req = { method: 'POST', target: '/todos', headers: rep, body: JSON.stringify(body) };
      const first = serve(cache, r);
      expect(first.hit).toBe(false);
      texts.add(first.built.text);
      // Seen now: the same shape again is a hit with the same text.
      expect(serve(cache, r).hit).toBe(true);
      expect(serve(cache, r).built.text).toBe(first.built.text);
    }
    // {} and [] insert no columns: `[]` still names its (empty) rows, `{}` one row of defaults.
    expect(texts.size).toBe(bodies.length);
  });

  it('is the same shape whatever the order of its keys', () => {
    const cache = freshCache();
    serve(cache, { method: 'POST', target: '/todos', body: '{"title":"x","done":true}' });
    const swapped = serve(cache, { method: 'POST', target: '/todos', body: '{"done":false,"title":"y"}' });
    expect(swapped.hit).toBe(true);
    expect(swapped.built.values).toEqual(build(cache, { method: 'POST', target: '/todos', body: '{"done":false,"title":"y"}' }).built.values);
  });

  it('differs by Content-Type, profile, Prefer, Accept and Range', () => {
    const key = (headers: Record<string, string>, method = 'POST') => statementKey(method, '/todos', '', headers);
    const base = { 'content-type': 'application/json' };
    const keys = [
      key(base),
      key(base, 'PATCH'),
      key({}),
      key({ 'content-type': 'application/json; charset=utf-8' }),
      key({ ...base, 'content-profile': 'public' }),
      key({ ...base, prefer: 'return=representation' }),
      key({ ...base, accept: 'text/csv' }),
      key({ ...base, range: '0-1' }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    expect(key(base, 'PUT')).toBeNull();
  });
});

describe('what the cache keeps', () => {
  it('never holds a body value', () => {
    const MARK = 'Zq9Xsecret';
    fc.assert(
      fc.property(text, fc.constantFrom(...SHAPES), (v, shape) => {
        const cache = freshCache();
        const first = shape.make(`${MARK}${v}`, 'plain');
        serve(cache, first);
        const [path, query = ''] = first.target.split(/\?(.*)/s);
        const key = statementKey(first.method, path, query, { 'content-type': 'application/json', ...first.headers })!;
        // The kept entry, seen through a hit with another body: its text, values and prepared request.
        const other = shape.make('other', 'plain').body;
        const seen = cachedStatement(cache, key, other);
        expect(seen).toBeDefined();
        const kept = JSON.stringify(seen, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x instanceof Map || x instanceof Set ? [...x] : x));
        expect(kept).not.toContain(MARK);
        expect(seen!.prepared.payload).toBeUndefined();
        for (const i of seen!.built.bodyParams) expect(seen!.built.values[i]).toBe(other);
      }),
      { numRuns: 40 },
    );
  });

  it('is not used for a body that does not parse: prepareRequest answers it', () => {
    const cache = freshCache();
    serve(cache, { method: 'POST', target: '/todos', body: '{"title":"x"}' });
    const key = statementKey('POST', '/todos', '', { 'content-type': 'application/json' })!;
    for (const bad of ['{"title":', '', '[{"title":"x"},{"done":true}]', '[1]']) expect(cachedStatement(cache, key, bad)).toBeUndefined();
  });

  it('starts empty for a reloaded schema cache', async () => {
    const cache = freshCache();
    const r: Req = { method: 'POST', target: '/todos', body: '{"title":"x"}' };
    serve(cache, r);
    expect(serve(cache, r).hit).toBe(true);
    const reloaded = await loadSchemaCache(fx.client, ['public']);
    expect(serve(reloaded, r).hit).toBe(false);
    expect(serve(reloaded, r).hit).toBe(true);
  });
});
