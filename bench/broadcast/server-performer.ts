import { serveServerRequests } from './common.js';
import { loadPerformer } from '../common/performer.js';
import { benchServerEnv } from '../common/server-env.js';

const { loadConfig, startServer, signHs256 } = await loadPerformer();

/**
 * Performer in its own process for the bench (so its CPU and RSS are measured apart from the load generator).
 * Limits are raised so the tenant limits never cut a run short (run.ts recreates the database for every run, since
 * the default tenant's limits are stored on creation only). Reports `{ type: 'ready', port, token }` over IPC;
 * `token` is an anon JWT signed with the server's secret.
 */
const url = process.env.BENCH_DATABASE_URL;
if (!url) throw new Error('BENCH_DATABASE_URL is required');

const config = loadConfig(benchServerEnv(url, process.env.BENCH_DATA_NAME ?? 'performer-bench-data'));
const server = await startServer(config, { databaseUrl: url });
const token = await signHs256({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 3 * 3600 }, config.jwtSecret);
process.send?.({ type: 'ready', port: server.port, token });
serveServerRequests(() => server.stop());
