import { serveServerRequests } from '../broadcast/common.js';
import { loadPerformer } from '../common/performer.js';
import { benchServerEnv, tenantReplicationUp } from '../common/server-env.js';

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

// BENCH_CHANGES_RLS_BATCH=false: one RLS transaction per viewer, the check before issue 14 (run.ts --scale).
const config = loadConfig(benchServerEnv(url, 'performer-bench-changes-data', { JWT_SECRET: secret, CHANGES_RLS_BATCH: process.env.BENCH_CHANGES_RLS_BATCH ?? 'true' }));

const started = Date.now();
const server = await startServer(config, { databaseUrl: url });
serveServerRequests(() => server.stop());

await tenantReplicationUp(server, config.tenantId);

process.send?.({ type: 'ready', port: server.port, startMs: Date.now() - started });
