import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, request, type RequestOptions , openFixture, type Fixture } from './support.js';

// Reads built by the SQL builder and run on the real Postgres: the JSON body (built by Postgres) is compared whole.

let fx: Fixture;

beforeAll(async () => {
  fx = await openFixture('rest_read');
});

afterAll(async () => {
  await fx?.close();
});

const get = (path: string, options?: RequestOptions) => request(fx.client, fx.cache, path, options);
const body = async (path: string, options?: RequestOptions) => (await get(path, options)).body;

const ANN = '00000000-0000-0000-0000-000000000001';
const BOB = '00000000-0000-0000-0000-000000000002';

describe('select', () => {
  it('* keeps column order; a column list; aliases; casts', async () => {
    expect(await body('notes?order=id')).toEqual([
      { id: 1, body: 'one', 'Odd "Name"': 'x', score: 1.5 },
      { id: 2, body: 'two', 'Odd "Name"': null, score: null },
      { id: 3, body: 'three', 'Odd "Name"': 'z', score: 10 },
    ]);
    expect(Object.keys(((await body('todos?limit=1')) as object[])[0])).toEqual(['id', 'title', 'done', 'tags', 'owner', 'editor', 'created_at', 'meta', 'search']);
    expect(await body('notes?select=n:id,text:score::text,odd:"Odd \\"Name\\""&id=eq.1')).toEqual([{ n: 1, text: '1.5', odd: 'x' }]);
    expect(await body('notes?select=id::TEXT,score::double%20precision,body::varchar&id=eq.3')).toEqual([{ id: '3', score: 10, body: 'three' }]);
  });

  it('JSON paths: -> keeps JSON, ->> gives text, indexes, keys named by the last key', async () => {
    expect(await body(`profiles?select=data->city,data->>city,first:data->langs->0,data->langs->>-1,data->age&id=eq.${ANN}`)).toEqual([
      { city: 'Oslo', first: 'no', langs: 'en', age: 31 },
    ]);
    // A non-JSON column goes through to_jsonb; the key of a path ending in an index is the last key before it.
    expect(await body('todos?select=tags->0,meta->>p&id=eq.1')).toEqual([{ tags: 'x', p: '1' }]);
  });

  it('a row wider than json_build_object takes (50 pairs) keeps every key in order', async () => {
    const items = Array.from({ length: 120 }, (_, i) => `c${i}:id`).join(',');
    const [row] = (await body(`notes?select=${items}&id=eq.2`)) as Array<Record<string, number>>;
    expect(Object.keys(row)).toEqual(Array.from({ length: 120 }, (_, i) => `c${i}`));
    expect(new Set(Object.values(row))).toEqual(new Set([2]));
  });
});

describe('filters', () => {
  const ids = async (path: string) => ((await body(path)) as Array<{ id: number }>).map((r) => r.id);

  it('comparison, pattern, is, in, not', async () => {
    expect(await ids('notes?select=id&id=gt.1&order=id')).toEqual([2, 3]);
    expect(await ids('notes?select=id&id=gte.2&id=lt.3')).toEqual([2]);
    expect(await ids('notes?select=id&id=lte.1')).toEqual([1]);
    expect(await ids('notes?select=id&id=neq.2&order=id')).toEqual([1, 3]);
    expect(await ids('notes?select=id&body=like.t*&order=id')).toEqual([2, 3]);
    expect(await ids('notes?select=id&body=like.T%25')).toEqual([]);
    expect(await ids('notes?select=id&body=ilike.T*&order=id')).toEqual([2, 3]);
    expect(await ids('notes?select=id&body=match.^t.o$')).toEqual([2]);
    expect(await ids('notes?select=id&body=imatch.^O')).toEqual([1]);
    expect(await ids('notes?select=id&score=is.null')).toEqual([2]);
    expect(await ids('notes?select=id&score=not.is.null&order=id')).toEqual([1, 3]);
    expect(await ids('todos?select=id&done=is.true')).toEqual([2]);
    expect(await ids('todos?select=id&done=is.unknown')).toEqual([4]);
    expect(await ids('todos?select=id&done=isdistinct.true&order=id')).toEqual([1, 3, 4]);
    expect(await ids('notes?select=id&body=in.(one,three)&order=id')).toEqual([1, 3]);
    expect(await ids('notes?select=id&id=not.in.(1,3)')).toEqual([2]);
    expect(await ids('notes?select=id&body=in.("x,y",two)')).toEqual([2]);
    expect(await ids('notes?select=id&body=in.()')).toEqual([]);
    expect(await ids('notes?select=id&body=eq.one&score=eq.1.5')).toEqual([1]);
  });

  it('arrays and JSON: cs, cd, ov, JSON path filters', async () => {
    expect(await ids('todos?select=id&tags=cs.{y}&order=id')).toEqual([1, 3]);
    expect(await ids('todos?select=id&tags=cd.{x,y}&order=id')).toEqual([1, 3, 4]);
    expect(await ids('todos?select=id&tags=ov.{x,z}')).toEqual([1]);
    expect(await ids(`profiles?select=id&data=cs.${encodeURIComponent('{"city":"Rome"}')}`)).toEqual([BOB] as never);
    expect(await ids('profiles?select=id&data->>city=eq.Oslo')).toEqual([ANN] as never);
    expect(await ids('profiles?select=id&data->age=gt.40')).toEqual([BOB] as never);
    expect(await ids('todos?select=id&meta->>p=eq.3')).toEqual([3]);
  });

  it('full text search: fts, plfts, phfts, wfts, with a config, on tsvector and text columns', async () => {
    expect(await ids('todos?select=id&search=fts.cat')).toEqual([4]);
    expect(await ids('todos?select=id&search=plfts(english).fat%20cats')).toEqual([4]);
    expect(await ids('todos?select=id&search=phfts.fat%20cat')).toEqual([4]);
    expect(await ids('todos?select=id&search=wfts(english).%22fat%20cat%22%20-dog')).toEqual([4]);
    expect(await ids('todos?select=id&search=not.fts.cat&order=id')).toEqual([1, 2, 3]);
    // The english stemmer makes `cats` match `cat` too; the simple config does not.
    expect(await ids('profiles?select=id&bio=fts(english).cats&order=id')).toEqual([ANN, '00000000-0000-0000-0000-000000000003'] as never);
    expect(await ids('profiles?select=id&bio=fts(simple).cats')).toEqual([ANN] as never);
    expect(await ids('profiles?select=id&bio=wfts.sat')).toEqual(['00000000-0000-0000-0000-000000000003'] as never);
  });

  it('or / and, nested and negated', async () => {
    expect(await ids('todos?select=id&or=(title.eq.a,done.is.true)&order=id')).toEqual([1, 2]);
    expect(await ids('todos?select=id&or=(title.eq.c,and(done.is.false,tags.cs.{x}))&order=id')).toEqual([1, 3]);
    expect(await ids('todos?select=id&not.or=(title.eq.a,title.eq.b)&order=id')).toEqual([3, 4]);
    expect(await ids('todos?select=id&and=(id.gt.1,or(done.is.null,title.not.eq.b))&order=id')).toEqual([3, 4]);
    expect(await ids('notes?select=id&or=(body.eq."x,y",body.in.(one,"a)b"))')).toEqual([1]);
  });
});

describe('order, limit, offset, Range, count', () => {
  it('several columns, directions and nulls placement; JSON path order', async () => {
    expect((await body('todos?select=id,done&order=done.desc.nullslast,id.desc')) as unknown[]).toEqual([
      { id: 2, done: true }, { id: 3, done: false }, { id: 1, done: false }, { id: 4, done: null },
    ]);
    expect(await body('todos?select=id&order=done.nullsfirst,id')).toEqual([{ id: 4 }, { id: 1 }, { id: 3 }, { id: 2 }]);
    expect(await body('profiles?select=name&order=data->age.desc.nullslast')).toEqual([{ name: 'Bob' }, { name: 'Ann' }, { name: 'Cid' }]);
  });

  it('limit/offset, the Range header, count=exact (total over the filter, not the page)', async () => {
    const page = await get('todos?select=id&order=id&limit=2&offset=1', { prefer: 'count=exact' });
    expect(page.body).toEqual([{ id: 2 }, { id: 3 }]);
    expect([page.total, page.pageTotal]).toEqual(['4', '2']);
    const ranged = await get('todos?select=id&order=id&done=is.false', { range: '1-5', prefer: 'count=exact' });
    expect([ranged.body, ranged.total]).toEqual([[{ id: 3 }], '2']);
    const all = await get('todos?select=id', { prefer: 'count=planned' });
    expect([all.total, all.pageTotal]).toEqual(['4', '4']);
    expect((await get('todos?select=id')).total).toBeNull();
    expect(await body('todos?select=id&limit=0')).toEqual([]);
  });

  it('REST_MAX_ROWS caps every level', async () => {
    const r = await get('profiles?select=name,todos!owner(id)&order=name', { maxRows: 1n, prefer: 'count=exact' });
    expect(r.body).toEqual([{ name: 'Ann', todos: [{ id: 1 }] }]);
    expect(r.total).toBe('3');
  });
});

describe('output formats', () => {
  it('singular object, stripped nulls, CSV, HEAD', async () => {
    const one = await get('notes?id=eq.2', { accept: 'application/vnd.pgrst.object+json' });
    expect([one.body, one.pageTotal]).toEqual([{ id: 2, body: 'two', 'Odd "Name"': null, score: null }, '1']);
    const none = await get('notes?id=eq.9', { accept: 'application/vnd.pgrst.object+json' });
    expect([none.raw, none.pageTotal]).toEqual(['null', '0']);
    expect(await body('notes?select=id,score&id=eq.2', { accept: 'application/vnd.pgrst.array+json;nulls=stripped' })).toEqual([{ id: 2 }]);
    const csv = await get('notes?select=id,body,odd:"Odd \\"Name\\"",score&order=id', { accept: 'text/csv' });
    expect(csv.raw).toBe('id,body,odd,score\n1,one,x,1.5\n2,two,,\n3,three,z,10');
    expect((await get('notes?select=id&id=eq.9', { accept: 'text/csv' })).raw).toBe('\n');
    const head = await get('notes', { method: 'HEAD', prefer: 'count=exact' });
    expect([head.raw, head.total]).toEqual(['', '3']);
  });
});

describe('errors the schema cache answers', () => {
  it('unknown table, column, cast, embed path, relationship', async () => {
    expect(await failure(get('nope'))).toEqual({ status: 404, code: 'PGRST205', message: "Could not find the table 'public.nope' in the schema cache", details: null, hint: null });
    expect(await failure(get('todos?select=id,nope'))).toEqual({ status: 400, code: '42703', message: 'column todos.nope does not exist', details: null, hint: null });
    expect(await failure(get('todos?nope=eq.1'))).toMatchObject({ code: '42703', message: 'column todos.nope does not exist' });
    expect(await failure(get('todos?order=nope'))).toMatchObject({ code: '42703' });
    expect(await failure(get('todos?select=id,profiles!owner(nope)'))).toMatchObject({ code: '42703', message: 'column profiles_1.nope does not exist' });
    expect(await failure(get('todos?select=id::nosuchtype'))).toEqual({ status: 400, code: '42704', message: 'type "nosuchtype" does not exist', details: null, hint: null });
    expect(await failure(get('todos?select=id&profiles.name=eq.x'))).toEqual({
      status: 400, code: 'PGRST108', message: "'profiles' is not an embedded resource in this request", details: null,
      hint: "Verify that 'profiles' is included in the 'select' query parameter.",
    });
    expect(await failure(get('todos?select=id,nope(*)'))).toEqual({
      status: 400, code: 'PGRST200', message: "Could not find a relationship between 'todos' and 'nope' in the schema cache",
      details: "Searched for a foreign key relationship between 'todos' and 'nope' in the schema 'public', but no matches were found.", hint: null,
    });
    expect(await failure(get('todos?select=id,profiles!nohint(*)'))).toMatchObject({
      code: 'PGRST200', details: "Searched for a foreign key relationship between 'todos' and 'profiles' using the hint 'nohint' in the schema 'public', but no matches were found.",
    });
    expect(await failure(get('todos?select=id,profiles(*)'))).toEqual({
      status: 300, code: 'PGRST201', message: "Could not embed because more than one relationship was found for 'todos' and 'profiles'",
      details: [
        { cardinality: 'many-to-one', embedding: 'todos with profiles', relationship: 'todos_editor_fkey using todos(editor) and profiles(id)' },
        { cardinality: 'many-to-one', embedding: 'todos with profiles', relationship: 'todos_owner_fkey using todos(owner) and profiles(id)' },
      ],
      hint: "Try changing 'profiles' to one of the following: 'profiles!todos_editor_fkey', 'profiles!todos_owner_fkey'. Find the desired relationship in the 'details' key.",
    });
    expect(await failure(get('profiles?select=id,todos!owner(id)&order=todos(id)'))).toEqual({
      status: 400, code: 'PGRST118', message: "A related order on 'todos' is not possible",
      details: "'profiles' and 'todos' do not form a many-to-one or one-to-one relationship", hint: null,
    });
    expect(await failure(get('todos?select=count()'))).toMatchObject({ status: 400, code: 'PGRST123' });
  });
});
