import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';

/** The machine's PostgreSQL the benches without an embedded one use (BENCH_PG_ADMIN_URL: another server). */
const ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Database `name` on the machine's PostgreSQL, dropped and created again: the default tenant's limits are stored when
 * the tenant is first created, so a database left by an older run could keep lower ones. Returns its URL.
 */
export async function recreateDatabase(name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

/** An embedded Postgres (wal_level=logical, fsync off) in a directory of its own under os.tmpdir(). */
export interface BenchPostgres {
  server: EmbeddedPostgres;
  /** The run's scratch directory (Postgres' data in `pg/`); removed by stop(). */
  dir: string;
  stop(): Promise<void>;
}

export async function startBenchPostgres(name: string): Promise<BenchPostgres> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `performer-bench-${name}-`));
  chmodSync(dir, 0o755);
  const t0 = Date.now();
  try {
    const server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), ephemeral: true });
    console.log(`embedded Postgres up in ${Date.now() - t0} ms (pid ${server.pid}, port ${server.port})`);
    return {
      server,
      dir,
      stop: async () => {
        await server.stop().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A session of the load generator, with its backend's pid (its CPU is read apart from the server's). */
export interface Session {
  client: pg.Client;
  pid: number;
}

/** `count` connected sessions named `appName` (pg_stat_activity.application_name). */
export async function connectSessions(url: string, count: number, appName: (i: number) => string): Promise<Session[]> {
  const out: Session[] = [];
  for (let i = 0; i < count; i++) {
    const client = new pg.Client({ connectionString: url, application_name: appName(i) });
    // Errors surface through the query promises; a connection ended by the shutdown must not crash the run.
    client.on('error', () => undefined);
    await client.connect();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    out.push({ client, pid: rows[0]!.pid });
  }
  return out;
}
