/** /rest/v1 beyond the §9.2 list: schema reloads on DDL, headers, transactions, timeouts, injection attempts. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRestWorld, until, U1, U2, type RestWorld } from './support.js';

let w: RestWorld;
beforeAll(async () => {
  w = await startRestWorld(undefined, { REST_STATEMENT_TIMEOUT_MS: '300' });
}, 60_000);
afterAll(async () => w?.stop());

const raw = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
  fetch(`${w.t.url}/rest/v1${path}`, { ...init, headers: { apikey: w.t.serviceKey, ...init.headers } });

describe('schema cache', () => {
  it('serves a table created a moment ago, and drops a dropped column, without a restart', async () => {
    expect((await w.svc.from('fresh').select()).error?.code).toBe('PGRST205');
    await w.admin.query(`create table fresh (id int primary key, gone text); insert into fresh values (1, 'x')`);
    // The event trigger notifies; the reload is asynchronous, so wait for it.
    await until(async () => (await w.svc.from('fresh').select()).status === 200, 'the new table');
    expect((await w.svc.from('fresh').select()).data).toEqual([{ id: 1, gone: 'x' }]);
    await w.admin.query(`alter table fresh drop column gone`);
    await until(async () => JSON.stringify((await w.svc.from('fresh').select()).data) === '[{"id":1}]', 'the dropped column');
  });
});

describe('headers and transactions', () => {
  it('answers Preference-Applied, Content-Range and Location as PostgREST', async () => {
    const res = await raw('/notes?select=id', {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'return=headers-only, count=exact' },
      body: JSON.stringify({ id: 10, body: 'ten' }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe('/notes?id=eq.10');
    expect(res.headers.get('preference-applied')).toBe('return=headers-only, count=exact');
    expect(res.headers.get('content-range')).toBe('*/1');
    const patched = await raw('/notes?id=eq.1', { method: 'PATCH', headers: { 'content-type': 'application/json', prefer: 'count=exact' }, body: '{"body":"one"}' });
    expect([patched.status, patched.headers.get('content-range')]).toEqual([204, '0-0/1']);
    const deleted = await raw('/notes?id=eq.10', { method: 'DELETE', headers: { prefer: 'count=exact' } });
    expect([deleted.status, deleted.headers.get('content-range')]).toEqual([204, '*/1']);
    expect((await raw('/notes?id=eq.10', { method: 'DELETE' })).headers.get('content-range')).toBe('*/*');
    await w.svc.from('notes').insert({ id: 10, body: 'ten' });
    const read = await raw('/notes?select=id&order=id&limit=1', { headers: { prefer: 'count=exact' } });
    expect(read.status).toBe(206);
    expect(read.headers.get('content-range')).toBe('0-0/3');
    expect(read.headers.get('content-type')).toBe('application/json; charset=utf-8');
  });

  it('answers HEAD without a body, CSV on Accept: text/csv, and a void function 204 without a type', async () => {
    const head = await raw('/notes?select=id&id=in.(1,2)', { method: 'HEAD', headers: { prefer: 'count=exact' } });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-range')).toBe('0-1/2');
    expect(await head.text()).toBe('');
    const csv = await raw('/notes?select=id,body&id=in.(1,2)&order=id', { headers: { accept: 'text/csv' } });
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(await csv.text()).toBe('id,body\n1,one\n2,two');
    await w.admin.query(`create function noop() returns void language sql as ''; notify pgrst`);
    await until(async () => (await raw('/rpc/noop', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status === 204, 'noop()');
    const v = await raw('/rpc/noop', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(v.headers.get('content-type')).toBeNull();
    expect(await v.text()).toBe('');
  });

  it('rolls back with Prefer: tx=rollback and with a singular mutation of several rows', async () => {
    const r = await w.svc.from('notes').insert({ id: 20, body: 'rolled back' }).select().overrideTypes<unknown>();
    expect(r.status).toBe(201);
    await w.svc.from('notes').delete().eq('id', 20);
    const rolled = await raw('/notes', { method: 'POST', headers: { 'content-type': 'application/json', prefer: 'tx=rollback, return=representation' }, body: '{"id":21,"body":"x"}' });
    expect(rolled.status).toBe(201);
    expect(await rolled.json()).toEqual([{ id: 21, body: 'x' }]);
    expect((await w.admin.query('select count(*)::int as n from notes where id = 21')).rows[0].n).toBe(0);
    const several = await w.svc.from('notes').update({ body: 'both' }).in('id', [1, 2]).select().single();
    expect(several.status).toBe(406);
    expect(several.error?.code).toBe('PGRST116');
    expect((await w.admin.query(`select count(*)::int as n from notes where body = 'both'`)).rows[0].n).toBe(0);
  });

  it('ends a runaway statement at REST_STATEMENT_TIMEOUT_MS with 57014 and keeps serving', async () => {
    await w.admin.query(`create function slow() returns int language sql as 'select pg_sleep(30)::text::int'; notify pgrst`);
    await until(async () => (await w.svc.rpc('slow')).error?.code === '57014', 'the statement timeout');
    expect((await w.svc.rpc('slow')).status).toBe(500);
    expect((await w.anon.from('notes').select('id').eq('id', 1)).data).toEqual([{ id: 1 }]);
  });

  it('sheds with 503 and Retry-After when the tenant pool has too many waiting', async () => {
    // Hold every pooled connection with slow calls, then ask for more than the wait queue's bound.
    await w.admin.query(`create or replace function nap() returns int language sql as 'select 1 from pg_sleep(0.25)'; notify pgrst`);
    await until(async () => (await w.svc.rpc('nap')).status === 200, 'nap()');
    const answers = await Promise.all(Array.from({ length: 80 }, () => raw('/rpc/nap', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })));
    const shed = answers.filter((a) => a.status === 503);
    expect(shed.length).toBeGreaterThan(0);
    expect(shed[0].headers.get('retry-after')).toBe('1');
    expect(await shed[0].json()).toMatchObject({ code: 'PGRST003' });
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThan(0);
  });
});

describe('injection attempts are harmless', () => {
  const payloads = [`'; drop table notes; --`, `") or 1=1 --`, `1); drop table notes; --`, `x' OR '1'='1`, '$1', `\\'; select pg_sleep(5); --`];

  it('in filter values: treated as data', async () => {
    for (const p of payloads) {
      const r = await w.anon.from('notes').select().eq('body', p);
      expect(r.error).toBeNull();
      expect(r.data).toEqual([]);
      // postgrest-js quotes a value holding `,()` without escaping its `"`, so such a value may be refused; either
      // way nothing but the matching row comes back.
      const listed = await w.anon.from('notes').select().in('body', [p, 'one']);
      if (listed.error) expect(listed.error.code).toBe('PGRST100');
      else expect(listed.data).toEqual(/[,()]/.test(p) ? expect.any(Array) : [{ id: 1, body: 'one' }]);
      for (const row of (listed.data ?? []) as Array<{ body: string }>) expect(['one', p]).toContain(row.body);
    }
  });

  it('in select, order, on_conflict, Prefer and profile headers: refused or inert', async () => {
    for (const p of payloads) {
      const s = await w.anon.from('notes').select(`id,${p}`);
      expect([400, 404]).toContain(s.status);
      expect(s.error?.code).toMatch(/^(PGRST\d{3}|42703)$/);
      const o = await w.anon.from('notes').select().order(p);
      expect(o.status).toBe(400);
      const u = await w.svc.from('notes').upsert({ id: 1, body: 'one' }, { onConflict: p });
      expect(u.status).toBe(400);
      const prefer = await raw('/notes', { headers: { prefer: `count=${p}` } });
      expect(prefer.status).toBe(200);
      const profile = await w.as(w.t.anonKey, { schema: p }).from('notes').select();
      expect(profile.status).toBe(406);
      expect(profile.error?.code).toBe('PGRST106');
    }
    expect((await w.admin.query('select count(*)::int as n from notes')).rows[0].n).toBeGreaterThanOrEqual(2);
    expect((await w.anon.from('todos').select().eq('owner', U1)).data).toEqual([]);
  });

  it('a bad body, a bad method and a bad JWT never crash anything', async () => {
    const bad = await raw('/notes', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":' });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['code', 'details', 'hint', 'message']);
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/);
    expect((await raw('/rpc/add', { method: 'DELETE' })).status).toBe(405);
    const noKey = await fetch(`${w.t.url}/rest/v1/notes`);
    expect(noKey.status).toBe(401);
    expect(((await noKey.json()) as { message: string }).message).toBe('No API key found in request');
    expect((await w.anon.from('notes').select('id').eq('id', 2)).data).toEqual([{ id: 2 }]);
  });
});

describe('cached statements', () => {
  it('serve one request shape to every caller, each under their own role and RLS', async () => {
    await w.u1.from('todos').insert({ title: 'shape-1' });
    await w.u2.from('todos').insert({ title: 'shape-2' });
    // The same GET, twice each (the second is served from the statement cache), by two users, anon and service_role.
    for (let i = 0; i < 2; i++) {
      expect((await w.u1.from('todos').select('title').like('title', 'shape-%').order('title')).data).toEqual([{ title: 'shape-1' }]);
      expect((await w.u2.from('todos').select('title').like('title', 'shape-%').order('title')).data).toEqual([{ title: 'shape-2' }]);
      expect((await w.anon.from('todos').select('title').like('title', 'shape-%').order('title')).data).toEqual([]);
      expect((await w.svc.from('todos').select('title').like('title', 'shape-%').order('title')).data).toEqual([{ title: 'shape-1' }, { title: 'shape-2' }]);
    }
  });
});

describe('cached write statements', () => {
  it('serve one insert shape to every caller with their own values, role and RLS', async () => {
    const insert = (client: RestWorld['anon'], title: string) => client.from('todos').insert({ title }).select('title, owner');
    // The second and later inserts of this shape take the statement the first one built.
    expect((await insert(w.u1, 'cw-1')).data).toEqual([{ title: 'cw-1', owner: U1 }]);
    expect((await insert(w.u2, 'cw-2')).data).toEqual([{ title: 'cw-2', owner: U2 }]);
    const anon = await insert(w.anon, 'cw-3');
    expect(anon.status).toBe(401);
    expect(anon.error?.code).toBe('42501');
    expect((await w.admin.query(`select title, owner from todos where title like 'cw-%' order by title`)).rows).toEqual([
      { title: 'cw-1', owner: U1 },
      { title: 'cw-2', owner: U2 },
    ]);
  });

  it('take a body that arrives in many pieces, chunked or not', async () => {
    const rows = (from: number) => Array.from({ length: 3000 }, (_, i) => ({ id: from + i, body: `${from + i}`.padEnd(300, 'x') }));
    const whole = await raw('/notes', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rows(10_000)) });
    expect(whole.status).toBe(201);
    // The same shape again, sent chunked (no Content-Length) in small pieces.
    const text = new TextEncoder().encode(JSON.stringify(rows(20_000)));
    const pieces = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < text.length; i += 7_000) controller.enqueue(text.subarray(i, i + 7_000));
        controller.close();
      },
    });
    const streamed = { method: 'POST', headers: { 'content-type': 'application/json' }, body: pieces, duplex: 'half' };
    const chunked = await raw('/notes', streamed as RequestInit & { headers: Record<string, string> });
    expect(chunked.status).toBe(201);
    const { rows: counted } = await w.admin.query(`select count(*)::int as n, min(id) as lo, max(id) as hi from notes where id >= 10000`);
    expect(counted).toEqual([{ n: 6000, lo: 10_000, hi: 22_999 }]);
    await w.admin.query('delete from notes where id >= 10000');
  });

  it('are built again after a schema reload', async () => {
    await w.admin.query(`create table shaped (id int primary key, a text)`);
    await until(async () => (await w.svc.from('shaped').select()).status === 200, 'the new table');
    let id = 0;
    const insert = async () => (await w.svc.from('shaped').insert({ id: ++id, a: `v${id}` }).select()).data as Array<Record<string, unknown>>;
    expect(await insert()).toEqual([{ id: 1, a: 'v1' }]);
    expect(await insert()).toEqual([{ id: 2, a: 'v2' }]);
    await w.admin.query(`alter table shaped add column b text default 'dflt'`);
    // Same request shape: once the reload is in, its statement returns the new column.
    await until(async () => (await insert())[0]?.b === 'dflt', 'the new column in the representation');
    expect(await insert()).toEqual([{ id, a: `v${id}`, b: 'dflt' }]);
  });
});
