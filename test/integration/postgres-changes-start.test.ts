import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribedToPostgres, until } from '../support/channels.js';
import { startTestServer, type TestServer } from '../support/server.js';

let t: TestServer;
let db: pg.Client;
/** Holds the advisory lock the `slow` table's policy waits for: while held, the dispatch under way stalls. */
let gate: pg.Client;
const GATE_KEY = 7_311_402;

beforeAll(async () => {
  t = await startTestServer({ TENANT_MAX_EVENTS_PER_SECOND: '1000000', TENANT_MAX_BYTES_PER_SECOND: '1000000000' });
  db = new pg.Client({ connectionString: t.db.url });
  await db.connect();
  gate = new pg.Client({ connectionString: t.db.url });
  await gate.connect();
  await db.query(`
    CREATE FUNCTION public.wait_for_gate() RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_advisory_xact_lock_shared(${GATE_KEY});
      RETURN true;
    END $$;
    CREATE TABLE public.slow (id int PRIMARY KEY);
    ALTER TABLE public.slow ENABLE ROW LEVEL SECURITY;
    CREATE POLICY "behind the gate" ON public.slow FOR SELECT TO anon USING (public.wait_for_gate());
    CREATE TABLE public.plain (id int PRIMARY KEY);
    GRANT SELECT ON public.slow, public.plain TO anon;
    ALTER PUBLICATION supabase_realtime ADD TABLE public.slow, public.plain;
  `);
});
afterAll(async () => {
  await gate?.end();
  await db?.end();
  await t?.stop();
});

const waitingForGate = async () =>
  (await db.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted`, [GATE_KEY])).rowCount! > 0;

describe('where a new subscription starts', () => {
  it('gets exactly the transactions that commit after it was confirmed, while the stream is behind', async () => {
    const slow: number[] = [];
    const early = t.client().channel('slow').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'slow' }, (p) => slow.push((p.new as { id: number }).id));
    expect(await subscribedToPostgres(early)).toBe('ok: Subscribed to PostgreSQL');

    // The visibility check of row 1 waits for the gate: the stream falls behind the commits that follow.
    await gate.query('SELECT pg_advisory_lock($1)', [GATE_KEY]);
    await db.query('INSERT INTO public.slow VALUES (1)');
    await until(waitingForGate, 10_000, 'the dispatch to wait at the gate');
    await db.query('INSERT INTO public.plain VALUES (1)');
    await db.query('INSERT INTO public.plain VALUES (2)');

    const plain: number[] = [];
    const late = t.client().channel('plain').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'plain' }, (p) => plain.push((p.new as { id: number }).id));
    expect(await subscribedToPostgres(late)).toBe('ok: Subscribed to PostgreSQL');
    // Committed after the confirmation, while rows 1 and 2 still wait behind the gate (still waiting: the stream
    // was behind all along).
    await db.query('INSERT INTO public.plain VALUES (3)');
    expect(await waitingForGate()).toBe(true);
    await gate.query('SELECT pg_advisory_unlock($1)', [GATE_KEY]);
    // Commit order: once row 4 is in, anything before it would be too.

    await db.query('INSERT INTO public.plain VALUES (4)');
    await until(() => slow.length === 1 && plain.includes(4), 10_000, 'the rows after the gate');
    expect(slow).toEqual([1]);
    expect(plain).toEqual([3, 4]);
  });

  it('hands nothing out twice after the stream reconnects, and nothing from before a subscription', async () => {
    const early: number[] = [];
    const c = t.client().channel('plain-early').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'plain' }, (p) => early.push((p.new as { id: number }).id));
    expect(await subscribedToPostgres(c)).toBe('ok: Subscribed to PostgreSQL');
    const slow: number[] = [];
    const s = t.client().channel('slow-2').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'slow' }, (p) => slow.push((p.new as { id: number }).id));
    expect(await subscribedToPostgres(s)).toBe('ok: Subscribed to PostgreSQL');

    await gate.query('SELECT pg_advisory_lock($1)', [GATE_KEY]);
    await db.query('INSERT INTO public.slow VALUES (10)');
    await until(waitingForGate, 10_000, 'the dispatch to wait at the gate');
    await db.query('INSERT INTO public.plain VALUES (10)');
    await db.query('INSERT INTO public.plain VALUES (11)');
    const late: number[] = [];
    const l = t.client().channel('plain-late').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'plain' }, (p) => late.push((p.new as { id: number }).id));
    expect(await subscribedToPostgres(l)).toBe('ok: Subscribed to PostgreSQL');
    await db.query('INSERT INTO public.plain VALUES (12)');
    const written = (await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;

    // Nothing past the stalled dispatch is confirmed: the new walsender sends all of it again.
    const walsender = async () =>
      (await db.query<{ pid: number; sent: boolean }>(
        `SELECT pid, sent_lsn >= $1::pg_lsn AS sent FROM pg_stat_replication WHERE application_name = 'performer_postgres_changes'`,
        [written],
      )).rows[0];
    const before = await walsender();
    await db.query('SELECT pg_terminate_backend($1)', [before!.pid]);
    await until(async () => {
      const now = await walsender();
      return now !== undefined && now.pid !== before!.pid && now.sent;
    }, 20_000, 'the stream to reconnect and send everything again');
    expect(await waitingForGate()).toBe(true);
    await gate.query('SELECT pg_advisory_unlock($1)', [GATE_KEY]);

    await db.query('INSERT INTO public.plain VALUES (13)');
    await until(() => early.includes(13) && late.includes(13) && slow.length > 0, 10_000, 'the rows after the gate');
    expect(early).toEqual([10, 11, 12, 13]);
    expect(late).toEqual([12, 13]);
    expect(slow).toEqual([10]);
  }, 60_000);
});
