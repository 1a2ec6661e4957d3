import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, request, rolledBack, type RequestOptions , openFixture, type Fixture } from './support.js';

// Inserts, upserts, updates and deletes built by the SQL builder and run on the real Postgres, each in a
// transaction rolled back afterwards (the statement itself is one statement, as a request runs it).

let fx: Fixture;

beforeAll(async () => {
  fx = await openFixture('rest_write');
});

afterAll(async () => {
  await fx?.close();
});

const send = (path: string, options: RequestOptions) => request(fx.client, fx.cache, path, options);
const rows = async (sql: string) => (await fx.client.query(sql)).rows;
const ANN = '00000000-0000-0000-0000-000000000001';

describe('insert', () => {
  it('one object, return=minimal: no body, the count of rows, defaults for absent columns', () =>
    rolledBack(fx.client, async () => {
      const r = await send('todos', { method: 'POST', body: { title: 'new' } });
      expect([r.raw, r.pageTotal, r.statement.readOnly, r.statement.kind]).toEqual(['', '1', false, 'insert']);
      expect(await rows(`select title, done, created_at from todos where id > 4`)).toEqual([{ title: 'new', done: false, created_at: new Date('2024-01-01T00:00:00Z') }]);
    }));

  it('bulk with columns, return=representation shaped by select, types converted by Postgres', () =>
    rolledBack(fx.client, async () => {
      const r = await send('todos?columns="title","done","tags"&select=id,title,done,tags', {
        method: 'POST',
        prefer: 'return=representation',
        body: [{ title: 'b1', tags: ['p', 'q'] }, { title: 'b2', done: true, extra: 'ignored' }],
      });
      // Sequences are not rolled back: ids are whatever the identity gives.
      expect(r.body).toEqual([
        { id: expect.any(Number), title: 'b1', done: null, tags: ['p', 'q'] },
        { id: expect.any(Number), title: 'b2', done: true, tags: null },
      ]);
    }));

  it('missing=default takes the column DEFAULT (identity, constant) for keys a row lacks', () =>
    rolledBack(fx.client, async () => {
      const r = await send('todos?columns="id","title","done"&select=id,title,done', {
        method: 'POST',
        prefer: 'return=representation,missing=default',
        body: [{ title: 'd1' }, { id: 50, title: 'd2', done: true }],
      });
      expect(r.body).toEqual([
        { id: expect.any(Number), title: 'd1', done: false },
        { id: 50, title: 'd2', done: true },
      ]);
      expect((r.body as Array<{ id: number }>)[0].id).toBeGreaterThan(4);
    }));

  it('representation embeds related rows; singular answers one object', () =>
    rolledBack(fx.client, async () => {
      const r = await send('todos?select=title,owner:profiles!owner(name)', {
        method: 'POST',
        prefer: 'return=representation',
        accept: 'application/vnd.pgrst.object+json',
        body: { title: 'e', owner: ANN },
      });
      expect(r.body).toEqual({ title: 'e', owner: { name: 'Ann' } });
    }));

  it('an empty object inserts defaults (and fails on NOT NULL, as Postgres says); an empty array inserts nothing', () =>
    rolledBack(fx.client, async () => {
      expect(await failure(send('todos', { method: 'POST', body: {} }))).toMatchObject({ code: '23502' });
    }).then(() =>
      rolledBack(fx.client, async () => {
        const r = await send('notes?select=id', { method: 'POST', prefer: 'return=representation', body: [] });
        expect([r.body, r.pageTotal]).toEqual([[], '0']);
      }),
    ));

  it('return=headers-only gives the primary key as location pairs', () =>
    rolledBack(fx.client, async () => {
      const r = await send('notes', { method: 'POST', prefer: 'return=headers-only', body: { id: 7, body: 'x' } });
      expect([r.raw, r.location]).toEqual(['', ['id=eq.7']]);
    }));

  it('a key that is not a column is PGRST204', async () => {
    expect(await failure(async () => send('todos', { method: 'POST', body: { nope: 1 } }))).toEqual({
      status: 400, code: 'PGRST204', message: "Could not find the 'nope' column of 'todos' in the schema cache", details: null, hint: null,
    });
  });
});

describe('upsert', () => {
  it('merge-duplicates updates the sent columns on the primary key; counts inserted rows', () =>
    rolledBack(fx.client, async () => {
      const r = await send('todos?select=id,title,done', {
        method: 'POST',
        prefer: 'resolution=merge-duplicates,return=representation',
        body: [{ id: 1, title: 'z' }, { id: 9, title: 'new' }],
      });
      // `done` is not among the sent columns: the new row takes its DEFAULT, the updated row keeps its value.
      expect(r.body).toEqual([{ id: 1, title: 'z', done: false }, { id: 9, title: 'new', done: false }]);
      expect(r.inserted).toBe(1);
      expect(await rows('select count(*)::int as n from todos')).toEqual([{ n: 5 }]);
    }).then(() =>
      // The counter is transaction-local, as upstream: one request, one transaction.
      rolledBack(fx.client, async () => {
        const updateOnly = await send('todos', { method: 'POST', prefer: 'resolution=merge-duplicates', body: { id: 2, title: 'y' } });
        expect(updateOnly.inserted).toBe(0);
      }),
    ));

  it('ignore-duplicates keeps existing rows; on_conflict picks the unique key', () =>
    rolledBack(fx.client, async () => {
      const r = await send('todos', { method: 'POST', prefer: 'resolution=ignore-duplicates,count=exact', body: [{ id: 1, title: 'q' }, { id: 10, title: 'r' }] });
      expect(r.pageTotal).toBe('1');
      expect(await rows('select title from todos where id = 1')).toEqual([{ title: 'a' }]);
      const byLabel = await send('tags?on_conflict=label&select=id,label', {
        method: 'POST',
        prefer: 'resolution=merge-duplicates,return=representation',
        body: { id: 4, label: 'idle' },
      });
      expect(byLabel.body).toEqual([{ id: 4, label: 'idle' }]);
      expect(await rows('select id from tags where label = $$idle$$')).toEqual([{ id: 4 }]);
    }));

  it('an unknown on_conflict column is 42703', async () => {
    expect(await failure(async () => send('tags?on_conflict=nope', { method: 'POST', prefer: 'resolution=merge-duplicates', body: { id: 1 } }))).toMatchObject({
      status: 400, code: '42703', message: 'column "nope" does not exist',
    });
  });
});

describe('update and delete', () => {
  it('PATCH with filters and representation; an empty object changes nothing', () =>
    rolledBack(fx.client, async () => {
      const r = await send('todos?id=eq.1&select=id,done', { method: 'PATCH', prefer: 'return=representation', body: { done: true } });
      expect(r.body).toEqual([{ id: 1, done: true }]);
      const or = await send('todos?or=(id.eq.3,id.eq.4)', { method: 'PATCH', prefer: 'count=exact', body: { title: 'both' } });
      expect([or.raw, or.pageTotal]).toEqual(['', '2']);
      const none = await send('todos?id=eq.2&select=id', { method: 'PATCH', prefer: 'return=representation', body: {} });
      expect([none.body, none.pageTotal]).toEqual([[], '0']);
    }));

  it('DELETE returns the deleted rows with return=representation; filters on embeds do not reach the mutation', () =>
    rolledBack(fx.client, async () => {
      const r = await send('todos?id=in.(2,4)&select=id,profiles!owner(name)&order=id', { method: 'DELETE', prefer: 'return=representation' });
      expect(r.body).toEqual([{ id: 2, profiles: { name: 'Ann' } }, { id: 4, profiles: null }]);
      expect(await rows('select id::int from todos order by id')).toEqual([{ id: 1 }, { id: 3 }]);
    }));

  it('a failing value is the Postgres error (22P02), not SQL', async () => {
    expect(await failure(async () => send('todos?id=eq.abc', { method: 'DELETE' }))).toMatchObject({ code: '22P02' });
  });
});
