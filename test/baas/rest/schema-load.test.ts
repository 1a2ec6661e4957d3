import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSchemaCache } from '../../../src/baas/rest/schema/load.js';
import { keyOf, type SchemaCache } from '../../../src/baas/rest/schema/types.js';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.js';
import { FIXTURE } from './support.js';

// The schema cache read from the real catalogs of the test Postgres.

let db: TestDatabase;
let client: pg.Client;
let cache: SchemaCache;

beforeAll(async () => {
  db = await createTestDatabase('rest_schema');
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query(FIXTURE);
  await client.query(`
    create schema api;
    create type api.mood as enum ('ok', 'meh');
    create table api.items (id serial primary key, mood api.mood default 'ok', owner uuid references public.profiles(id));
    create schema hidden;
    create table hidden.secrets (id int primary key);
  `);
  cache = await loadSchemaCache(client, ['public', 'api']);
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

const table = (schema: string, name: string) => cache.tables.get(keyOf({ schema, name }));
const rels = (schema: string, name: string) =>
  (cache.relationships.get(keyOf({ schema, name })) ?? []).map((r) => ({
    to: r.foreignTable.name,
    cardinality: r.cardinality,
    constraint: r.constraint || r.junction?.table.name,
    columns: r.junction ? r.junction.targetColumns : r.columns,
  }));

describe('loadSchemaCache', () => {
  it('holds the exposed schemas only, tables and views with columns in order and primary keys', () => {
    expect(cache.schemas).toEqual(['public', 'api']);
    expect(table('hidden', 'secrets')).toBeUndefined();
    expect(table('public', 'todo_titles')).toMatchObject({ kind: 'view', primaryKey: [] });
    const todos = table('public', 'todos')!;
    expect(todos.primaryKey).toEqual(['id']);
    expect(todos.columns.map((c) => [c.name, c.type, c.notNull])).toEqual([
      ['id', 'bigint', true], ['title', 'text', true], ['done', 'boolean', false], ['tags', 'text[]', false],
      ['owner', 'uuid', false], ['editor', 'uuid', false], ['created_at', 'timestamp with time zone', false],
      ['meta', 'json', false], ['search', 'tsvector', false],
    ]);
  });

  it('defaults are printed schema-qualified (identity as nextval), generated columns have none', () => {
    const todos = table('public', 'todos')!;
    expect(todos.columnsByName.get('id')!.defaultExpr).toBe(`nextval('public.todos_id_seq'::regclass)`);
    expect(todos.columnsByName.get('done')!.defaultExpr).toBe('false');
    expect(todos.columnsByName.get('search')).toMatchObject({ generated: true, defaultExpr: null });
    expect(table('api', 'items')!.columnsByName.get('mood')).toMatchObject({ type: 'api.mood', defaultExpr: `'ok'::api.mood` });
  });

  it('derives relationships of every cardinality from the foreign keys', () => {
    expect(rels('public', 'todos')).toEqual(
      expect.arrayContaining([
        { to: 'profiles', cardinality: 'm2o', constraint: 'todos_owner_fkey', columns: [['owner', 'id']] },
        { to: 'profiles', cardinality: 'm2o', constraint: 'todos_editor_fkey', columns: [['editor', 'id']] },
        { to: 'todo_tags', cardinality: 'o2m', constraint: 'todo_tags_todo_id_fkey', columns: [['id', 'todo_id']] },
        { to: 'tags', cardinality: 'm2m', constraint: 'todo_tags', columns: [['tag_id', 'id']] },
      ]),
    );
    expect(rels('public', 'profiles')).toEqual(
      expect.arrayContaining([
        { to: 'passports', cardinality: 'o2o', constraint: 'passports_profile_id_fkey', columns: [['id', 'profile_id']] },
        { to: 'todos', cardinality: 'o2m', constraint: 'todos_owner_fkey', columns: [['id', 'owner']] },
      ]),
    );
    expect(rels('public', 'passports')).toContainEqual({ to: 'profiles', cardinality: 'o2o', constraint: 'passports_profile_id_fkey', columns: [['profile_id', 'id']] });
    // A relationship to a table of another exposed schema is kept (embedding only follows same-schema ones).
    expect(rels('api', 'items')).toContainEqual({ to: 'profiles', cardinality: 'm2o', constraint: 'items_owner_fkey', columns: [['owner', 'id']] });
  });

  it('reads functions: parameters (required, defaulted, variadic, unnamed) and the kind of result', () => {
    const fn = (name: string) => cache.routines.get(keyOf({ schema: 'public', name }))!;
    expect(fn('add_default')[0]).toMatchObject({
      params: [
        { name: 'a', type: 'integer', required: true, variadic: false },
        { name: 'b', type: 'integer', required: false, variadic: false },
      ],
      returns: { kind: 'scalar', setOf: false, type: 'integer' },
      volatility: 'immutable',
    });
    expect(fn('total')[0].params).toEqual([{ name: 'nums', type: 'integer[]', typeName: '_int4', required: true, variadic: true }]);
    expect(fn('echo')[0].params).toEqual([{ name: '', type: 'json', typeName: 'json', required: true, variadic: false }]);
    expect(fn('todos_of')[0].returns).toMatchObject({ kind: 'composite', setOf: true, table: { schema: 'public', name: 'todos' } });
    expect(fn('pairs')[0].returns).toEqual({
      kind: 'composite', setOf: true, type: 'record',
      columns: [{ name: 'k', type: 'text', typeName: 'text' }, { name: 'v', type: 'integer', typeName: 'int4' }],
    });
    expect(fn('nothing')[0].returns.kind).toBe('void');
    expect(fn('overloaded')).toHaveLength(2);
  });

  it('knows the type names a cast may use', () => {
    expect(cache.types.get('pg_catalog')?.get('int4')).toBe('integer');
    expect(cache.types.get('api')?.has('mood')).toBe(true);
    expect(cache.types.get('hidden')).toBeUndefined();
  });
});
