import os from 'node:os';
import path from 'node:path';
import { serveServerRequests } from '../broadcast/common.js';
import { loadPerformer } from '../common/performer.js';

// The tsc build in dist/, as `npm start` runs it (run.ts builds it first).
const { loadConfig, startServer } = await loadPerformer();

/**
 * Performer in its own process for the Postgres Changes bench (its CPU is read apart from Postgres and the load
 * generator). BENCH_DATABASE_URL is the embedded Postgres run.ts started (wal_level=logical); BENCH_JWT_SECRET is
 * the secret run.ts signs the subscribers' tokens with. Tenant limits are raised so they never cut a run short.
 * Reports `{ type: 'ready', port }` over IPC once the tenant is up (its database broadcast stream included, so its
 * start-up is not inside a measured run); serves `profileStart` / `profileStop` / `gc` / `stop`
 * (bench/broadcast/common.ts).
 */
const url = process.env.BENCH_DATABASE_URL;
const secret = process.env.BENCH_JWT_SECRET;
if (!url || !secret) throw new Error('BENCH_DATABASE_URL and BENCH_JWT_SECRET are required');

const config = loadConfig({
  PORT: '0',
  HOST: '127.0.0.1',
  DATABASE_URL: url,
  JWT_SECRET: secret,
  LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'silent',
  TENANT_MAX_CONCURRENT_USERS: '100000',
  TENANT_MAX_EVENTS_PER_SECOND: '1000000000',
  TENANT_MAX_JOINS_PER_SECOND: '100000',
  TENANT_MAX_CHANNELS_PER_CLIENT: '1000',
  // The tenant store keeps this in an int4 column: 2 GB/s is the largest that fits (1e11 would not insert).
  TENANT_MAX_BYTES_PER_SECOND: '2000000000',
  // Keep the encryption key and data dir out of the working tree.
  DB_ENC_KEY: 'performer-bench-encryption-key-not-a-secret',
  PERFORMER_DATA_DIR: process.env.BENCH_DATA_DIR ?? path.join(os.tmpdir(), 'performer-bench-changes-data'),
});

const started = Date.now();
const server = await startServer(config, { databaseUrl: url });
serveServerRequests(() => server.stop());

// Bounded wait for the default tenant (and its realtime.messages stream) to be up.
const deadline = Date.now() + 60_000;
for (;;) {
  const status = server.ctx.registry.peek(config.tenantId)?.replication?.status;
  if (status === 'up') break;
  if (Date.now() > deadline) throw new Error(`tenant replication not up after 60 s (status ${status ?? 'none'})`);
  await new Promise((r) => setTimeout(r, 50));
}

process.send?.({ type: 'ready', port: server.port, startMs: Date.now() - started });
