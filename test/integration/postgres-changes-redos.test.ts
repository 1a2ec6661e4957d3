import type { ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from '@supabase/supabase-js';
import pg from 'pg';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { signHs256 } from '../../src/auth/jwt.js';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { subscribedToPostgres } from '../support/channels.js';
import { startPerformerProcess } from '../support/performer-process.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { sleep, TEST_SECRET } from '../support/server.js';

// An anonymous subscriber's filter must not be able to stall the server. With backtracking RegExps, one 58-character
// insert against `like.%a%a%a%a%a%a%b` kept the event loop busy for 4.3 s (every tenant's /healthcheck waited);
// the 120-character rows below would take minutes (LIKE) and longer than the age of the universe (`(a+)+$`).
// Performer runs as its own process so that a stuck event loop fails this test instead of freezing the test runner;
// the 20 s budget is a hang detector, not a speed requirement.

const HANG_BUDGET_MS = 20_000;
let child: ChildProcess | null = null;
let db: TestDatabase | null = null;
let sql: pg.Client | null = null;
let dataDir = '';

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await sql?.end().catch(() => undefined);
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('a pathological filter does not freeze the server', () => {
  it('keeps answering /healthcheck and delivers exactly the matching rows', async () => {
    db = await createTestDatabase('redos_server');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-redos-'));
    await chmod(dataDir, 0o755);
    const port = await findFreePort();
    child = await startPerformerProcess(port, db.url, dataDir);
    sql = new pg.Client({ connectionString: db.url });
    sql.on('error', () => undefined);
    await sql.connect();
    await sql.query(`
      CREATE TABLE public.posts (id int PRIMARY KEY, body text);
      ALTER TABLE public.posts ENABLE ROW LEVEL SECURITY;
      CREATE POLICY anyone_reads ON public.posts FOR SELECT TO anon USING (true);
      GRANT SELECT ON public.posts TO anon;
      ALTER PUBLICATION supabase_realtime ADD TABLE public.posts;
    `);

    const anonKey = await signHs256({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 3600 }, TEST_SECRET);
    const client = createClient(`http://127.0.0.1:${port}`, anonKey, {
      realtime: { transport: WebSocket as never, heartbeatIntervalMs: 1000 } as never,
      auth: { persistSession: false },
    });
    const received = { like: [] as number[], match: [] as number[] };
    const subscribe = (name: keyof typeof received, filter: string) =>
      subscribedToPostgres(
        client.channel(name).on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'posts', filter }, (p) => {
          received[name].push((p.new as { id: number }).id);
        }),
      );
    expect(await subscribe('like', 'body=like.%a%a%a%a%a%a%b')).toBe('ok: Subscribed to PostgreSQL');
    expect(await subscribe('match', 'body=match.(a+)+$')).toBe('ok: Subscribed to PostgreSQL');

    // Row 1 is the LIKE attack (no b), row 2 the regex attack (a trailing b); each matches the other filter.
    const as = 'a'.repeat(120);
    await sql.query('INSERT INTO public.posts VALUES (1, $1), (2, $2)', [as, `${as}b`]);

    const deadline = Date.now() + HANG_BUDGET_MS;
    let healthchecks = 0;
    while (received.like.length + received.match.length < 2 && Date.now() < deadline) {
      const res = await fetch(`http://127.0.0.1:${port}/healthcheck`, { signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())) });
      expect(res.status).toBe(200);
      healthchecks++;
      await sleep(50);
    }
    expect(received).toEqual({ like: [2], match: [1] });
    expect(healthchecks).toBeGreaterThan(0);
    // Still serving: a later row reaches its subscriber too.
    await sql.query('INSERT INTO public.posts VALUES (3, $1)', ['a-a-a-a-a-a-b']);
    const later = Date.now() + HANG_BUDGET_MS;
    while (received.like.length < 2 && Date.now() < later) await sleep(50);
    expect(received).toEqual({ like: [2, 3], match: [1] });
    const res = await fetch(`http://127.0.0.1:${port}/healthcheck`, { signal: AbortSignal.timeout(HANG_BUDGET_MS) });
    expect(await res.text()).toBe('ok');

    client.realtime.disconnect();
    child.kill('SIGTERM');
    await new Promise((r) => child?.once('exit', r));
  }, 120_000);
});
