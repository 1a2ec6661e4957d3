import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { startDedicatedPostgres, withClient } from '../support/postgres.js';

const moduleUnderTest = fileURLToPath(new URL('../../src/db/embedded-postgres.ts', import.meta.url));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntilDead(pid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} still alive`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('startEmbeddedPostgres', () => {
  let dataDir: string;
  const running: EmbeddedPostgres[] = [];
  const start = async (opts: { port?: number } = {}): Promise<EmbeddedPostgres> => {
    const server = await startEmbeddedPostgres({ dataDir, ephemeral: true, ...opts });
    running.push(server);
    return server;
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-embedded-test-'));
  });
  afterAll(async () => {
    for (const server of running) await server.stop();
    await rm(dataDir, { recursive: true, force: true });
    // Kept outside dataDir when root runs the tests with TMPDIR under a private directory.
    for (const server of running) await rm(server.home, { recursive: true, force: true });
  });

  it('starts with logical replication on 127.0.0.1 and stops without leaving a process', async () => {
    const server = await start();
    expect(server.url).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/postgres$/);
    const settings = await withClient(server.url, async (client) => {
      const { rows } = await client.query<{ name: string; setting: string }>(
        `SELECT name, setting FROM pg_settings
          WHERE name IN ('wal_level', 'max_replication_slots', 'max_wal_senders', 'listen_addresses', 'server_encoding')`,
      );
      await client.query('CREATE TABLE kept (value text)');
      await client.query(`INSERT INTO kept VALUES ('written before stop')`);
      return Object.fromEntries(rows.map((row) => [row.name, row.setting]));
    });
    expect(settings).toEqual({
      wal_level: 'logical',
      max_replication_slots: '32',
      max_wal_senders: '32',
      listen_addresses: '127.0.0.1',
      server_encoding: 'UTF8',
    });
    if (process.getuid?.() === 0) {
      const owner = (await stat(path.join(dataDir, 'cluster'))).uid;
      expect(owner).not.toBe(0);
    }
    await server.stop();
    expect(isAlive(server.pid)).toBe(false);
    await server.stop(); // idempotent
  });

  it('reuses the initialised cluster and its password on the next start', async () => {
    const credentials = await readFile(path.join(dataDir, 'credentials.json'), 'utf8');
    const server = await start();
    const rows = await withClient(server.url, async (client) => (await client.query('SELECT value FROM kept')).rows);
    expect(rows).toEqual([{ value: 'written before stop' }]);
    expect(await readFile(path.join(dataDir, 'credentials.json'), 'utf8')).toBe(credentials);
    await server.stop();
  });

  it('listens on the port of its last start, and on another (kept from then on) when that one is taken', async () => {
    const first = await start();
    await first.stop();
    const second = await start();
    expect(second.port).toBe(first.port);
    await second.stop();
    expect(Number((await readFile(path.join(dataDir, 'port'), 'utf8')).trim())).toBe(first.port);
    const blocker = net.createServer();
    blocker.listen(first.port, '127.0.0.1');
    await once(blocker, 'listening');
    let moved: EmbeddedPostgres;
    try {
      moved = await start();
      expect(moved.port).not.toBe(first.port);
      await moved.stop();
    } finally {
      blocker.close();
    }
    const fourth = await start();
    expect(fourth.port).toBe(moved.port);
    await fourth.stop();
  });

  it('starts again after the postmaster was SIGKILLed (stale postmaster.pid)', async () => {
    const crashed = await start();
    await withClient(crashed.url, (client) => client.query(`INSERT INTO kept VALUES ('before crash')`));
    process.kill(crashed.pid, 'SIGKILL');
    await waitUntilDead(crashed.pid);
    await crashed.stop(); // must not hang on a dead server

    const server = await start();
    const rows = await withClient(server.url, async (client) => (await client.query('SELECT value FROM kept')).rows);
    expect(rows.map((row) => row.value)).toContain('before crash');
    await server.stop();
  });

  it('shuts down a postmaster orphaned by a killed owner process, then starts', async () => {
    const script =
      `const { startEmbeddedPostgres } = await import(${JSON.stringify(moduleUnderTest)});` +
      `const s = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, ephemeral: true });` +
      `process.stdout.write(JSON.stringify({ pid: s.pid }) + '\\n');` +
      `setInterval(() => {}, 1000);`;
    const owner = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    owner.stdout.setEncoding('utf8');
    owner.stdout.on('data', (chunk: string) => (output += chunk));
    const deadline = Date.now() + 60_000;
    while (!output.includes('\n')) {
      if (Date.now() > deadline || owner.exitCode !== null) throw new Error(`owner did not start: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const { pid } = JSON.parse(output) as { pid: number };
    const exited = once(owner, 'exit');
    owner.kill('SIGKILL');
    await exited;
    expect(isAlive(pid)).toBe(true); // orphaned, still holding the data directory

    const server = await start();
    expect(isAlive(pid)).toBe(false);
    const rows = await withClient(server.url, async (client) => (await client.query('SELECT count(*)::int AS n FROM kept')).rows);
    expect(rows[0].n).toBeGreaterThan(0);
    await server.stop();
  });

  it('fails with the log tail when the port is taken', async () => {
    const blocker = net.createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await expect(start({ port })).rejects.toThrow(/failed to start[\s\S]*log tail[\s\S]*(could not bind|Address already in use)/);
    } finally {
      blocker.close();
    }
  });
});

describe('startDedicatedPostgres', () => {
  it('restarts and recovers from a crash keeping data, port and url', async () => {
    const server = await startDedicatedPostgres();
    try {
      await withClient(server.url, (client) => client.query(`CREATE TABLE t (v int); INSERT INTO t VALUES (1)`));
      await server.restart();
      await withClient(server.url, (client) => client.query('INSERT INTO t VALUES (2)'));
      await server.crash();
      await expect(withClient(server.url, (client) => client.query('SELECT 1'))).rejects.toThrow();
      await server.startServer();
      const { rows } = await withClient(server.url, (client) => client.query('SELECT v FROM t ORDER BY v'));
      expect(rows).toEqual([{ v: 1 }, { v: 2 }]);
      expect(new URL(server.url).port).toBe(String(server.port));
    } finally {
      await server.stop();
    }
  });
});
