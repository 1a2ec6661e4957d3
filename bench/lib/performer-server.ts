import os from 'node:os';
import path from 'node:path';
import { loadPerformer } from './performer.js';
import { serveServerRequests, settledMemory } from './serve.js';

/**
 * Performer in a bench's child process (started by startPerformer in ./performer.ts), from this tree's dist/ or the
 * build in BENCH_PERFORMER_DIST. Its configuration: tenant limits raised so that none cuts a run short (the default
 * tenant stores its limits when it is created, so a bench recreates its database to change them), logs off unless
 * BENCH_LOG_LEVEL says otherwise, the encryption key and data directory kept out of the working tree; the entries of
 * BENCH_SERVER_ENV (JSON) are added or win. With BENCH_WAIT_REPLICATION=1 it reports ready once the default tenant's
 * database-broadcast stream is up, so no run measures its start.
 *
 * IPC: `{ type: 'ready', port, token, serviceToken, startMs, replicationMs }` (token: an anon JWT signed with the
 * server's secret, serviceToken: a service_role one);
 * the commands of ../lib/serve.ts, `settled` with the tenant's presence entry count.
 */
const url = process.env.BENCH_DATABASE_URL;
if (!url) throw new Error('BENCH_DATABASE_URL is required');

const { loadConfig, startServer, signHs256 } = await loadPerformer();
const config = loadConfig({
  PORT: '0',
  HOST: '127.0.0.1',
  DATABASE_URL: url,
  LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'silent',
  TENANT_MAX_CONCURRENT_USERS: '1000000',
  TENANT_MAX_EVENTS_PER_SECOND: '1000000000',
  TENANT_MAX_JOINS_PER_SECOND: '1000000',
  TENANT_MAX_CHANNELS_PER_CLIENT: '1000',
  // The tenant store keeps this in an int4 column: 2 GB/s is the largest that fits.
  TENANT_MAX_BYTES_PER_SECOND: '2000000000',
  TENANT_MAX_PRESENCE_EVENTS_PER_SECOND: '100000000',
  CLIENT_PRESENCE_MAX_CALLS: '1000',
  DB_ENC_KEY: 'performer-bench-encryption-key-not-a-secret',
  PERFORMER_DATA_DIR: path.join(os.tmpdir(), process.env.BENCH_DATA_NAME ?? 'performer-bench-data'),
  ...(JSON.parse(process.env.BENCH_SERVER_ENV || '{}') as Record<string, string>),
});

type Server = Awaited<ReturnType<typeof startServer>>;
type Tenant = { replication?: { status: string } | null; presence?: { size: number } } | null | undefined;
const tenant = (server: Server): Tenant => (server.ctx as unknown as { registry: { peek(id: string): Tenant } }).registry.peek(config.tenantId);

const started = Date.now();
const server = await startServer(config, { databaseUrl: url });
const startMs = Date.now() - started;
serveServerRequests(() => server.stop(), {
  settled: async () => ({ ...(await settledMemory()), entries: tenant(server)?.presence?.size ?? 0 }),
});

if (process.env.BENCH_WAIT_REPLICATION === '1') {
  for (const deadline = Date.now() + 60_000; tenant(server)?.replication?.status !== 'up'; ) {
    if (Date.now() > deadline) throw new Error(`tenant replication not up after 60 s (status ${tenant(server)?.replication?.status ?? 'none'})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const token = await signHs256({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 3 * 3600 }, config.jwtSecret);
const serviceToken = await signHs256({ role: 'service_role', exp: Math.floor(Date.now() / 1000) + 3 * 3600 }, config.jwtSecret);
process.send?.({ type: 'ready', port: server.port, token, serviceToken, startMs, replicationMs: Date.now() - started });
