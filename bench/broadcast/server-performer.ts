import os from 'node:os';
import path from 'node:path';
import { serveServerRequests } from './common.js';
import { loadPerformer } from '../common/performer.js';

const { loadConfig, startServer, signHs256 } = await loadPerformer();

/**
 * Performer in its own process for the bench (so its CPU and RSS are measured apart from the load generator).
 * Limits are raised so the tenant limits never cut a run short (run.ts recreates the database for every run, since
 * the default tenant's limits are stored on creation only). Reports `{ type: 'ready', port, token }` over IPC;
 * `token` is an anon JWT signed with the server's secret.
 */
const url = process.env.BENCH_DATABASE_URL;
if (!url) throw new Error('BENCH_DATABASE_URL is required');

const config = loadConfig({
  PORT: '0',
  HOST: '127.0.0.1',
  DATABASE_URL: url,
  LOG_LEVEL: 'silent',
  TENANT_MAX_CONCURRENT_USERS: '100000',
  TENANT_MAX_EVENTS_PER_SECOND: '100000000',
  TENANT_MAX_JOINS_PER_SECOND: '100000',
  TENANT_MAX_CHANNELS_PER_CLIENT: '100',
  // Stored in an int4 column by the tenant store: 2 GB/s is the largest that fits.
  TENANT_MAX_BYTES_PER_SECOND: '2000000000',
  // Keep the encryption key out of the working tree (the default data dir is ./.performer).
  DB_ENC_KEY: 'performer-bench-encryption-key-not-a-secret',
  PERFORMER_DATA_DIR: path.join(os.tmpdir(), 'performer-bench-data'),
});
const server = await startServer(config, { databaseUrl: url });
const token = await signHs256({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 3 * 3600 }, config.jwtSecret);
process.send?.({ type: 'ready', port: server.port, token });
serveServerRequests(() => server.stop());
