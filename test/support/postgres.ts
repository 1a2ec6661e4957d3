import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { findFreePort, startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';

/** The machine's PostgreSQL 15 (trust auth, no logical replication): for compatibility tests only. */
export const machinePostgresUrl = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export interface DedicatedPostgres {
  /** Stable across restarts (same port and password). */
  url: string;
  port: number;
  dataDir: string;
  /** Final cleanup: stops the server and deletes its data. */
  stop(): Promise<void>;
  /** Clean stop then start again, keeping data and port. */
  restart(): Promise<void>;
  /** Stops the server but keeps data, for outage tests; follow with startServer(). */
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
  /** SIGKILLs the postmaster (crash simulation); follow with startServer(). */
  crash(): Promise<void>;
}

/**
 * A fresh database in the shared embedded Postgres 18 (wal_level=logical) started by global-setup. `options` are
 * appended to CREATE DATABASE (e.g. a locale provider).
 */
export function createTestDatabase(prefix = 'test', options = ''): Promise<TestDatabase> {
  return createDatabaseOn(inject('pgAdminUrl'), prefix, options);
}

/** A fresh database in the machine's PostgreSQL 15. */
export function createMachineTestDatabase(prefix = 'test'): Promise<TestDatabase> {
  return createDatabaseOn(machinePostgresUrl, prefix);
}

export async function createDatabaseOn(adminUrl: string, prefix = 'test', options = ''): Promise<TestDatabase> {
  const name = uniqueDatabaseName(prefix);
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE ${quoteIdent(name)} ${options}`));
  let dropping: Promise<void> | undefined;
  return {
    url: urlForDatabase(adminUrl, name),
    name,
    drop: () => (dropping ??= dropDatabaseOn(adminUrl, name)),
  };
}

/** Terminates the database's backends (walsenders included), drops its replication slots, then the database. */
export async function dropDatabaseOn(adminUrl: string, name: string): Promise<void> {
  await withClient(adminUrl, async (client) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query(
          `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
            WHERE datname = $1 AND pid <> pg_backend_pid()`,
          [name],
        );
        await client.query(
          `SELECT pg_terminate_backend(active_pid, 5000) FROM pg_replication_slots
            WHERE database = $1 AND active_pid IS NOT NULL`,
          [name],
        );
        await client.query(
          `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`,
          [name],
        );
        await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
        return;
      } catch (err) {
        // Backends and temporary slots vanish asynchronously after termination; try again shortly.
        if (attempt >= 20) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  });
}

/** A private embedded Postgres 18 for tests that stop, restart or crash the server. */
export async function startDedicatedPostgres(opts: { logger?: (line: string) => void } = {}): Promise<DedicatedPostgres> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-dedicated-pg-'));
  const port = await findFreePort();
  const start = (): Promise<EmbeddedPostgres> =>
    startEmbeddedPostgres({ dataDir, port, ephemeral: true, logger: opts.logger });
  let server: EmbeddedPostgres | null;
  try {
    server = await start();
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const url = server.url;
  // Kept outside dataDir when root runs the tests with TMPDIR under a private directory.
  const home = server.home;

  const stopServer = async (): Promise<void> => {
    const current = server;
    server = null;
    await current?.stop();
  };
  const startServer = async (): Promise<void> => {
    if (!server) server = await start();
  };
  return {
    url,
    port,
    dataDir,
    stopServer,
    startServer,
    restart: async () => {
      await stopServer();
      await startServer();
    },
    crash: async () => {
      if (!server) return;
      const { pid } = server;
      process.kill(pid, 'SIGKILL');
      while (isAlive(pid)) await new Promise((resolve) => setTimeout(resolve, 20));
      await stopServer();
    },
    stop: async () => {
      await stopServer();
      await rm(dataDir, { recursive: true, force: true });
      await rm(home, { recursive: true, force: true });
    },
  };
}

export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export function urlForDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

function uniqueDatabaseName(prefix: string): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9_]+/g, '_').slice(0, 30) || 'test';
  return `${clean}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
