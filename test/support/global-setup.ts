import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL (database `postgres`) of the shared embedded Postgres 18 with wal_level=logical. */
    pgAdminUrl: string;
  }
}

/** One Postgres for the whole run; test files isolate themselves with createTestDatabase(). */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-test-pg-'));
  let server;
  try {
    // Start failures carry the log tail; PERFORMER_TEST_PG_LOG=1 streams the whole server log.
    server = await startEmbeddedPostgres({
      dataDir,
      ephemeral: true,
      // Every running tenant holds a walsender and a temporary slot for database broadcasts; test files run two
      // at a time, each with several servers and tenants.
      settings: { max_replication_slots: 200, max_wal_senders: 200, max_connections: 600 },
      logger: process.env.PERFORMER_TEST_PG_LOG ? (line) => process.stderr.write(`[pg] ${line}\n`) : undefined,
    });
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  project.provide('pgAdminUrl', server.url);
  const running = server;
  return async () => {
    await running.stop();
    await rm(dataDir, { recursive: true, force: true });
    // Kept outside dataDir when root runs the tests with TMPDIR under a private directory.
    await rm(running.home, { recursive: true, force: true });
  };
}
