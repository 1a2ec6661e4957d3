import { randomUUID } from 'node:crypto';
import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/raw-client.js';
import { sleep, startTestServer, type TestServer } from '../support/server.js';
import { subscribed, until } from '../support/channels.js';

let t: TestServer;
let db: pg.Client;
const alice = randomUUID();

beforeAll(async () => {
  t = await startTestServer();
  db = new pg.Client({ connectionString: t.db.url });
  await db.connect();
  await db.query(`
    CREATE POLICY "private rooms read" ON realtime.messages FOR SELECT TO authenticated USING (realtime.topic() LIKE 'priv%');
    CREATE POLICY "private rooms write" ON realtime.messages FOR INSERT TO authenticated WITH CHECK (realtime.topic() LIKE 'privw%');
    CREATE TABLE public.todos (id bigint PRIMARY KEY, title text);
    CREATE FUNCTION public.todos_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM realtime.broadcast_changes('todos', TG_OP, TG_OP, TG_TABLE_NAME, TG_TABLE_SCHEMA, NEW, OLD);
      RETURN NULL;
    END $$;
    CREATE TRIGGER todos_broadcast AFTER INSERT OR UPDATE OR DELETE ON public.todos FOR EACH ROW EXECUTE FUNCTION public.todos_changed();
  `);
  // The database-broadcast stream starts with the tenant; wait until it streams.
  await until(() => t.server.ctx.registry.peek('realtime-dev')?.replication?.status === 'up', 20_000);
});
afterAll(async () => {
  await db?.end();
  await t?.stop();
});

async function member(vsn: '1.0.0' | '2.0.0' = '2.0.0'): Promise<SupabaseClient> {
  const c = t.client({ vsn });
  await c.realtime.setAuth(await t.sign({ role: 'authenticated', sub: alice, exp: Math.floor(Date.now() / 1000) + 3600 }));
  return c;
}

type Msg = { event: string; payload: Record<string, unknown> | ArrayBuffer; meta?: { id?: string; replayed?: boolean } };
function collect(channel: RealtimeChannel, event = '*'): Msg[] {
  const got: Msg[] = [];
  channel.on('broadcast', { event }, (m) => got.push(m as never));
  return got;
}

describe('broadcast from the database', () => {
  it('delivers realtime.send to private V1 and V2 subscribers and public sends to public ones only', async () => {
    const v2 = (await member('2.0.0')).channel('privroom', { config: { private: true } });
    const v1 = (await member('1.0.0')).channel('privroom', { config: { private: true } });
    const pub = t.client().channel('privroom');
    const got2 = collect(v2);
    const got1 = collect(v1);
    const gotPub = collect(pub);
    for (const c of [v2, v1, pub]) expect(await subscribed(c)).toBe('SUBSCRIBED');
    await db.query(`SELECT realtime.send('{"hello":"db"}'::jsonb, 'greet', 'privroom', true)`);
    await db.query(`SELECT realtime.send('{"hello":"public"}'::jsonb, 'greet', 'privroom', false)`);
    await until(() => got2.length === 1 && got1.length === 1 && gotPub.length === 1);
    const { rows } = await db.query(`SELECT id::text FROM realtime.messages WHERE topic = 'privroom' AND private ORDER BY inserted_at DESC LIMIT 1`);
    expect(got2[0]).toMatchObject({ event: 'greet', payload: { hello: 'db', id: rows[0].id }, meta: { id: rows[0].id } });
    expect(got1[0]).toMatchObject({ event: 'greet', payload: { hello: 'db', id: rows[0].id }, meta: { id: rows[0].id } });
    expect(gotPub[0]).toMatchObject({ event: 'greet', payload: { hello: 'public' } });
  });

  it('delivers realtime.send_binary to V2 as bytes and not to V1', async () => {
    const v2 = (await member('2.0.0')).channel('privbin', { config: { private: true } });
    const v1 = (await member('1.0.0')).channel('privbin', { config: { private: true } });
    const got2 = collect(v2);
    const got1 = collect(v1);
    for (const c of [v2, v1]) expect(await subscribed(c)).toBe('SUBSCRIBED');
    await db.query(`SELECT realtime.send_binary('\\x00ff10'::bytea, 'blob', 'privbin', true)`);
    await db.query(`SELECT realtime.send('{"after":true}'::jsonb, 'after', 'privbin', true)`);
    await until(() => got2.length === 2 && got1.length === 1);
    expect([...new Uint8Array(got2[0].payload as ArrayBuffer)]).toEqual([0, 255, 16]);
    expect(got1.map((m) => m.event)).toEqual(['after']);
  });

  it('delivers INSERT, UPDATE and DELETE from a broadcast_changes trigger', async () => {
    const c = (await member()).channel('todos', { config: { private: true } });
    await db.query(`CREATE POLICY "todos read" ON realtime.messages FOR SELECT TO authenticated USING (realtime.topic() = 'todos')`);
    const got = collect(c);
    expect(await subscribed(c)).toBe('SUBSCRIBED');
    await db.query(`INSERT INTO public.todos VALUES (1, 'write tests')`);
    await db.query(`UPDATE public.todos SET title = 'ship' WHERE id = 1`);
    await db.query(`DELETE FROM public.todos WHERE id = 1`);
    await until(() => got.length === 3);
    expect(got.map((m) => m.event)).toEqual(['INSERT', 'UPDATE', 'DELETE']);
    expect(got[0].payload).toMatchObject({ operation: 'INSERT', table: 'todos', schema: 'public', record: { id: 1, title: 'write tests' }, old_record: null });
    expect(got[1].payload).toMatchObject({ operation: 'UPDATE', record: { id: 1, title: 'ship' }, old_record: { id: 1, title: 'write tests' } });
    expect(got[2].payload).toMatchObject({ operation: 'DELETE', record: null, old_record: { id: 1, title: 'ship' } });
  });

  it('pushes "Replication connection established" with broadcast.replication_ready', async () => {
    const c = await RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=2.0.0`);
    c.send(['1', '1', 'realtime:ready', 'phx_join', { config: { broadcast: { replication_ready: true } } }]);
    expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
    expect(await c.nextText((m) => (m as unknown[])[3] === 'system')).toEqual([
      '1', null, 'realtime:ready', 'system', { extension: 'system', status: 'ok', message: 'Replication connection established', channel: 'ready' },
    ]);
    c.close();
  });
});

describe('private REST broadcast', () => {
  it('delivers batch and single private messages only where the caller may write', async () => {
    const c = (await member()).channel('privw-room', { config: { private: true } });
    const denied = (await member()).channel('privdenied', { config: { private: true } });
    const got = collect(c);
    const gotDenied = collect(denied);
    expect(await subscribed(c)).toBe('SUBSCRIBED');
    expect(await subscribed(denied)).toBe('SUBSCRIBED');
    const token = await t.sign({ role: 'authenticated', sub: alice, exp: Math.floor(Date.now() / 1000) + 60 });
    const res = await fetch(`${t.url}/api/broadcast`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [
        { topic: 'privw-room', event: 'ok', payload: { n: 1 }, private: true },
        { topic: 'privdenied', event: 'no', payload: { n: 2 }, private: true },
      ] }),
    });
    expect(res.status).toBe(202);
    const single = await fetch(`${t.url}/api/broadcast/privw-room/events/single?private=true`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"n":3}',
    });
    expect(single.status).toBe(202);
    await until(() => got.length === 2);
    expect(got.map((m) => [m.event, m.payload])).toEqual([['ok', { n: 1 }], ['single', { n: 3 }]]);
    await sleep(200);
    expect(gotDenied).toEqual([]);
  });
});

describe('replay on private channels', () => {
  it('replays stored messages oldest first with meta.replayed, then never delivers them again', async () => {
    const since = Date.now() - 1000;
    for (let i = 1; i <= 3; i++) await db.query(`SELECT realtime.send($1::jsonb, 'r', 'privreplay', true)`, [JSON.stringify({ i })]);
    const c = (await member()).channel('privreplay', { config: { private: true, broadcast: { replay: { since, limit: 2 } } } as never });
    const got = collect(c);
    expect(await subscribed(c)).toBe('SUBSCRIBED');
    await until(() => got.length === 2);
    // The newest two, delivered oldest first.
    expect(got.map((m) => (m.payload as { i: number }).i)).toEqual([2, 3]);
    expect(got.every((m) => m.meta?.replayed === true && typeof m.meta.id === 'string')).toBe(true);
    await db.query(`SELECT realtime.send('{"i":4}'::jsonb, 'r', 'privreplay', true)`);
    await until(() => got.length === 3);
    expect((got[2].payload as { i: number }).i).toBe(4);
    expect(got[2].meta?.replayed).toBeUndefined();
    await sleep(300);
    expect(new Set(got.map((m) => m.meta?.id)).size).toBe(got.length);
  });

  it('refuses replay on public channels and with bad params', async () => {
    // realtime-js refuses this itself, so a raw client asks.
    const raw = await RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=2.0.0`);
    raw.send(['1', '1', 'realtime:pubreplay', 'phx_join', { config: { broadcast: { replay: { since: 0, limit: 1 } } } }]);
    expect((await raw.reply('1'))[4]).toEqual({ status: 'error', response: { reason: 'UnableToReplayMessages: Replay is not allowed for public channels' } });
    raw.close();
    const bad = (await member()).channel('privbad', { config: { private: true, broadcast: { replay: { since: 'yesterday' } } } as never });
    expect(await subscribed(bad)).toBe('CHANNEL_ERROR: UnableToReplayMessages: Replay params are not valid');
  });
});
