import { randomUUID } from 'node:crypto';
import type { RealtimePostgresChangesPayload, SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startTestServer, type TestServer } from '../support/server.js';
import { subscribedToPostgres, until } from '../support/channels.js';

let t: TestServer;
let db: pg.Client;
const alice = randomUUID();
const bob = randomUUID();

beforeAll(async () => {
  t = await startTestServer({ TENANT_MAX_EVENTS_PER_SECOND: '1000000', TENANT_MAX_BYTES_PER_SECOND: '1000000000' });
  db = new pg.Client({ connectionString: t.db.url });
  await db.connect();
  await db.query(`
    CREATE TABLE public.todos (id bigint PRIMARY KEY, title text, done boolean DEFAULT false, tags text[], meta jsonb, data bytea);
    CREATE TABLE public.items (id bigint PRIMARY KEY, owner uuid NOT NULL, name text, price numeric, at timestamptz);
    ALTER TABLE public.items REPLICA IDENTITY FULL;
    CREATE TABLE public.notes (id bigint PRIMARY KEY, owner uuid NOT NULL, body text);
    ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
    CREATE POLICY "own notes" ON public.notes FOR SELECT TO authenticated USING (owner = auth.uid());
    CREATE SEQUENCE public.gate_failures;
    CREATE TABLE public.gate_closed (closed boolean);
    CREATE FUNCTION public.gate_open() RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM public.gate_closed) THEN
        PERFORM nextval('public.gate_failures');
        RAISE EXCEPTION 'gate closed';
      END IF;
      RETURN true;
    END $$;
    CREATE TABLE public.gated (id bigint PRIMARY KEY, owner uuid NOT NULL);
    ALTER TABLE public.gated ENABLE ROW LEVEL SECURITY;
    CREATE POLICY "own gated rows" ON public.gated FOR SELECT TO authenticated USING (owner = auth.uid() AND public.gate_open());
    GRANT SELECT ON public.todos, public.items, public.notes, public.gated TO anon, authenticated;
    ALTER PUBLICATION supabase_realtime ADD TABLE public.todos, public.items, public.notes, public.gated;
  `);
});
afterAll(async () => {
  await db?.end();
  await t?.stop();
});

type Payload = RealtimePostgresChangesPayload<Record<string, unknown>>;

async function userClient(sub: string): Promise<SupabaseClient> {
  const c = t.client();
  await c.realtime.setAuth(await t.sign({ role: 'authenticated', sub, exp: Math.floor(Date.now() / 1000) + 3600 }));
  return c;
}

describe('postgres_changes with supabase-js', () => {
  it('delivers INSERT, UPDATE and DELETE with upstream payloads', async () => {
    const got: Payload[] = [];
    const channel = t.client().channel('todos-all').on('postgres_changes', { event: '*', schema: 'public', table: 'todos' }, (p) => got.push(p as Payload));
    expect(await subscribedToPostgres(channel)).toBe('ok: Subscribed to PostgreSQL');
    await db.query(`INSERT INTO public.todos (id, title, tags, meta, data) VALUES (1, 'a', '{x,y}', '{"k":1}', '\\x0102')`);
    await db.query(`UPDATE public.todos SET title = 'b', done = true WHERE id = 1`);
    await db.query(`DELETE FROM public.todos WHERE id = 1`);
    await until(() => got.length === 3);
    expect(got.map((p) => p.eventType)).toEqual(['INSERT', 'UPDATE', 'DELETE']);
    expect(got[0]).toMatchObject({ schema: 'public', table: 'todos', new: { id: 1, title: 'a', done: false, tags: ['x', 'y'], meta: { k: 1 }, data: '0102' }, errors: null });
    expect(got[0].commit_timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(got[1]).toMatchObject({ new: { id: 1, title: 'b', done: true }, old: { id: 1 } });
    expect(got[2]).toMatchObject({ new: {}, old: { id: 1 } });
  });

  it('reaches anon on a new table nobody granted anything on, as on Supabase (default privileges)', async () => {
    // Created after the tenant migrations by the tenant's database user, with no GRANT and no RLS: the API roles'
    // default privileges make it readable (before them, anon got `Error 401: Unauthorized` and no record).
    await db.query(`
      CREATE TABLE public.fresh (id bigint PRIMARY KEY, body text);
      ALTER PUBLICATION supabase_realtime ADD TABLE public.fresh;
    `);
    const got: Payload[] = [];
    const channel = t.client().channel('fresh').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'fresh' }, (p) => got.push(p as Payload));
    expect(await subscribedToPostgres(channel)).toBe('ok: Subscribed to PostgreSQL');
    await db.query(`INSERT INTO public.fresh VALUES (1, 'hello')`);
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ eventType: 'INSERT', table: 'fresh', new: { id: 1, body: 'hello' }, errors: null });
  });

  it('applies filters and routes to the matching bindings of one channel', async () => {
    const inserts: Payload[] = [];
    const deletes: Payload[] = [];
    const channel = t
      .client()
      .channel('items-filtered')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'items', filter: 'price=gt.10' }, (p) => inserts.push(p as Payload))
      .on('postgres_changes', { event: 'DELETE', schema: 'public', table: 'items', filter: 'name=eq.gone' }, (p) => deletes.push(p as Payload));
    expect(await subscribedToPostgres(channel)).toBe('ok: Subscribed to PostgreSQL');
    const owner = randomUUID();
    await db.query(`INSERT INTO public.items VALUES (1, $1, 'cheap', 5, now()), (2, $1, 'dear', 12.50, now()), (3, $1, 'gone', 100, now())`, [owner]);
    await db.query(`UPDATE public.items SET price = 50 WHERE id = 1`);
    await db.query(`DELETE FROM public.items WHERE id IN (1, 3)`);
    await until(() => inserts.length === 2 && deletes.length === 1);
    await sleep(300);
    expect(inserts.map((p) => (p.new as { id: number }).id)).toEqual([2, 3]);
    expect(inserts[0].new).toMatchObject({ name: 'dear', price: 12.5 });
    expect(deletes.map((p) => (p.old as { name: string }).name)).toEqual(['gone']);
  });

  it('reports tables outside the publication and unknown filter columns with upstream messages', async () => {
    await db.query('CREATE TABLE public.hidden (id int PRIMARY KEY)');
    const hidden = t.client().channel('hidden').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'hidden' }, () => undefined);
    expect(await subscribedToPostgres(hidden)).toBe(
      'error: Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: [event: INSERT, schema: public, table: hidden, filters: [], select: nil]',
    );
    const badColumn = t.client().channel('badcol').on('postgres_changes', { event: '*', schema: 'public', table: 'todos', filter: 'nope=eq.1' }, () => undefined);
    expect(await subscribedToPostgres(badColumn)).toMatch(/invalid column for filter nope$/);
  });

  it('filters by RLS per subscriber: by role, and each user sees only their own rows', async () => {
    const gotAlice: Payload[] = [];
    const gotBob: Payload[] = [];
    const a = (await userClient(alice)).channel('notes-a').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) => gotAlice.push(p as Payload));
    const b = (await userClient(bob)).channel('notes-b').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) => gotBob.push(p as Payload));
    // By role: the policy is for `authenticated`; anon sees no row of the table at all.
    const gotAnon: Payload[] = [];
    const anon = t.client().channel('notes-anon').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) => gotAnon.push(p as Payload));
    expect(await subscribedToPostgres(a)).toBe('ok: Subscribed to PostgreSQL');
    expect(await subscribedToPostgres(b)).toBe('ok: Subscribed to PostgreSQL');
    expect(await subscribedToPostgres(anon)).toBe('ok: Subscribed to PostgreSQL');
    await db.query(`INSERT INTO public.notes VALUES (1, $1, 'for alice'), (2, $2, 'for bob'), (3, $1, 'alice again')`, [alice, bob]);
    await until(() => gotAlice.length === 2 && gotBob.length === 1);
    await sleep(300);
    expect(gotAnon).toEqual([]);
    expect(gotAlice.map((p) => (p.new as { body: string }).body)).toEqual(['for alice', 'alice again']);
    expect(gotBob.map((p) => (p.new as { body: string }).body)).toEqual(['for bob']);
  });

  it('keeps commit order and RLS across many small transactions dispatched in batches', async () => {
    const gotAlice: number[] = [];
    const gotBob: number[] = [];
    const a = (await userClient(alice)).channel('notes-many-a').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) => gotAlice.push((p.new as { id: number }).id));
    const b = (await userClient(bob)).channel('notes-many-b').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) => gotBob.push((p.new as { id: number }).id));
    expect(await subscribedToPostgres(a)).toBe('ok: Subscribed to PostgreSQL');
    expect(await subscribedToPostgres(b)).toBe('ok: Subscribed to PostgreSQL');
    // 400 one-row transactions queued on one connection: they commit back to back, in id order, faster than one
    // RLS check takes, so most of them reach Performer while a dispatch is under way.
    const ids = Array.from({ length: 400 }, (_v, i) => 5000 + i);
    await Promise.all(ids.map((id) => db.query('INSERT INTO public.notes VALUES ($1, $2, $3)', [id, id % 3 === 0 ? bob : alice, `n${id}`])));
    const forBob = ids.filter((id) => id % 3 === 0);
    const forAlice = ids.filter((id) => id % 3 !== 0);
    // On a timeout the comparisons below show what is missing.
    await until(() => gotAlice.length >= forAlice.length && gotBob.length >= forBob.length, 30_000).catch(() => undefined);
    await sleep(300);
    expect(gotAlice).toEqual(forAlice);
    expect(gotBob).toEqual(forBob);
  }, 60_000);

  it('asks a failing RLS check again instead of dropping the rows', async () => {
    const got: number[] = [];
    const channel = (await userClient(alice)).channel('gated').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'gated' }, (p) => got.push((p.new as { id: number }).id));
    expect(await subscribedToPostgres(channel)).toBe('ok: Subscribed to PostgreSQL');
    // The policy raises while the gate is closed: the visibility check fails until it opens.
    await db.query('INSERT INTO public.gate_closed VALUES (true)');
    await db.query('INSERT INTO public.gated VALUES (1, $1), (2, $2)', [alice, bob]);
    const failures = async () => Number((await db.query<{ n: string }>('SELECT last_value::text AS n FROM public.gate_failures WHERE is_called')).rows[0]?.n ?? 0);
    await until(async () => (await failures()) >= 1, 10_000);
    await db.query('DELETE FROM public.gate_closed');
    await until(() => got.length >= 1, 10_000);
    await sleep(300);
    expect(got).toEqual([1]);
  });

  it('delivers a 10,000-row transaction completely and in commit order', async () => {
    const got: number[] = [];
    const channel = t.client().channel('bulk').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'todos' }, (p) => got.push((p.new as { id: number }).id));
    expect(await subscribedToPostgres(channel)).toBe('ok: Subscribed to PostgreSQL');
    await db.query(`INSERT INTO public.todos (id, title) SELECT g, 'bulk ' || g FROM generate_series(1000, 10999) g`);
    await until(() => got.length === 10_000, 60_000);
    expect(got).toEqual(Array.from({ length: 10_000 }, (_v, i) => 1000 + i));
  }, 90_000);
});
