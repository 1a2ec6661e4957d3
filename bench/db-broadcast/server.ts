import { serveServerRequests } from '../broadcast/common.js';
import { loadPerformer } from '../common/performer.js';
import { benchServerEnv, tenantReplicationUp } from '../common/server-env.js';

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

const config = loadConfig(benchServerEnv(url, 'performer-bench-db-broadcast-data'));

const started = Date.now();
const server = await startServer(config, { databaseUrl: url });
serveServerRequests(() => server.stop());

await tenantReplicationUp(server, config.tenantId);

const token = await signHs256({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 3 * 3600 }, config.jwtSecret);
process.send?.({ type: 'ready', port: server.port, token, replicationMs: Date.now() - started });
