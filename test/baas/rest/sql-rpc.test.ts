import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, request, rolledBack, type RequestOptions , openFixture, type Fixture } from './support.js';

// rpc calls (POST with a JSON body, GET with query arguments) built by the SQL builder and run on the real Postgres.

let fx: Fixture;

beforeAll(async () => {
  fx = await openFixture('rest_rpc');
});

afterAll(async () => {
  await fx?.close();
});

const call = (path: string, options: RequestOptions = {}) => request(fx.client, fx.cache, `rpc/${path}`, options);
const post = async (path: string, body: unknown, options: RequestOptions = {}) => (await call(path, { method: 'POST', body, ...options })).body;
const get = async (path: string, options: RequestOptions = {}) => (await call(path, options)).body;

describe('scalar results', () => {
  it('named arguments by POST and GET; defaults for the ones not given', async () => {
    expect(await post('add', { a: 1, b: 2 })).toBe(3);
    expect(await get('add?a=1&b=2')).toBe(3);
    expect(await get('add_default?a=1')).toBe(11);
    expect(await post('add_default', { a: 1, b: 2 })).toBe(3);
    expect((await call('add?a=1&b=2')).statement.readOnly).toBe(true);
  });

  it('variadic arguments: a JSON array, or the parameter repeated in the query', async () => {
    expect(await post('total', { nums: [1, 2, 3] })).toBe(6);
    expect(await get('total?nums=4&nums=5')).toBe(9);
  });

  it('one unnamed json parameter takes the whole body', async () => {
    expect(await post('echo', { x: [1, { y: null }] })).toEqual({ x: [1, { y: null }] });
  });

  it('void answers no body; a volatile function runs read-write', () =>
    rolledBack(fx.client, async () => {
      const v = await call('nothing', { method: 'POST', body: {} });
      expect([v.statement.returnsVoid, v.raw]).toEqual([true, '']);
      const w = await call('bump', { method: 'POST', body: { t: 'hi' } });
      expect([w.body, w.statement.readOnly]).toEqual([100, false]);
    }));
});

describe('set and composite results are filtered like tables', () => {
  it('setof a table type: select, filters, order, limit, count, embedding', async () => {
    const r = await call('todos_of?o=00000000-0000-0000-0000-000000000001&select=id,title,profiles!owner(name)&done=is.false&order=id.desc', {
      prefer: 'count=exact',
    });
    expect(r.body).toEqual([{ id: 1, title: 'a', profiles: { name: 'Ann' } }]);
    expect(r.total).toBe('1');
    expect(await post('todos_of?select=id&limit=1&offset=1', { o: '00000000-0000-0000-0000-000000000001' })).toEqual([{ id: 2 }]);
  });

  it('RETURNS TABLE: named columns; one composite row: an object', async () => {
    expect(await get('pairs?v=gte.2&order=v.desc')).toEqual([{ k: 'three', v: 3 }, { k: 'two', v: 2 }]);
    expect(await get('pairs?select=k&limit=1')).toEqual([{ k: 'one' }]);
    expect(await get('one_profile?pid=00000000-0000-0000-0000-000000000002&select=name')).toEqual({ name: 'Bob' });
  });

  it('singular Accept on a set: one object', async () => {
    const r = await call('pairs?k=eq.two', { accept: 'application/vnd.pgrst.object+json' });
    expect([r.body, r.pageTotal]).toEqual([{ k: 'two', v: 2 }, '1']);
  });
});

describe('errors', () => {
  it('no such function or arguments: PGRST202 with the argument names', async () => {
    expect(await failure(async () => call('nope?x=1'))).toEqual({
      status: 404, code: 'PGRST202', message: 'Could not find the function public.nope(x) in the schema cache',
      details: 'Searched for the function public.nope with parameter x, but no matches were found in the schema cache.', hint: null,
    });
    expect(await failure(async () => call('add', { method: 'POST', body: { a: 1 } }))).toMatchObject({
      code: 'PGRST202', message: 'Could not find the function public.add(a) in the schema cache',
    });
    expect(await failure(async () => call('add?a=1&b=2&c=3'))).toMatchObject({
      details: 'Searched for the function public.add with parameters a, b, c, but no matches were found in the schema cache.',
    });
    expect(await failure(async () => call('nope'))).toMatchObject({ message: 'Could not find the function public.nope without parameters in the schema cache' });
  });

  it('overloads matching the same names: 300 PGRST203', async () => {
    expect(await failure(async () => call('overloaded?a=1'))).toEqual({
      status: 300, code: 'PGRST203',
      message: 'Could not choose the best candidate function between: public.overloaded(a => integer), public.overloaded(a => text)',
      details: null, hint: 'Try renaming the parameters or the function itself in the database so function overloading can be resolved',
    });
  });

  it('a bad argument value is the Postgres error; an unknown result column is 42703', async () => {
    expect(await failure(call('add?a=x&b=1'))).toMatchObject({ code: '22P02' });
    expect(await failure(async () => call('pairs?nope=eq.1'))).toMatchObject({ code: '42703', message: 'column pairs.nope does not exist' });
  });
});
