import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startTestServer, type TestServer } from '../support/server.js';
import { subscribed, subscribedToPostgres, until } from '../support/channels.js';

// While Postgres Changes streams a tenant, its stream also reads realtime.messages, and the database-broadcast
// pipeline's own walsender stops: one decoder of the WAL per tenant instead of two.

let t: TestServer;
let db: pg.Client;

beforeAll(async () => {
  t = await startTestServer({ CHANGES_SLOT_IDLE_DROP_MS: '1500', TENANT_MAX_EVENTS_PER_SECOND: '1000000', TENANT_MAX_BYTES_PER_SECOND: '1000000000' });
  db = new pg.Client({ connectionString: t.db.url });
  await db.connect();
  await db.query(`
    CREATE TABLE public.items (id int PRIMARY KEY);
    GRANT SELECT ON public.items TO anon;
    ALTER PUBLICATION supabase_realtime ADD TABLE public.items;
  `);
  await until(() => t.server.ctx.registry.peek('realtime-dev')?.replication?.status === 'up', 20_000);
});
afterAll(async () => {
  await db?.end();
  await t?.stop();
});

/** Slots of this database with a walsender attached, by name. */
async function activeSlots(): Promise<string[]> {
  const { rows } = await db.query<{ slot_name: string }>(
    'SELECT slot_name FROM pg_replication_slots WHERE database = current_database() AND active ORDER BY slot_name',
  );
  return rows.map((r) => r.slot_name);
}

const pipeline = () => t.server.ctx.registry.peek('realtime-dev')?.replication ?? null;

describe('one walsender per tenant while Postgres Changes runs', () => {
  it('hands realtime.messages to the changes stream and back, broadcasting every message once and in order', async () => {
    const got: number[] = [];
    const listener = t.client().channel('shared-room');
    listener.on('broadcast', { event: 'seq' }, (m: { payload: { n: number } }) => got.push(m.payload.n));
    expect(await subscribed(listener)).toBe('SUBSCRIBED');
    expect(await activeSlots()).toEqual([expect.stringMatching(/^supabase_realtime_messages_replication_slot_/)]);

    // Database broadcasts keep coming through both hand-overs.
    let sent = 0;
    let sending = true;
    const pump = (async () => {
      while (sending) {
        sent += 1;
        await db.query(`SELECT realtime.send(jsonb_build_object('n', $1::int), 'seq', 'shared-room', false)`, [sent]);
        await sleep(5);
      }
    })();

    const rows: number[] = [];
    const changes = t.client().channel('shared-items');
    changes.on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'items' }, (p) => rows.push((p.new as { id: number }).id));
    expect(await subscribedToPostgres(changes)).toBe('ok: Subscribed to PostgreSQL');
    // The changes stream took realtime.messages over: its slot is the only one streaming.
    await until(async () => pipeline()?.ownStream === false, 15_000);
    await until(async () => (await activeSlots()).length === 1, 15_000);
    expect(await activeSlots()).toEqual([expect.stringMatching(/^performer_cdc_/)]);
    expect(pipeline()?.status).toBe('up');
    await db.query('INSERT INTO public.items VALUES (1), (2)');
    await until(() => rows.length === 2);
    const midway = sent;
    await until(() => got.length >= midway, 15_000);

    // The subscriber leaves; after the idle period the changes slot goes and the pipeline streams on its own again.
    await changes.unsubscribe();
    await until(async () => pipeline()?.ownStream === true && (await activeSlots()).every((s) => s.startsWith('supabase_realtime_messages')), 20_000);
    await sleep(300);
    sending = false;
    await pump;
    await until(() => got.length >= sent, 15_000).catch(() => undefined);
    await sleep(300);
    expect(got).toEqual(Array.from({ length: sent }, (_v, i) => i + 1));
    expect(pipeline()?.status).toBe('up');
  }, 90_000);

  it('leaves realtime.messages with their own stream when the changes publication has them itself', async () => {
    await db.query('ALTER PUBLICATION supabase_realtime ADD TABLE realtime.messages');
    const changes = t.client().channel('own-items');
    changes.on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'items' }, () => undefined);
    expect(await subscribedToPostgres(changes)).toBe('ok: Subscribed to PostgreSQL');
    await until(async () => (await activeSlots()).length === 2, 15_000);
    await sleep(500);
    expect(pipeline()?.ownStream).toBe(true);
    expect(await activeSlots()).toEqual([expect.stringMatching(/^performer_cdc_/), expect.stringMatching(/^supabase_realtime_messages_replication_slot_/)]);
    const got: number[] = [];
    const listener = t.client().channel('own-room');
    listener.on('broadcast', { event: 'seq' }, (m: { payload: { n: number } }) => got.push(m.payload.n));
    expect(await subscribed(listener)).toBe('SUBSCRIBED');
    await db.query(`SELECT realtime.send('{"n":1}'::jsonb, 'seq', 'own-room', false)`);
    await until(() => got.length === 1);
    await sleep(300);
    expect(got).toEqual([1]);
    await changes.unsubscribe();
  }, 60_000);
});
