/** Spec baas-api.md §9.2 database checks 1-32, in order, with unmodified supabase-js against a real Postgres. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRestWorld, U1, U2, type RestWorld } from './support.js';

let w: RestWorld;
beforeAll(async () => {
  w = await startRestWorld();
}, 60_000);
afterAll(async () => w?.stop());

type Row = { id: number; title: string; done: boolean | null; tags: string[] | null; owner: string };

describe('§9.2 database checks', () => {
  it('1: anon reads notes', async () => {
    const r = await w.anon.from('notes').select('*');
    expect(r).toMatchObject({ error: null, status: 200 });
    expect(Array.isArray(r.data)).toBe(true);
  });

  it('2-4: inserts with and without representation, singular', async () => {
    const minimal = await w.u1.from('todos').insert({ title: 'a' });
    expect(minimal).toMatchObject({ status: 201, data: null, error: null });
    // The spec's line says done false/true; upstream inserts NULL for a key missing from a bulk insert unless
    // `defaultToNull: false` (Prefer: missing=default), so that is what makes `done` default to false.
    const many = await w.u1.from('todos').insert([{ title: 'b' }, { title: 'c', done: true }], { defaultToNull: false }).select();
    expect(many.status).toBe(201);
    const rows = many.data as Row[];
    expect(rows).toHaveLength(2);
    expect(rows.map((r) => typeof r.id)).toEqual(['number', 'number']);
    expect(rows.map((r) => r.owner)).toEqual([U1, U1]);
    expect(rows.map((r) => r.done)).toEqual([false, true]);
    const one = await w.u1.from('todos').insert({ title: 'd' }).select().single();
    expect(Array.isArray(one.data)).toBe(false);
    expect(one.data).toMatchObject({ title: 'd' });
  });

  it('5-7: order, limit, head count, range count', async () => {
    const page = await w.u1.from('todos').select('id,title').order('id', { ascending: false }).limit(2);
    const ids = (page.data as Row[]).map((r) => r.id);
    expect(ids).toHaveLength(2);
    expect(ids[0]).toBeGreaterThan(ids[1]);
    const mine = (await w.admin.query(`select count(*)::int as n from todos where owner = $1`, [U1])).rows[0].n as number;
    const head = await w.u1.from('todos').select('*', { count: 'exact', head: true });
    expect(head).toMatchObject({ data: null, count: mine, status: 200 });
    const ranged = await w.u1.from('todos').select('id', { count: 'exact' }).range(0, 0);
    expect(ranged.data).toHaveLength(1);
    expect(ranged.count).toBe(mine);
    expect(mine).toBeGreaterThan(1);
    expect(ranged.status).toBe(206);
  });

  it('8-10: single, PGRST116, maybeSingle', async () => {
    expect((await w.u1.from('todos').select().eq('title', 'a').single()).data).toMatchObject({ title: 'a' });
    const none = await w.u1.from('todos').select().eq('id', -1).single();
    expect(none.status).toBe(406);
    expect(none.error?.code).toBe('PGRST116');
    expect(none.data).toBeNull();
    expect(await w.u1.from('todos').select().eq('id', -1).maybeSingle()).toMatchObject({ data: null, error: null });
  });

  it('11-16: in, or, ilike/like, is, contains, gte/lt', async () => {
    const titles = async (q: PromiseLike<{ data: unknown }>) => ((await q).data as Row[]).map((r) => r.title).sort();
    expect(await titles(w.u1.from('todos').select().in('title', ['a', 'b']))).toEqual(['a', 'b']);
    expect((await w.u1.from('todos').select().in('title', ['x,y'])).error).toBeNull();
    expect(await titles(w.u1.from('todos').select().or('title.eq.a,done.is.true'))).toEqual(['a', 'c']);
    expect(await titles(w.u1.from('todos').select().ilike('title', 'A%'))).toEqual(['a']);
    expect(await titles(w.u1.from('todos').select().like('title', 'A%'))).toEqual([]);
    const a = ((await w.u1.from('todos').select().eq('title', 'a').single()).data as Row).id;
    await w.u1.from('todos').update({ tags: ['x', 'y'] }).eq('id', a);
    expect(await titles(w.u1.from('todos').select().is('tags', null))).toEqual(['b', 'c', 'd']);
    expect(await titles(w.u1.from('todos').select().not('tags', 'is', null))).toEqual(['a']);
    expect(await titles(w.u1.from('todos').select().contains('tags', ['x']))).toEqual(['a']);
    const ids = ((await w.u1.from('todos').select('id').gte('id', a).lt('id', a + 2)).data as Row[]).map((r) => r.id);
    expect(ids.sort()).toEqual([a, a + 1]);
  });

  it('17-18: update with and without representation', async () => {
    const x = ((await w.u1.from('todos').select().eq('title', 'b').single()).data as Row).id;
    const rep = await w.u1.from('todos').update({ done: true }).eq('id', x).select();
    expect(rep.status).toBe(200);
    expect(rep.data).toEqual([expect.objectContaining({ id: x, done: true })]);
    expect(await w.u1.from('todos').update({ done: false }).eq('id', x)).toMatchObject({ status: 204, data: null });
  });

  it('19-20: upsert merges, ignoreDuplicates keeps', async () => {
    const x = ((await w.u1.from('todos').select().eq('title', 'b').single()).data as Row).id;
    const before = (await w.admin.query('select count(*)::int as n from todos')).rows[0].n;
    const up = await w.svc.from('todos').upsert({ id: x, title: 'z', owner: U1 }).select();
    // The spec's line says 201; PostgREST 12+ (UpsertSpec "UPDATEs rows on pk conflict") answers 200 when the upsert
    // inserted nothing, and 201 once it inserted a row (below).
    expect(up.status).toBe(200);
    expect(up.data).toEqual([expect.objectContaining({ id: x, title: 'z' })]);
    expect((await w.admin.query('select count(*)::int as n from todos')).rows[0].n).toBe(before);
    expect((await w.svc.from('todos').upsert({ id: x, title: 'q' }, { ignoreDuplicates: true })).error).toBeNull();
    expect((await w.svc.from('todos').upsert({ id: 7001, title: 'new', owner: U1 })).status).toBe(201);
    expect((await w.admin.query('select title from todos where id = $1', [x])).rows[0].title).toBe('z');
  });

  it('21-22: delete with representation, delete with count', async () => {
    const made = (await w.u1.from('todos').insert([{ title: 'del1' }, { title: 'del2' }, { title: 'del3' }]).select()).data as Row[];
    const gone = await w.u1.from('todos').delete().eq('id', made[0].id).select();
    expect(gone.status).toBe(200);
    expect(gone.data).toEqual([expect.objectContaining({ id: made[0].id, title: 'del1' })]);
    expect((await w.u1.from('todos').select().eq('id', made[0].id)).data).toEqual([]);
    const counted = await w.u1.from('todos').delete({ count: 'exact' }).in('id', [made[1].id, made[2].id]);
    expect(counted.count).toBe(2);
  });

  it('23-26: 23505, 23502, PGRST205, 42703', async () => {
    expect((await w.svc.from('todos').insert({ id: 9001, title: 'dup', owner: U1 })).error).toBeNull();
    const dup = await w.svc.from('todos').insert({ id: 9001, title: 'dup', owner: U1 });
    expect(dup.status).toBe(409);
    expect(dup.error).toMatchObject({ code: '23505', details: 'Key (id)=(9001) already exists.', hint: null });
    const notNull = await w.u1.from('todos').insert({});
    expect(notNull.status).toBe(400);
    expect(notNull.error?.code).toBe('23502');
    const nope = await w.u1.from('nope').select();
    expect(nope.status).toBe(404);
    expect(nope.error).toMatchObject({ code: 'PGRST205', message: "Could not find the table 'public.nope' in the schema cache" });
    const column = await w.u1.from('todos').select('id,nope');
    expect(column.status).toBe(400);
    expect(column.error?.code).toBe('42703');
  });

  it('27: rpc by POST and GET', async () => {
    expect((await w.u1.rpc('add', { a: 1, b: 2 })).data).toBe(3);
    expect((await w.u1.rpc('add', { a: 1, b: 2 }, { get: true })).data).toBe(3);
    const missing = await w.u1.rpc('nope', { a: 1 });
    expect(missing.status).toBe(404);
    expect(missing.error?.code).toBe('PGRST202');
  });

  it('28-29: RLS isolation and RLS writes', async () => {
    const seen = (await w.u2.from('todos').select()).data as Row[];
    expect(seen.filter((r) => r.owner === U1)).toEqual([]);
    expect((await w.u2.from('todos').insert({ title: 'u2 row' }).select()).data).toEqual([expect.objectContaining({ owner: U2 })]);
    expect(((await w.u2.from('todos').select()).data as Row[]).map((r) => r.title)).toEqual(['u2 row']);
    const all = (await w.svc.from('todos').select()).data as Row[];
    expect(new Set(all.map((r) => r.owner))).toEqual(new Set([U1, U2]));
    const anon = await w.anon.from('todos').insert({ title: 'x' });
    expect(anon.status).toBe(401);
    expect(anon.error?.code).toBe('42501');
    const forged = await w.u2.from('todos').insert({ title: 'x', owner: U1 });
    expect(forged.status).toBe(403);
    expect(forged.error?.code).toBe('42501');
    // u2 can neither change nor delete u1's rows: RLS hides them.
    expect((await w.u2.from('todos').update({ title: 'hacked' }).eq('owner', U1).select()).data).toEqual([]);
    expect((await w.u2.from('todos').delete().eq('owner', U1).select()).data).toEqual([]);
    expect((await w.admin.query(`select count(*)::int as n from todos where title = 'hacked'`)).rows[0].n).toBe(0);
  });

  it('30: to-one embeds as an object, to-many as an array', async () => {
    const rows = (await w.u1.from('todos').select('id, profile:profiles(name)')).data as Array<{ profile: unknown }>;
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.profile).toEqual({ name: 'one' });
    const profiles = (await w.svc.from('profiles').select('name, todos(id)').order('name')).data as Array<{ name: string; todos: unknown }>;
    expect(profiles.map((p) => Array.isArray(p.todos))).toEqual([true, true]);
  });

  it('31: an expired JWT is 401 PGRST303 "JWT expired"; a forged one PGRST301', async () => {
    const expired = await w.t.sign({ sub: U1, role: 'authenticated', exp: Math.floor(Date.now() / 1000) - 60 });
    const r = await w.as(expired).from('notes').select();
    expect(r.status).toBe(401);
    expect(r.error).toMatchObject({ code: 'PGRST303', message: 'JWT expired' });
    const forged = await w.t.sign({ role: 'service_role', exp: Math.floor(Date.now() / 1000) + 60 }, 'another-secret-with-at-least-32-characters!!');
    const f = await w.as(forged).from('notes').select();
    expect(f.status).toBe(401);
    expect(f.error?.code).toBe('PGRST301');
    const garbage = await w.as('not-a-jwt').from('notes').select();
    expect(garbage.status).toBe(401);
    expect(garbage.error).toMatchObject({ code: 'PGRST301', message: 'Expected 3 parts in JWT; got 1' });
  });

  it('32: a schema that is not exposed is 406 PGRST106', async () => {
    const r = await w.anon.schema('private').from('t').select();
    expect(r.status).toBe(406);
    expect(r.error).toMatchObject({ code: 'PGRST106', message: 'Invalid schema: private', hint: 'Only the following schemas are exposed: public' });
  });
});
