import os from 'node:os';
import path from 'node:path';
import { serveServerRequests } from '../broadcast/common.js';
import { loadPerformer } from '../common/performer.js';

const { loadConfig, startServer, signHs256 } = await loadPerformer();

/**
 * Performer in its own process for the database-broadcast bench (its CPU is read apart from Postgres and the load
 * generator). BENCH_DATABASE_URL is the embedded Postgres run.ts started (wal_level=logical); the default tenant
 * streams realtime.messages from it. Reports `{ type: 'ready', port, token, replicationMs }` over IPC once the
 * tenant's replication stream is up (so the first realtime.send of a run is not lost before the slot exists);
 * serves `profileStart` / `profileStop` / `gc` / `stop` (bench/broadcast/common.ts).
 */
const url = process.env.BENCH_DATABASE_URL;
if (!url) throw new Error('BENCH_DATABASE_URL is required');

const config = loadConfig({
  PORT: '0',
  HOST: '127.0.0.1',
  DATABASE_URL: url,
  LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'silent',
  TENANT_MAX_CONCURRENT_USERS: '100000',
  TENANT_MAX_EVENTS_PER_SECOND: '100000000',
  TENANT_MAX_JOINS_PER_SECOND: '100000',
  TENANT_MAX_CHANNELS_PER_CLIENT: '100',
  // The tenant store keeps this in an int4 column: 2 GB/s is the largest that fits (1e11 would not insert).
  TENANT_MAX_BYTES_PER_SECOND: '2000000000',
  // Keep the encryption key and data dir out of the working tree.
  DB_ENC_KEY: 'performer-bench-encryption-key-not-a-secret',
  PERFORMER_DATA_DIR: path.join(os.tmpdir(), 'performer-bench-db-broadcast-data'),
});

const started = Date.now();
const server = await startServer(config, { databaseUrl: url });
serveServerRequests(() => server.stop());

// Bounded wait for the default tenant's realtime.messages stream.
const deadline = Date.now() + 60_000;
for (;;) {
  const status = server.ctx.registry.peek(config.tenantId)?.replication?.status;
  if (status === 'up') break;
  if (Date.now() > deadline) throw new Error(`replication stream not up after 60 s (status ${status ?? 'none'})`);
  await new Promise((r) => setTimeout(r, 50));
}

const token = await signHs256({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 3 * 3600 }, config.jwtSecret);
process.send?.({ type: 'ready', port: server.port, token, replicationMs: Date.now() - started });
