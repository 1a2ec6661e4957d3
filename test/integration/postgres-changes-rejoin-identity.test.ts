import type { ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient, type RealtimeChannel, type SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { signHs256, type Claims } from '../../src/auth/jwt.js';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { subscribedToPostgres, until } from '../support/channels.js';
import { killHard, startPerformerProcess } from '../support/performer-process.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { TEST_SECRET } from '../support/server.js';

let child: ChildProcess | null = null;
let db: TestDatabase | null = null;
let dataDir = '';
let sql: pg.Client | null = null;
const clients: SupabaseClient[] = [];

afterAll(async () => {
  for (const c of clients) c.realtime.disconnect();
  if (child) await killHard(child);
  await sql?.end().catch(() => undefined);
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const exp = () => Math.floor(Date.now() / 1000) + 3600;

async function clientWith(port: number, claims: Claims): Promise<SupabaseClient> {
  const key = await signHs256({ ...claims, exp: exp() }, TEST_SECRET);
  const c = createClient(`http://127.0.0.1:${port}`, key, {
    realtime: { transport: WebSocket as never, heartbeatIntervalMs: 25_000 } as never,
    auth: { persistSession: false, autoRefreshToken: false },
  });
  clients.push(c);
  return c;
}

/** A channel on `topic` with one INSERT binding on `table`, recording the ids it receives. */
async function inserts(c: SupabaseClient, topic: string, table: string): Promise<{ channel: RealtimeChannel; ids: number[] }> {
  const ids: number[] = [];
  const channel = c.channel(topic).on('postgres_changes', { event: 'INSERT', schema: 'public', table }, (p) => ids.push((p.new as { id: number }).id));
  expect(await subscribedToPostgres(channel)).toBe('ok: Subscribed to PostgreSQL');
  return { channel, ids };
}

describe('changes held across a crash go only to a rejoin of the same user, checked against its own claims', () => {
  it('anon never receives rows held for service_role; a token with other claims gets only what those claims see', async () => {
    db = await createTestDatabase('rejoinid');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-rejoin-'));
    await chmod(dataDir, 0o755);
    const port = await findFreePort();
    child = await startPerformerProcess(port, db.url, dataDir);
    sql = new pg.Client({ connectionString: db.url });
    sql.on('error', () => undefined);
    await sql.connect();
    await sql.query(`
      CREATE TABLE public.secrets (id int PRIMARY KEY);
      ALTER TABLE public.secrets ENABLE ROW LEVEL SECURITY;
      CREATE TABLE public.team_notes (id int PRIMARY KEY, team text NOT NULL);
      ALTER TABLE public.team_notes ENABLE ROW LEVEL SECURITY;
      CREATE POLICY "own team" ON public.team_notes FOR SELECT TO authenticated USING (team = auth.jwt() ->> 'team');
      CREATE TABLE public.markers (id int PRIMARY KEY);
      GRANT SELECT ON public.secrets, public.team_notes, public.markers TO anon, authenticated, service_role;
      ALTER PUBLICATION supabase_realtime ADD TABLE public.secrets, public.team_notes, public.markers;
    `);
    const user = '5d1f6a3e-8c1b-4b7e-9a52-3f0d2c4b1e77';

    // Before the crash: service_role on `secrets` (RLS, no policy for anon), a user of team red on `team`.
    const service = await inserts(await clientWith(port, { role: 'service_role' }), 'secrets', 'secrets');
    const red = await inserts(await clientWith(port, { role: 'authenticated', sub: user, team: 'red' }), 'team', 'team_notes');
    await sql.query('INSERT INTO public.secrets VALUES (1)');
    await sql.query(`INSERT INTO public.team_notes VALUES (1, 'red')`);
    await until(() => service.ids.length === 1 && red.ids.length === 1, 10_000, 'live rows before the crash');
    expect([service.ids, red.ids]).toEqual([[1], [1]]);

    await killHard(child);
    for (const c of clients.splice(0)) c.realtime.disconnect();
    // Committed while Performer is down: held for the two subscribers of the earlier run.
    for (const id of [2, 3, 4]) {
      await sql.query('INSERT INTO public.secrets VALUES ($1)', [id]);
      await sql.query(`INSERT INTO public.team_notes VALUES ($1, 'red')`, [id]);
    }
    const written = (await sql.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
    child = await startPerformerProcess(port, db.url, dataDir);
    // The restarted node streams the rows committed while it was down before anyone joins (as in the report).
    await until(
      async () =>
        (await sql!.query(`SELECT 1 FROM pg_stat_replication WHERE application_name = 'performer_postgres_changes' AND sent_lsn >= $1::pg_lsn`, [written])).rowCount === 1,
      30_000,
      'the backlog to be streamed',
    );

    // anon joins the same topic with the same binding. A marker on another channel of the same socket, committed
    // after that join was confirmed, arrives after anything the join could have been handed.
    const anonClient = await clientWith(port, { role: 'anon' });
    const anon = await inserts(anonClient, 'secrets', 'secrets');
    const marks = await inserts(anonClient, 'marks', 'markers');
    await sql.query('INSERT INTO public.markers VALUES (1)');
    await until(() => marks.ids.length === 1, 10_000, 'the marker');
    expect(anon.ids).toEqual([]);

    // The same user with a token of team blue: the held red rows are checked against blue, so none of them comes.
    const blue = await inserts(await clientWith(port, { role: 'authenticated', sub: user, team: 'blue' }), 'team', 'team_notes');
    await sql.query(`INSERT INTO public.team_notes VALUES (5, 'blue')`);
    await until(() => blue.ids.includes(5), 10_000, 'the blue row');
    expect(blue.ids).toEqual([5]);

    // service_role rejoins: it gets what was held for it, once, then what commits after.
    const serviceAgain = await inserts(await clientWith(port, { role: 'service_role' }), 'secrets', 'secrets');
    await sql.query('INSERT INTO public.secrets VALUES (5)');
    await until(() => serviceAgain.ids.includes(5), 10_000, 'the row after the rejoin');
    expect(serviceAgain.ids).toEqual([2, 3, 4, 5]);
    expect(anon.ids).toEqual([]);
  }, 120_000);
});
