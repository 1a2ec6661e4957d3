import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { signHs256 } from '../../src/auth/jwt.js';
import { findFreePort, startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { createMachineTestDatabase, type TestDatabase } from '../support/postgres.js';
import { RawClient } from '../support/raw-client.js';
import { sleep, startTestServer, TEST_API_SECRET, TEST_SECRET, waitForEvent, type TestServer } from '../support/server.js';

// The machine's PostgreSQL 15 runs with wal_level=replica: a database Performer can serve broadcasts and presence
// from, but never stream. It must say so once, clearly, everywhere an operator or a client looks.

const repoRoot = path.resolve(import.meta.dirname, '../..');
const WAL_LEVEL_MESSAGE =
  'Logical replication is not enabled: the database server runs with wal_level=replica, it needs wal_level=logical. ' +
  'Set wal_level = logical in postgresql.conf (or run ALTER SYSTEM SET wal_level = logical) and restart Postgres; ' +
  'Postgres Changes and Broadcast from Database are unavailable until then.';

let child: ChildProcess | null = null;
let db: TestDatabase | null = null;
let dataDir = '';
let client: SupabaseClient | null = null;

afterAll(async () => {
  client?.realtime.disconnect();
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child?.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('a database without wal_level=logical', () => {
  it('is reported once, with the setting to change, in the log, the banner, health, metrics and to subscribers', async () => {
    db = await createMachineTestDatabase('wal_level');
    const level = new pg.Client({ connectionString: db.url });
    await level.connect();
    const { rows } = await level.query<{ wal_level: string }>('SHOW wal_level');
    await level.end();
    expect(rows[0]!.wal_level).toBe('replica');

    dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-wal-level-'));
    await chmod(dataDir, 0o755);
    const port = await findFreePort();
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: repoRoot,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: db.url,
        JWT_SECRET: TEST_SECRET,
        API_JWT_SECRET: TEST_API_SECRET,
        DB_ENC_KEY: 'wal-level-test-encryption-key-01',
        PERFORMER_DATA_DIR: dataDir,
        LOG_LEVEL: 'info',
        // Short backoffs and probes: a failure repeated per retry would show many times in the window below.
        TENANT_BACKOFF_MIN_MS: '50',
        TENANT_BACKOFF_MAX_MS: '200',
        TENANT_DB_PROBE_MS: '200',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await waitForEvent<void>((cb) => {
      proc.stdout?.on('data', () => out.includes('service_role key') && cb());
      proc.on('exit', () => cb());
    }, 60_000, 'Performer to start');
    expect(proc.exitCode, out).toBeNull();
    expect(out).toContain(`     Replication: UNAVAILABLE. ${WAL_LEVEL_MESSAGE}`);

    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    await sql.query(`CREATE TABLE public.items (id int PRIMARY KEY); GRANT SELECT ON public.items TO authenticated;
                     ALTER PUBLICATION supabase_realtime ADD TABLE public.items;`);
    await sql.end();

    const url = `http://127.0.0.1:${port}`;
    const userKey = await signHs256({ role: 'authenticated', sub: 'd3a1f0e2-5b6c-4d7e-8f90-a1b2c3d4e5f6', exp: Math.floor(Date.now() / 1000) + 3600 }, TEST_SECRET);
    client = createClient(url, userKey, { realtime: { transport: WebSocket as never }, auth: { persistSession: false } });
    const system: { status: string; message: string }[] = [];
    const statuses: string[] = [];
    const channel = client
      .channel('items')
      .on('postgres_changes', { event: '*', schema: 'public', table: 'items' }, () => undefined)
      .on('system', {}, (m: { extension?: string; status: string; message: string }) => {
        if (m.extension === 'postgres_changes') system.push({ status: m.status, message: m.message });
      });
    channel.subscribe((status) => statuses.push(status));
    const deadline = Date.now() + 20_000;
    while (system.length === 0 && Date.now() < deadline) await sleep(50);
    expect(system).toEqual([{ status: 'error', message: WAL_LEVEL_MESSAGE }]);
    expect(statuses).toEqual(['SUBSCRIBED']);

    // Health: liveness stays `ok`; readiness and the tenant health say what is wrong.
    const plain = await fetch(`${url}/healthcheck`);
    expect([plain.status, await plain.text()]).toEqual([200, 'ok']);
    const verbose = await fetch(`${url}/healthcheck?verbose=1`);
    expect(verbose.status).toBe(503);
    expect(await verbose.json()).toMatchObject({
      status: 'degraded',
      tenants: {
        'realtime-dev': {
          state: 'ready',
          db_connected: true,
          replication: { state: 'unavailable', problem: { setting: 'wal_level', value: 'replica', required: 'logical', message: WAL_LEVEL_MESSAGE }, postgres_changes: null },
        },
      },
    });
    const apiToken = await signHs256({ role: 'service_role', exp: Math.floor(Date.now() / 1000) + 600 }, TEST_API_SECRET);
    const health = await fetch(`${url}/api/tenants/realtime-dev/health`, { headers: { authorization: `Bearer ${apiToken}` } });
    expect(await health.json()).toMatchObject({
      data: { db_connected: true, replication_connected: false, replication: { state: 'unavailable', problem: { setting: 'wal_level', value: 'replica' } } },
    });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('realtime_replication_misconfigured{tenant="realtime-dev",setting="wal_level"} 1');

    // Long enough for a channel retry (5 s) and dozens of stream retries at these backoffs: nothing is said twice.
    await sleep(6000);
    expect(system).toHaveLength(1);
    const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; error_code?: string; msg: string });
    const loud = lines.filter((l) => l.level === 'warn' || l.level === 'error' || l.level === 'fatal');
    expect(loud).toEqual([expect.objectContaining({ level: 'error', error_code: 'ReplicationWalLevelNotLogical', msg: WAL_LEVEL_MESSAGE })]);
    expect(out).not.toMatch(/"stack"/);
  }, 90_000);
});

describe('a database whose wal_level is fixed while Performer runs', () => {
  let pgServer: EmbeddedPostgres | null = null;
  let server: TestServer | null = null;
  let pgDir = '';
  afterAll(async () => {
    await server?.stop();
    await pgServer?.stop();
    if (pgDir) await rm(pgDir, { recursive: true, force: true });
  });

  it('streams once Postgres is restarted with wal_level=logical, without the subscriber joining again', async () => {
    pgDir = await mkdtemp(path.join(os.tmpdir(), 'performer-wal-fixed-'));
    const port = await findFreePort();
    const startPostgres = (settings: Record<string, string>) => startEmbeddedPostgres({ dataDir: pgDir, port, ephemeral: true, settings });
    pgServer = await startPostgres({ wal_level: 'replica' });
    const url = pgServer.url;
    server = await startTestServer({ TENANT_DB_PROBE_MS: '200', TENANT_BACKOFF_MIN_MS: '50', TENANT_BACKOFF_MAX_MS: '500' }, { url, name: 'postgres', drop: async () => undefined });
    const sql = new pg.Client({ connectionString: url });
    await sql.connect();
    await sql.query(`CREATE TABLE public.items (id int PRIMARY KEY); GRANT SELECT ON public.items TO anon;
                     ALTER PUBLICATION supabase_realtime ADD TABLE public.items;`);
    await sql.end();

    const c = await RawClient.connect(`ws://127.0.0.1:${server.port}/socket/websocket?apikey=${server.anonKey}&vsn=2.0.0`);
    c.send(['1', '1', 'realtime:items', 'phx_join', { config: { postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'items' }] } }]);
    expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
    const isSystem = (m: unknown) => (m as unknown[])[3] === 'system';
    expect((await c.nextText(isSystem, 15_000) as unknown[])[4]).toMatchObject({ status: 'error', message: expect.stringContaining('wal_level=replica') });

    await pgServer.stop();
    pgServer = await startPostgres({});
    expect((await c.nextText(isSystem, 60_000) as unknown[])[4]).toEqual({ extension: 'postgres_changes', status: 'ok', message: 'Subscribed to PostgreSQL', channel: 'items' });
    const insert = new pg.Client({ connectionString: url });
    await insert.connect();
    await insert.query('INSERT INTO public.items VALUES (7)');
    await insert.end();
    const change = (await c.nextText((m) => (m as unknown[])[3] === 'postgres_changes', 15_000)) as unknown[];
    expect(change[4]).toMatchObject({ data: { type: 'INSERT', record: { id: 7 } } });
    const runtime = server.server.ctx.registry.peek('realtime-dev')!;
    const deadline = Date.now() + 15_000;
    while (runtime.replication?.status !== 'up' && Date.now() < deadline) await sleep(50);
    expect(runtime.replicationCheck.problem).toBeNull();
    expect(runtime.replication?.status).toBe('up');
    c.close();
  }, 120_000);
});
