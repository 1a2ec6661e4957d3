/**
 * The statement cache of body-less requests (src/baas/rest/http/statement-cache.ts; requests with a body:
 * statement-cache-writes.test.ts) and the shortcuts of the token path: a cached entry must be found only for a
 * request whose every input to prepareRequest is the same, and the fast path of cleanToken must give what the full
 * cleaning gives.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cleanToken } from '../../../src/auth/jwt.js';
import { cachedStatement, rememberStatement, statementKey, type CachedStatement } from '../../../src/baas/rest/http/statement-cache.js';
import type { SchemaCache } from '../../../src/baas/rest/schema/types.js';

const base = { accept: 'application/json', prefer: 'count=exact', range: '0-9', 'accept-profile': 'public', 'content-profile': 'private' };

describe('statementKey', () => {
  it('keys the methods the API serves (POST and PATCH by body shape too: statement-cache-writes.test.ts), not others', () => {
    for (const m of ['GET', 'HEAD', 'DELETE', 'POST', 'PATCH']) expect(statementKey(m, '/t', 'id=eq.1', {})).not.toBeNull();
    for (const m of ['PUT', 'OPTIONS', 'TRACE']) expect(statementKey(m, '/t', 'id=eq.1', {})).toBeNull();
  });

  it('differs whenever an input of prepareRequest differs', () => {
    const key = (over: Partial<Record<string, string | undefined>> = {}, method = 'GET', path = '/t', query = 'id=eq.1') => {
      const headers = Object.fromEntries(Object.entries({ ...base, ...over }).filter(([, v]) => v !== undefined)) as Record<string, string>;
      return statementKey(method, path, query, headers);
    };
    const keys = [
      key(),
      key({}, 'HEAD'),
      key({}, 'GET', '/u'),
      key({}, 'GET', '/t', 'id=eq.2'),
      key({ accept: 'text/csv' }),
      key({ accept: undefined }),
      key({ accept: '' }),
      key({ prefer: 'count=planned' }),
      key({ prefer: undefined }),
      key({ range: '0-4' }),
      key({ range: undefined }),
      key({ 'accept-profile': 'other' }),
      key({ 'accept-profile': undefined }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    // DELETE reads the content profile, GET the accept profile: the other one does not matter.
    expect(key({ 'content-profile': 'x' })).toBe(key());
    expect(key({ 'content-profile': 'x' }, 'DELETE')).not.toBe(key({}, 'DELETE'));
    expect(key({ 'accept-profile': 'x' }, 'DELETE')).toBe(key({}, 'DELETE'));
  });

  it('does not run parts into each other', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), fc.string(), (a, b, c, d) => {
        fc.pre(a !== c || b !== d);
        // A header value and a query string never hold a line feed.
        fc.pre(![a, b, c, d].some((x) => x.includes('\n')));
        expect(statementKey('GET', '/t', a, { prefer: b })).not.toBe(statementKey('GET', '/t', c, { prefer: d }));
      }),
    );
  });

  it('is null past its length bound, so the cache stays small', () => {
    expect(statementKey('GET', '/t', `id=eq.${'x'.repeat(5000)}`, {})).toBeNull();
  });
});

describe('the cache', () => {
  it('is per schema cache (a reload starts empty) and bounded', () => {
    const one = {} as SchemaCache;
    const two = {} as SchemaCache;
    // A body-less request's entry (no payload): kept as it is.
    const entry = { prepared: {}, built: {} } as CachedStatement;
    rememberStatement(one, 'k', entry);
    expect(cachedStatement(one, 'k')).toBe(entry);
    expect(cachedStatement(two, 'k')).toBeUndefined();
    for (let i = 0; i < 600; i++) rememberStatement(one, `k${i}`, entry);
    expect(cachedStatement(one, 'k')).toBeUndefined();
    expect(cachedStatement(one, 'k599')).toBe(entry);
  });
});

describe('cleanToken', () => {
  const slow = (raw: string) => {
    let t = raw;
    try {
      t = decodeURIComponent(raw);
    } catch {
      // as given
    }
    return t.replace(/\s+/g, '');
  };
  it('gives what the full cleaning gives, for any text', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => {
      expect(cleanToken(s)).toBe(slow(s));
    }));
    fc.assert(fc.property(fc.array(fc.constantFrom('a', '.', '%2E', '%', ' ', '\t', '\u00a0', '\u2028', '%20', 'Z')).map((p) => p.join('')), (s) => {
      expect(cleanToken(s)).toBe(slow(s));
    }));
  });
});
