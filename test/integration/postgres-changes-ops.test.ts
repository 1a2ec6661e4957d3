import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDedicatedPostgres } from '../support/postgres.js';
import { RawClient } from '../support/raw-client.js';
import { sleep, startTestServer, type TestServer } from '../support/server.js';

let t: TestServer;
let db: pg.Client;
const alice = randomUUID();
const bob = randomUUID();

beforeAll(async () => {
  t = await startTestServer({ CHANGES_SLOT_IDLE_DROP_MS: '1000', TENANT_MAX_EVENTS_PER_SECOND: '1000000', TENANT_MAX_BYTES_PER_SECOND: '1000000000' });
  db = new pg.Client({ connectionString: t.db.url });
  await db.connect();
  await db.query(`
    CREATE TABLE public.notes (id bigint PRIMARY KEY, owner uuid NOT NULL, body text);
    ALTER TABLE public.notes REPLICA IDENTITY FULL;
    ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
    CREATE POLICY "own notes" ON public.notes FOR SELECT TO authenticated USING (owner = auth.uid());
    GRANT SELECT ON public.notes TO authenticated;
    ALTER PUBLICATION supabase_realtime ADD TABLE public.notes;
  `);
});
afterAll(async () => {
  await db?.end();
  await t?.stop();
});

const tokenFor = (sub: string) => t.sign({ role: 'authenticated', sub, exp: Math.floor(Date.now() / 1000) + 3600 });

async function subscriber(sub: string, topic: string, event = '*'): Promise<RawClient> {
  const c = await RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${await tokenFor(sub)}&vsn=2.0.0`);
  c.send(['1', '1', `realtime:${topic}`, 'phx_join', { config: { postgres_changes: [{ event, schema: 'public', table: 'notes' }] } }]);
  expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
  const system = (await c.nextText((m) => (m as unknown[])[3] === 'system', 15_000)) as unknown[];
  expect(system[4]).toEqual({ extension: 'postgres_changes', status: 'ok', message: 'Subscribed to PostgreSQL', channel: topic });
  return c;
}

type Data = { type: string; record?: Record<string, unknown>; old_record?: Record<string, unknown> };
const changeOf = (m: unknown) => ((m as unknown[])[4] as { data: Data }).data;
const isChange = (m: unknown) => (m as unknown[])[3] === 'postgres_changes';

describe('postgres_changes under RLS', () => {
  it('reduces DELETE old_record to the primary key on a table with RLS, even with REPLICA IDENTITY FULL', async () => {
    const c = await subscriber(alice, 'notes-delete', 'DELETE');
    await db.query(`INSERT INTO public.notes VALUES (1, $1, 'secret')`, [alice]);
    await db.query('DELETE FROM public.notes WHERE id = 1');
    const data = changeOf(await c.nextText(isChange, 10_000));
    expect(data).toMatchObject({ type: 'DELETE', old_record: { id: 1 } });
    expect(data.old_record).toEqual({ id: 1 });
    c.close();
  });

  it('uses the claims of a refreshed access_token for the next visibility checks', async () => {
    const c = await subscriber(bob, 'notes-refresh', 'INSERT');
    await db.query(`INSERT INTO public.notes VALUES (10, $1, 'alice 1'), (11, $2, 'bob 1')`, [alice, bob]);
    expect(changeOf(await c.nextText(isChange, 10_000)).record).toMatchObject({ body: 'bob 1' });
    c.send(['1', '2', 'realtime:notes-refresh', 'access_token', { access_token: await tokenFor(alice) }]);
    await sleep(300);
    await db.query(`INSERT INTO public.notes VALUES (12, $1, 'alice 2'), (13, $2, 'bob 2')`, [alice, bob]);
    expect(changeOf(await c.nextText(isChange, 10_000)).record).toMatchObject({ body: 'alice 2' });
    await sleep(300);
    expect(c.frames.filter((f) => typeof f === 'string' && f.includes('postgres_changes'))).toEqual([]);
    c.close();
  });
});

describe('the changes slot', () => {
  it('is persistent while subscribed and dropped after an idle period without subscribers', async () => {
    const slots = async () =>
      (await db.query<{ slot_name: string; temporary: boolean }>("SELECT slot_name, temporary FROM pg_replication_slots WHERE slot_name LIKE 'performer_cdc_%' AND database = current_database()")).rows;
    const c = await subscriber(alice, 'idle-slot');
    expect((await slots()).map((s) => s.temporary)).toEqual([false]);
    c.send(['1', '2', 'realtime:idle-slot', 'phx_leave', {}]);
    await c.reply('2');
    // Dropping hands realtime.messages back first, which creates the broadcast pipeline's slot: on a loaded machine
    // that waits on other transactions for a while.
    const deadline = Date.now() + 45_000;
    while ((await slots()).length > 0 && Date.now() < deadline) await sleep(200);
    expect(await slots()).toEqual([]);
    c.close();
  }, 60_000);
});

describe('lag guard', () => {
  it('tells subscribers and recreates the slot when it falls too far behind', async () => {
    // A Postgres of its own: creating a logical slot waits for every transaction running in the cluster, and the
    // shared test cluster is busy with other test files.
    const pgServer = await startDedicatedPostgres();
    const guarded = await startTestServer(
      { CHANGES_MAX_LAG_BYTES: '1024', CHANGES_LAG_CHECK_MS: '200' },
      { url: pgServer.url, name: 'postgres', drop: async () => pgServer.stop() },
    );
    try {
      const g = new pg.Client({ connectionString: guarded.db.url });
      await g.connect();
      await g.query(`CREATE TABLE public.t (id int PRIMARY KEY); GRANT SELECT ON public.t TO anon; ALTER PUBLICATION supabase_realtime ADD TABLE public.t;
                     CREATE TABLE public.noise (id int, pad text);`);
      const c = await RawClient.connect(`ws://127.0.0.1:${guarded.port}/socket/websocket?apikey=${guarded.anonKey}&vsn=2.0.0`);
      c.send(['1', '1', 'realtime:lag', 'phx_join', { config: { postgres_changes: [{ event: '*', schema: 'public', table: 't' }] } }]);
      await c.reply('1');
      await c.nextText((m) => (m as unknown[])[3] === 'system', 15_000);
      // WAL that no subscriber needs keeps the slot behind the current position.
      let error: unknown = null;
      const deadline = Date.now() + 40_000;
      while (error === null && Date.now() < deadline) {
        await g.query(`INSERT INTO public.noise SELECT g, repeat('x', 200) FROM generate_series(1, 500) g`);
        error = await c.nextText((m) => (m as unknown[])[3] === 'system', 200).catch(() => null);
      }
      expect((error as unknown[])[4]).toMatchObject({ extension: 'postgres_changes', status: 'error', channel: 'lag' });
      expect(((error as unknown[])[4] as { message: string }).message).toMatch(/^Replication lag of \d+ bytes exceeded the limit of 1024 bytes/);
      c.close();
      await g.end();
    } finally {
      // Bounded: a server whose slot was just recreated may still be creating it; the dedicated Postgres goes anyway.
      await Promise.race([guarded.stop(), sleep(20_000)]);
      await pgServer.stop();
    }
  }, 90_000);
});
