import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSchemaCache } from '../../../src/baas/rest/schema/load.js';
import { request, rolledBack, type RequestOptions , openFixture, type Fixture } from './support.js';

// Embedding of related tables through foreign keys, run on the real Postgres.

let fx: Fixture;

beforeAll(async () => {
  fx = await openFixture('rest_embed');
});

afterAll(async () => {
  await fx?.close();
});

const body = async (path: string, options?: RequestOptions) => (await request(fx.client, fx.cache, path, options)).body;

describe('to-one and to-many', () => {
  it('many-to-one is an object (or null), one-to-many an array (empty when none)', async () => {
    expect(await body('todos?select=id,profile:profiles!owner(name)&order=id')).toEqual([
      { id: 1, profile: { name: 'Ann' } },
      { id: 2, profile: { name: 'Ann' } },
      { id: 3, profile: { name: 'Bob' } },
      { id: 4, profile: null },
    ]);
    expect(await body('profiles?select=name,todos!owner(id)&order=name')).toEqual([
      { name: 'Ann', todos: [{ id: 1 }, { id: 2 }] },
      { name: 'Bob', todos: [{ id: 3 }] },
      { name: 'Cid', todos: [] },
    ]);
  });

  it('hints: FK constraint name, FK column, referenced column; the FK name or column as the target', async () => {
    const editorOf1 = [{ id: 1, e: { name: 'Bob' } }];
    expect(await body('todos?select=id,e:profiles!todos_editor_fkey(name)&id=eq.1')).toEqual(editorOf1);
    expect(await body('todos?select=id,e:profiles!editor(name)&id=eq.1')).toEqual(editorOf1);
    expect(await body('todos?select=id,e:todos_editor_fkey(name)&id=eq.1')).toEqual(editorOf1);
    expect(await body('todos?select=id,e:editor(name)&id=eq.1')).toEqual(editorOf1);
  });

  it('one-to-one both ways is an object', async () => {
    expect(await body('profiles?select=name,passports(number)&order=name')).toEqual([
      { name: 'Ann', passports: { number: 'P-1' } },
      { name: 'Bob', passports: null },
      { name: 'Cid', passports: null },
    ]);
    expect(await body('passports?select=number,profiles(name)')).toEqual([{ number: 'P-1', profiles: { name: 'Ann' } }]);
  });

  it('many-to-many through a junction whose primary key holds both FKs', async () => {
    expect(await body('todos?select=id,tags(label)&order=id&tags.order=label.desc')).toEqual([
      { id: 1, tags: [{ label: 'work' }, { label: 'home' }] },
      { id: 2, tags: [] },
      { id: 3, tags: [{ label: 'work' }] },
      { id: 4, tags: [] },
    ]);
    expect(await body('tags?select=label,todos(title)&id=eq.2')).toEqual([{ label: 'work', todos: [{ title: 'a' }, { title: 'c' }] }]);
  });

  it('self-references: the parent by FK column, the children by table name and hint', async () => {
    expect(await body('employees?select=name,manager_id(name)&order=id')).toEqual([
      { name: 'Boss', manager_id: null },
      { name: 'Mid', manager_id: { name: 'Boss' } },
      { name: 'Low', manager_id: { name: 'Mid' } },
    ]);
    expect(await body('employees?select=name,reports:employees!manager_id(name)&id=eq.1')).toEqual([{ name: 'Boss', reports: [{ name: 'Mid' }] }]);
  });

  it('nested embedding, * inside an embed, aliases at every level', async () => {
    expect(await body('profiles?select=name,mine:todos!owner(id,tags(*),boss:profiles!editor(name))&id=eq.00000000-0000-0000-0000-000000000001')).toEqual([
      {
        name: 'Ann',
        mine: [
          { id: 1, tags: [{ id: 1, label: 'home' }, { id: 2, label: 'work' }], boss: { name: 'Bob' } },
          { id: 2, tags: [], boss: null },
        ],
      },
    ]);
  });
});

describe('embedded filters, order, limit, offset, or', () => {
  it('trim the embedded array only (without !inner)', async () => {
    expect(await body('profiles?select=name,todos!owner(id)&todos.done=is.true&order=name')).toEqual([
      { name: 'Ann', todos: [{ id: 2 }] },
      { name: 'Bob', todos: [] },
      { name: 'Cid', todos: [] },
    ]);
    expect(await body('profiles?select=name,todos!owner(id)&todos.order=id.desc&todos.limit=1&todos.offset=0&id=eq.00000000-0000-0000-0000-000000000001')).toEqual([
      { name: 'Ann', todos: [{ id: 2 }] },
    ]);
    expect(await body('profiles?select=name,todos!owner(id)&todos.or=(id.eq.1,id.eq.3)&order=name&limit=2')).toEqual([
      { name: 'Ann', todos: [{ id: 1 }] },
      { name: 'Bob', todos: [{ id: 3 }] },
    ]);
  });

  it('!inner filters the parent rows; an empty embed filters without output', async () => {
    expect(await body('profiles?select=name,todos!owner!inner(id)&todos.done=is.true')).toEqual([{ name: 'Ann', todos: [{ id: 2 }] }]);
    expect(await body('todos?select=id,profiles!owner!inner()&profiles.name=eq.Bob')).toEqual([{ id: 3 }]);
    const counted = await request(fx.client, fx.cache, 'profiles?select=name,todos!owner!inner(id)&order=name&limit=1', { prefer: 'count=exact' });
    expect([counted.body, counted.total]).toEqual([[{ name: 'Ann', todos: [{ id: 1 }, { id: 2 }] }], '2']);
  });

  it('rel=is.null / not.is.null keep parents without / with related rows (counted the same way)', async () => {
    expect(await body('profiles?select=name,todos!owner(id)&todos=is.null')).toEqual([{ name: 'Cid', todos: [] }]);
    expect(await body('todos?select=id,p:profiles!owner(name)&p=not.is.null&order=id')).toEqual([
      { id: 1, p: { name: 'Ann' } },
      { id: 2, p: { name: 'Ann' } },
      { id: 3, p: { name: 'Bob' } },
    ]);
    const counted = await request(fx.client, fx.cache, 'todos?select=id,p:profiles!owner(name)&p=is.null&limit=1', { prefer: 'count=exact' });
    expect([counted.body, counted.total]).toEqual([[{ id: 4, p: null }], '1']);
  });

  it('order by a to-one embedded column', async () => {
    expect(await body('todos?select=id,p:profiles!owner(name)&order=p(name).desc.nullslast,id&limit=3')).toEqual([
      { id: 3, p: { name: 'Bob' } },
      { id: 1, p: { name: 'Ann' } },
      { id: 2, p: { name: 'Ann' } },
    ]);
  });
});

describe('spread embeds (...rel(cols))', () => {
  it("put a to-one relation's columns into the parent row, null when there is none", async () => {
    expect(await body('todos?select=id,...profiles!owner(owner_name:name,data->>city)&order=id')).toEqual([
      { id: 1, owner_name: 'Ann', city: 'Oslo' },
      { id: 2, owner_name: 'Ann', city: 'Oslo' },
      { id: 3, owner_name: 'Bob', city: 'Rome' },
      { id: 4, owner_name: null, city: null },
    ]);
  });

  it('nest: a spread inside a spread, an embed inside a spread; !inner filters the parent; CSV has the spread columns', async () => {
    expect(await body('passports?select=number,...profiles(name,todos!owner(id))')).toEqual([{ number: 'P-1', name: 'Ann', todos: [{ id: 1 }, { id: 2 }] }]);
    expect(await body('todo_tags?select=tag_id,...todos(title,...profiles!owner(name))&order=todo_id,tag_id')).toEqual([
      { tag_id: 1, title: 'a', name: 'Ann' },
      { tag_id: 2, title: 'a', name: 'Ann' },
      { tag_id: 2, title: 'c', name: 'Bob' },
    ]);
    expect(await body('todos?select=id,...profiles!owner!inner(name)&profiles.name=eq.Bob')).toEqual([{ id: 3, name: 'Bob' }]);
    const csv = await request(fx.client, fx.cache, 'todos?select=id,...profiles!owner(name)&id=lte.2&order=id', { accept: 'text/csv' });
    expect(csv.raw).toBe('id,name\n1,Ann\n2,Ann');
  });

  it('on a to-many relation is PGRST119, as PostgREST 12', async () => {
    await expect(request(fx.client, fx.cache, 'profiles?select=name,...todos!owner(id)')).rejects.toMatchObject({
      status: 400,
      code: 'PGRST119',
      message: "A spread operation on 'todos' is not possible",
      details: "'profiles' and 'todos' do not form a many-to-one or one-to-one relationship",
    });
  });
});

describe('relationships through views', () => {
  it("a view showing an FK's columns embeds as its table does, on either side and renamed", async () => {
    await fx.client.query(`
      create view todo_owners as select id as todo_id, title, owner as owner_id from todos;
      create view people as select id, name as full_name from profiles`);
    try {
      const cache = await loadSchemaCache(fx.client, ['public']);
      const get = async (path: string) => (await request(fx.client, cache, path)).body;
      expect(await get('todo_owners?select=todo_id,profiles(name)&order=todo_id')).toEqual([
        { todo_id: 1, profiles: { name: 'Ann' } },
        { todo_id: 2, profiles: { name: 'Ann' } },
        { todo_id: 3, profiles: { name: 'Bob' } },
        { todo_id: 4, profiles: null },
      ]);
      expect(await get('people?select=full_name,todos!owner(id)&order=full_name')).toEqual([
        { full_name: 'Ann', todos: [{ id: 1 }, { id: 2 }] },
        { full_name: 'Bob', todos: [{ id: 3 }] },
        { full_name: 'Cid', todos: [] },
      ]);
      expect(await get('todo_owners?select=todo_id,people(full_name)&todo_id=eq.3')).toEqual([{ todo_id: 3, people: { full_name: 'Bob' } }]);
    } finally {
      await fx.client.query('drop view todo_owners, people');
    }
  });
});

describe('computed relationships', () => {
  it("a function of a table's row returning rows of a table embeds under its name (to-one, ROWS 1, to-many)", async () => {
    await fx.client.query(`
      create function owner_profile(todos) returns profiles language sql stable as 'select * from profiles where id = $1.owner';
      create function owner_rows(todos) returns setof profiles rows 1 language sql stable as 'select * from profiles where id = $1.owner';
      create function todos_owned(profiles) returns setof todos language sql stable as 'select * from todos where owner = $1.id'`);
    try {
      const cache = await loadSchemaCache(fx.client, ['public']);
      const get = async (path: string, options?: RequestOptions) => (await request(fx.client, cache, path, options)).body;
      expect(await get('todos?select=id,owner_profile(name),o:owner_rows(name)&order=id')).toEqual([
        { id: 1, owner_profile: { name: 'Ann' }, o: { name: 'Ann' } },
        { id: 2, owner_profile: { name: 'Ann' }, o: { name: 'Ann' } },
        { id: 3, owner_profile: { name: 'Bob' }, o: { name: 'Bob' } },
        { id: 4, owner_profile: null, o: null },
      ]);
      expect(await get('profiles?select=name,todos_owned(id)&todos_owned.id=gt.1&order=name')).toEqual([
        { name: 'Ann', todos_owned: [{ id: 2 }] },
        { name: 'Bob', todos_owned: [{ id: 3 }] },
        { name: 'Cid', todos_owned: [] },
      ]);
      // From the rows a write returns, too.
      await rolledBack(fx.client, async () => {
        const inserted = await get('todos?select=title,owner_profile(name)', {
          method: 'POST',
          prefer: 'return=representation',
          body: { title: 'z', owner: '00000000-0000-0000-0000-000000000002' },
        });
        expect(inserted).toEqual([{ title: 'z', owner_profile: { name: 'Bob' } }]);
      });
    } finally {
      await fx.client.query('drop function owner_profile(todos), owner_rows(todos), todos_owned(profiles)');
    }
  });
});
