import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startTestServer, type TestServer } from '../support/server.js';
import { subscribedToPostgres, until } from '../support/channels.js';
import { createDatabaseOn, startDedicatedPostgres, withClient, type DedicatedPostgres } from '../support/postgres.js';

// Postgres writes a commit to the WAL (where the walsender reads it) before new snapshots see the transaction;
// with synchronous replication that gap lasts until a standby answers. A synchronous standby that never answers
// makes the gap as long as the test wants: the row is decoded and sent, but a lookup by primary key misses it.

let pgServer: DedicatedPostgres;
let t: TestServer;
let db: pg.Client;
const alice = randomUUID();

beforeAll(async () => {
  pgServer = await startDedicatedPostgres();
  await withClient(pgServer.url, async (c) => {
    await c.query(`ALTER SYSTEM SET synchronous_standby_names = 'nobody'`);
    // Nothing waits for the standby unless a session asks for it.
    await c.query(`ALTER SYSTEM SET synchronous_commit = 'local'`);
    await c.query('SELECT pg_reload_conf()');
  });
  t = await startTestServer({ TENANT_MAX_EVENTS_PER_SECOND: '100000' }, await createDatabaseOn(pgServer.url, 'visible'));
  db = new pg.Client({ connectionString: t.db.url });
  await db.connect();
  await db.query(`
    CREATE TABLE public.notes (id bigint PRIMARY KEY, owner uuid NOT NULL);
    ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
    CREATE POLICY "own notes" ON public.notes FOR SELECT TO authenticated USING (owner = auth.uid());
    GRANT SELECT ON public.notes TO authenticated;
    ALTER PUBLICATION supabase_realtime ADD TABLE public.notes;
  `);
}, 60_000);
afterAll(async () => {
  await db?.end();
  await t?.stop();
  await pgServer?.stop();
});

describe('RLS checks of rows whose commit is not visible yet', () => {
  it('waits until the transaction is visible instead of reading the missing row as hidden', async () => {
    const client = t.client();
    await client.realtime.setAuth(await t.sign({ role: 'authenticated', sub: alice, exp: Math.floor(Date.now() / 1000) + 3600 }));
    const got: number[] = [];
    const channel = client.channel('notes').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) => got.push((p.new as { id: number }).id));
    expect(await subscribedToPostgres(channel)).toBe('ok: Subscribed to PostgreSQL');

    const waiter = new pg.Client({ connectionString: t.db.url });
    waiter.on('error', () => undefined);
    await waiter.connect();
    try {
      const pid = (await waiter.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await waiter.query('SET synchronous_commit = on');
      // Committed in the WAL, invisible to snapshots until the wait for the standby is cancelled.
      const insert = waiter.query('INSERT INTO public.notes VALUES (1, $1)', [alice]);
      await until(async () => (await db.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'SyncRep'`, [pid])).rowCount === 1);
      await sleep(1000);
      expect((await db.query('SELECT 1 FROM public.notes WHERE id = 1')).rowCount).toBe(0);
      await db.query('SELECT pg_cancel_backend($1)', [pid]);
      await insert;
      await until(() => got.length === 1, 10_000);
      expect(got).toEqual([1]);
    } finally {
      await waiter.end();
    }
  }, 60_000);
});
