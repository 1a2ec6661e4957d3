import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { signHs256 } from '../../src/auth/jwt.js';
import { findFreePort, startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { isAlive } from '../../src/db/postgres-process.js';
import { sleep, TEST_SECRET, waitForEvent } from '../support/server.js';

// `npm start` without DATABASE_URL, stopped or killed and started again three times: the embedded Postgres keeps its
// port when it can, Performer keeps one changes slot whatever the port, and a row committed while Performer was down
// still reaches the supabase-js client that rejoins on its own.

const repoRoot = path.resolve(import.meta.dirname, '../..');
let child: ChildProcess | null = null;
let dataDir = '';
let client: SupabaseClient | null = null;
const blockers: net.Server[] = [];

afterAll(async () => {
  client?.realtime.disconnect();
  if (child && child.exitCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
  // A postmaster left running by a failed run is stopped (it is this test's own, found by its data directory).
  const pid = dataDir ? await postmasterPid().catch(() => null) : null;
  if (pid && isAlive(pid)) process.kill(pid, 'SIGQUIT');
  for (const b of blockers) b.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function startPerformer(port: number): Promise<ChildProcess> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    PERFORMER_DATA_DIR: dataDir,
    JWT_SECRET: TEST_SECRET,
    LOG_LEVEL: 'warn',
    CHANGES_GRACE_MS: '120000',
  };
  delete env.DATABASE_URL;
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await waitForEvent<void>((cb) => {
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('service_role key')) cb();
    });
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('exit', () => cb());
  }, 120_000, 'Performer to start');
  if (proc.exitCode !== null) throw new Error(`Performer exited:\n${out}`);
  return proc;
}

async function stopPerformer(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const proc = child!;
  const exited = once(proc, 'exit');
  proc.kill(signal);
  await exited;
}

const pgDir = () => path.join(dataDir, 'postgres');
async function embeddedPort(): Promise<number> {
  return Number((await readFile(path.join(pgDir(), 'port'), 'utf8')).trim());
}
async function embeddedUrl(): Promise<string> {
  const { user, password } = JSON.parse(await readFile(path.join(pgDir(), 'credentials.json'), 'utf8')) as { user: string; password: string };
  return `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${await embeddedPort()}/postgres`;
}
async function postmasterPid(): Promise<number> {
  return Number((await readFile(path.join(pgDir(), 'cluster', 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

async function sql<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: await embeddedUrl() });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

async function persistentSlots(): Promise<string[]> {
  return (await sql<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots WHERE NOT temporary ORDER BY 1')).map((r) => r.slot_name);
}

describe('the embedded Postgres across restarts', () => {
  it('keeps one changes slot and delivers rows committed while Performer was down, whatever its port', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-embedded-restart-'));
    await chmod(dataDir, 0o755);
    const port = await findFreePort();
    child = await startPerformer(port);
    const firstPort = await embeddedPort();
    await sql(`CREATE TABLE public.events (id int PRIMARY KEY); GRANT SELECT ON public.events TO authenticated;
               ALTER PUBLICATION supabase_realtime ADD TABLE public.events;`);

    const userKey = await signHs256({ role: 'authenticated', sub: '0f1e2d3c-4b5a-4968-8776-655443322110', exp: Math.floor(Date.now() / 1000) + 3600 }, TEST_SECRET);
    client = createClient(`http://127.0.0.1:${port}`, userKey, {
      realtime: { transport: WebSocket as never, heartbeatIntervalMs: 1000 } as never,
      auth: { persistSession: false },
    });
    const received: number[] = [];
    let subscribed = 0;
    client
      .channel('events')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'events' }, (p) => received.push((p.new as { id: number }).id))
      .on('system', {}, (m: { extension?: string; status: string }) => {
        if (m.extension === 'postgres_changes' && m.status === 'ok') subscribed += 1;
      })
      .subscribe();
    const until = async (what: string, cond: () => boolean, ms = 60_000) => {
      const deadline = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`${what} not met in time (received ${JSON.stringify(received)})`);
        await sleep(50);
      }
    };
    await until('subscribed', () => subscribed === 1);
    await sql('INSERT INTO public.events VALUES (0)');
    await until('row 0', () => received.includes(0));
    const slot = await persistentSlots();
    expect(slot).toEqual([expect.stringMatching(/^performer_cdc_\d+_realtime_2ddev$/)]);

    const ports = [firstPort];
    for (const cycle of [1, 2, 3]) {
      if (cycle === 1) {
        // Ctrl-C stops Performer and its database; the row is committed on the database started on its own.
        await stopPerformer('SIGTERM');
        const alone = await startEmbeddedPostgres({ dataDir: pgDir() });
        await sql('INSERT INTO public.events VALUES ($1)', [cycle]);
        await alone.stop();
      } else {
        // Killed with its owner, the postmaster lives on as an orphan: a row committed now has no Performer to read it.
        await stopPerformer('SIGKILL');
        await sql('INSERT INTO public.events VALUES ($1)', [cycle]);
      }
      if (cycle === 2) {
        // This time the port is taken by something else when Performer starts: the database moves to another one.
        const pid = await postmasterPid();
        process.kill(pid, 'SIGINT');
        while (isAlive(pid)) await sleep(50);
        const blocker = net.createServer();
        blocker.listen(ports.at(-1), '127.0.0.1');
        await once(blocker, 'listening');
        blockers.push(blocker);
      }
      child = await startPerformer(port);
      ports.push(await embeddedPort());
      await until(`row ${cycle} after restart ${cycle}`, () => received.includes(cycle));
      expect(await persistentSlots()).toEqual(slot);
    }
    expect(ports[1]).toBe(ports[0]);
    expect(ports[2]).not.toBe(ports[1]);
    expect(ports[3]).toBe(ports[2]);
    expect(received).toEqual([0, 1, 2, 3]);
  }, 300_000);
});
