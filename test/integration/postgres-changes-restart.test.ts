import type { ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from '@supabase/supabase-js';
import pg from 'pg';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { signHs256 } from '../../src/auth/jwt.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { startPerformerProcess } from '../support/performer-process.js';
import { sleep, TEST_SECRET } from '../support/server.js';

let child: ChildProcess | null = null;
let db: TestDatabase | null = null;
let dataDir = '';
let sql: pg.Client | null = null;

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await sql?.end().catch(() => undefined);
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Performer as its own process, so the test can SIGKILL it. */
function startPerformer(port: number, databaseUrl: string): Promise<ChildProcess> {
  return startPerformerProcess({
    port,
    databaseUrl,
    dataDir,
    env: {
      DB_ENC_KEY: 'restart-test-encryption-key-0123',
      CHANGES_GRACE_MS: '30000',
      TENANT_MAX_EVENTS_PER_SECOND: '1000000',
      TENANT_MAX_BYTES_PER_SECOND: '1000000000',
    },
  });
}

describe('no committed change is lost across a crash', () => {
  it('delivers every row committed after subscribing, none twice, to a supabase-js client that rejoins after SIGKILL', async () => {
    db = await createTestDatabase('restart');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-restart-'));
    await chmod(dataDir, 0o755);
    const port = await findFreePort();
    child = await startPerformer(port, db.url);
    sql = new pg.Client({ connectionString: db.url });
    // Dropping the database terminates this session when the test failed before ending it.
    sql.on('error', () => undefined);
    await sql.connect();
    await sql.query(`
      CREATE TABLE public.events (id int PRIMARY KEY);
      GRANT SELECT ON public.events TO authenticated;
      ALTER PUBLICATION supabase_realtime ADD TABLE public.events;
    `);

    const userKey = await signHs256({ role: 'authenticated', sub: 'b7c0a9c2-4a4e-4a43-9d62-2f7c5e1c0d11', exp: Math.floor(Date.now() / 1000) + 3600 }, TEST_SECRET);
    const client = createClient(`http://127.0.0.1:${port}`, userKey, {
      realtime: { transport: WebSocket as never, heartbeatIntervalMs: 1000 } as never,
      auth: { persistSession: false },
    });
    const received: number[] = [];
    let subscribedCount = 0;
    const channel = client
      .channel('events')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'events' }, (p) => received.push((p.new as { id: number }).id))
      .on('system', {}, (m: { extension?: string; status: string }) => {
        if (m.extension === 'postgres_changes' && m.status === 'ok') subscribedCount += 1;
      });
    channel.subscribe();
    // Broadcasts from the database on another channel: as upstream, those committed while Performer is down are not
    // sent afterwards (its changes slot, which reads realtime.messages too while it runs, must not replay them).
    const beacons: number[] = [];
    let beaconsJoined = 0;
    const beaconChannel = client.channel('beacons').on('broadcast', { event: 'b' }, (m: { payload: { n: number } }) => beacons.push(m.payload.n));
    beaconChannel.subscribe((status) => {
      if (status === 'SUBSCRIBED') beaconsJoined += 1;
    });
    const beacon = (n: number) => sql!.query(`SELECT realtime.send(jsonb_build_object('n', $1::int), 'b', 'beacons', false)`, [n]);
    const deadline0 = Date.now() + 15_000;
    while ((subscribedCount === 0 || beaconsJoined === 0) && Date.now() < deadline0) await sleep(50);
    expect(subscribedCount).toBe(1);
    await beacon(1);

    const committed: number[] = [];
    let next = 1;
    const insert = async () => {
      await sql!.query('INSERT INTO public.events VALUES ($1)', [next]);
      committed.push(next++);
    };
    for (let i = 0; i < 30; i++) {
      await insert();
      await sleep(15);
    }
    child.kill('SIGKILL');
    await new Promise((r) => child?.once('exit', r));
    // Rows and a broadcast committed while Performer is down.
    for (let i = 0; i < 20; i++) await insert();
    await beacon(2);
    child = await startPerformer(port, db.url);
    // The client reconnects and rejoins on its own; keep writing meanwhile.
    const deadline1 = Date.now() + 30_000;
    while (subscribedCount < 2 && Date.now() < deadline1) {
      await insert();
      await sleep(50);
    }
    expect(subscribedCount).toBe(2);
    for (let i = 0; i < 20; i++) {
      await insert();
      await sleep(10);
    }
    const deadline2 = Date.now() + 20_000;
    while (received.length < committed.length && Date.now() < deadline2) await sleep(50);
    await sleep(500);
    expect(received).toEqual(committed);
    const deadline3 = Date.now() + 15_000;
    while (beaconsJoined < 2 && Date.now() < deadline3) await sleep(50);
    await beacon(3);
    const deadline4 = Date.now() + 10_000;
    while (!beacons.includes(3) && Date.now() < deadline4) await sleep(50);
    await sleep(300);
    expect(beacons).toEqual([1, 3]);
    client.realtime.disconnect();
    await sql.end();
    sql = null;
    child.kill('SIGTERM');
    await new Promise((r) => child?.once('exit', r));
  }, 120_000);
});
