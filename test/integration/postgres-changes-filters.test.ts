import type { RealtimeChannel } from '@supabase/supabase-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/raw-client.js';
import { sleep, startTestServer, type TestServer } from '../support/server.js';
import { subscribedToPostgres } from '../support/channels.js';

let t: TestServer;
let db: pg.Client;

beforeAll(async () => {
  t = await startTestServer({ TENANT_MAX_EVENTS_PER_SECOND: '1000000', TENANT_MAX_BYTES_PER_SECOND: '1000000000', TENANT_MAX_CHANNELS_PER_CLIENT: '1000' });
  db = new pg.Client({ connectionString: t.db.url });
  await db.connect();
  await db.query(`
    CREATE TABLE public.things (id int PRIMARY KEY, n int, label text, flag boolean, secret text);
    ALTER TABLE public.things REPLICA IDENTITY FULL;
    GRANT SELECT ON public.things TO anon;
    ALTER PUBLICATION supabase_realtime ADD TABLE public.things;
  `);
});
afterAll(async () => {
  await db?.end();
  await t?.stop();
});


// Rows 1..6; each filter below must select exactly `expect` of them, on INSERT, UPDATE (new image) and DELETE (old).
const rows: [number, number | null, string | null, boolean | null][] = [
  [1, 1, 'apple', true],
  [2, 5, 'Banana', false],
  [3, 10, 'cherry', null],
  [4, null, null, true],
  [5, 7, 'date', false],
  [6, 3, 'Apricot', true],
];
const cases: [string, number[]][] = [
  ['n=eq.5', [2]],
  ['n=neq.5', [1, 3, 5, 6]],
  ['n=lt.5', [1, 6]],
  ['n=lte.5', [1, 2, 6]],
  ['n=gt.5', [3, 5]],
  ['n=gte.5', [2, 3, 5]],
  ['n=in.(1,7,99)', [1, 5]],
  ['label=like.%pp%', [1]],
  ['label=ilike.a%', [1, 6]],
  ['flag=is.null', [3]],
  ['flag=is.true', [1, 4, 6]],
  ['label=match.^[a-c]', [1, 3]],
  ['label=imatch.^a', [1, 6]],
  ['n=isdistinct.5', [1, 3, 4, 5, 6]],
  ['n=not.in.(1,7)', [2, 3, 6]],
  ['n=gt.1,flag=is.false', [2, 5]],
];

describe('every filter operator on INSERT, UPDATE and DELETE (REPLICA IDENTITY FULL)', () => {
  it('selects exactly the rows Postgres would', async () => {
    const got = new Map<string, { INSERT: number[]; UPDATE: number[]; DELETE: number[] }>();
    const channels: RealtimeChannel[] = [];
    const client = t.client();
    for (const [filter] of cases) {
      const seen = { INSERT: [] as number[], UPDATE: [] as number[], DELETE: [] as number[] };
      got.set(filter, seen);
      const ch = client.channel(`f-${filter}`).on('postgres_changes', { event: '*', schema: 'public', table: 'things', filter }, (p) => {
        const row = (p.eventType === 'DELETE' ? p.old : p.new) as { id: number };
        seen[p.eventType].push(row.id);
      });
      channels.push(ch);
    }
    for (const ch of channels) expect(await subscribedToPostgres(ch)).toBe('ok: Subscribed to PostgreSQL');
    for (const r of rows) await db.query('INSERT INTO public.things (id, n, label, flag, secret) VALUES ($1, $2, $3, $4, $5)', [...r, 's']);
    await db.query(`UPDATE public.things SET secret = 'changed'`);
    await db.query('DELETE FROM public.things');
    const total = cases.reduce((sum, [, ids]) => sum + ids.length * 3, 0);
    const deadline = Date.now() + 15_000;
    const count = () => [...got.values()].reduce((s, v) => s + v.INSERT.length + v.UPDATE.length + v.DELETE.length, 0);
    while (count() < total && Date.now() < deadline) await sleep(50);
    await sleep(300);
    for (const [filter, ids] of cases) {
      expect({ filter, ...got.get(filter) }).toEqual({ filter, INSERT: ids, UPDATE: ids, DELETE: ids });
    }
  }, 60_000);
});

describe('payload shaping', () => {
  it('restricts record, old_record and columns to the selected columns plus the primary key', async () => {
    const got: { data: { columns: { name: string }[]; record: object; old_record?: object } }[] = [];
    const c = await RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=2.0.0`);
    c.send(['1', '1', 'realtime:select', 'phx_join', { config: { postgres_changes: [{ event: 'UPDATE', schema: 'public', table: 'things', select: ['label'] }] } }]);
    await c.reply('1');
    await c.nextText((m) => (m as unknown[])[3] === 'system', 10_000);
    await db.query(`INSERT INTO public.things VALUES (50, 1, 'x', true, 'hidden')`);
    await db.query(`UPDATE public.things SET label = 'y' WHERE id = 50`);
    const frame = (await c.nextText((m) => (m as unknown[])[3] === 'postgres_changes', 10_000)) as unknown[];
    got.push(frame[4] as never);
    expect(frame.slice(0, 4)).toEqual([null, null, 'realtime:select', 'postgres_changes']);
    expect(got[0].data.columns.map((x) => x.name)).toEqual(['id', 'label']);
    expect(got[0].data.record).toEqual({ id: 50, label: 'y' });
    expect(got[0].data.old_record).toEqual({ id: 50, label: 'x' });
    c.close();
  });

  it('keeps column privileges: a column the role cannot SELECT never appears', async () => {
    await db.query('REVOKE SELECT ON public.things FROM anon; GRANT SELECT (id, n, label, flag) ON public.things TO anon');
    const c = await RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=2.0.0`);
    c.send(['1', '1', 'realtime:priv', 'phx_join', { config: { postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'things' }] } }]);
    await c.reply('1');
    await c.nextText((m) => (m as unknown[])[3] === 'system', 10_000);
    await db.query(`INSERT INTO public.things VALUES (60, 1, 'x', true, 'hidden')`);
    const frame = (await c.nextText((m) => (m as unknown[])[3] === 'postgres_changes', 10_000)) as [unknown, unknown, string, string, { data: { record: object; columns: { name: string }[] } }];
    expect(frame[4].data.record).toEqual({ id: 60, n: 1, label: 'x', flag: true });
    expect(frame[4].data.columns.map((x) => x.name)).toEqual(['id', 'n', 'label', 'flag']);
    c.close();
    await db.query('GRANT SELECT ON public.things TO anon');
  });

  it('frames one shared event for each socket: V1 and V2 sockets on two topics all get their own framing', async () => {
    const binding = { postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'things', filter: 'id=eq.80' }] };
    const v2a = await RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=2.0.0`);
    const v2b = await RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=2.0.0`);
    const v1 = await RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=1.0.0`);
    v2a.send(['1', '1', 'realtime:shared-a', 'phx_join', { config: binding }]);
    v2b.send(['1', '1', 'realtime:shared-b', 'phx_join', { config: binding }]);
    v1.send(JSON.stringify({ topic: 'realtime:shared-a', event: 'phx_join', payload: { config: binding }, ref: '1', join_ref: '1' }));
    await v2a.nextText((m) => (m as unknown[])[3] === 'system', 10_000);
    await v2b.nextText((m) => (m as unknown[])[3] === 'system', 10_000);
    await v1.nextText((m) => (m as { event: string }).event === 'system', 10_000);
    await db.query(`INSERT INTO public.things VALUES (80, 8, 'shared', true, 's')`);
    const a = (await v2a.nextText((m) => (m as unknown[])[3] === 'postgres_changes', 10_000)) as unknown[];
    const b = (await v2b.nextText((m) => (m as unknown[])[3] === 'postgres_changes', 10_000)) as unknown[];
    const one = (await v1.nextText((m) => (m as { event: string }).event === 'postgres_changes', 10_000)) as { topic: string; ref: null; payload: unknown };
    expect(a.slice(0, 4)).toEqual([null, null, 'realtime:shared-a', 'postgres_changes']);
    expect(b.slice(0, 4)).toEqual([null, null, 'realtime:shared-b', 'postgres_changes']);
    expect(one).toMatchObject({ topic: 'realtime:shared-a', ref: null });
    expect(b[4]).toEqual(a[4]);
    expect(one.payload).toEqual(a[4]);
    expect(a[4]).toMatchObject({ data: { type: 'INSERT', record: { id: 80, label: 'shared' } } });
    for (const c of [v2a, v2b, v1]) c.close();
  });

  it('serves identical subscribers as one group through a shared fan-out, and a member that leaves gets nothing more', async () => {
    const binding = { postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'things', filter: 'n=eq.90' }] };
    const socks = await Promise.all([0, 1, 2].map(() => RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=2.0.0`)));
    for (const c of socks) c.send(['1', '1', 'realtime:group', 'phx_join', { config: binding }]);
    for (const c of socks) await c.nextText((m) => (m as unknown[])[3] === 'system', 10_000);
    type ChangeFrame = [null, null, string, string, { data: { record: { id: number } } }];
    const isChange = (m: unknown) => (m as unknown[])[3] === 'postgres_changes';
    const idOf = (m: unknown) => [(m as ChangeFrame)[2], (m as ChangeFrame)[4].data.record.id];
    await db.query(`INSERT INTO public.things VALUES (91, 90, 'g1', true, 's')`);
    for (const c of socks) expect(idOf(await c.nextText(isChange, 10_000))).toEqual(['realtime:group', 91]);
    socks[2]!.send(['1', '2', 'realtime:group', 'phx_leave', {}]);
    await socks[2]!.reply('2');
    await db.query(`INSERT INTO public.things VALUES (92, 90, 'g2', true, 's')`);
    for (const c of socks.slice(0, 2)) expect(idOf(await c.nextText(isChange, 10_000))).toEqual(['realtime:group', 92]);
    await sleep(300);
    const late = socks[2]!.frames.filter((f) => typeof f === 'string' && isChange(JSON.parse(f)));
    expect(late).toEqual([]);
    for (const c of socks) c.close();
  });

  it('supports the legacy topic form realtime:schema:table:filter', async () => {
    const c = await RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=1.0.0`);
    c.send('{"topic":"realtime:public:things:id=eq.70","event":"phx_join","payload":{},"ref":"1","join_ref":"1"}');
    const reply = (await c.nextText()) as { payload: { status: string; response: { postgres_changes: object[] } } };
    expect(reply.payload.status).toBe('ok');
    expect(reply.payload.response.postgres_changes).toHaveLength(1);
    await c.nextText((m) => (m as { event: string }).event === 'system', 10_000);
    await db.query(`INSERT INTO public.things VALUES (71, 1, 'no', true, 's'), (70, 2, 'yes', true, 's')`);
    const event = (await c.nextText((m) => (m as { event: string }).event === 'INSERT', 10_000)) as { payload: { type: string; record: { label: string } } };
    expect(event.payload).toMatchObject({ type: 'INSERT', record: { label: 'yes' } });
    c.close();
  });
});
