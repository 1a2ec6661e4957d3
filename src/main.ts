import path from 'node:path';
import { signHs256 } from './auth/jwt.js';
import { ConfigError, loadConfig, type Config } from './config/index.js';
import { startEmbeddedPostgres } from './db/embedded-postgres.js';
import { createLogger } from './observability/logger.js';
import { startServer } from './server.js';

/** Same claims as Supabase's local demo keys, so signing with the default secret gives the familiar keys. */
const KEY_EXPIRY = 1983812996;

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`Invalid configuration: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  let databaseUrl = config.databaseUrl;
  let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | null = null;
  const dataDir = path.resolve(config.dataDir, 'postgres');
  if (databaseUrl === null) {
    log.info({ dataDir }, 'DATABASE_URL is not set: starting an embedded Postgres');
    embedded = await startEmbeddedPostgres({ dataDir, logger: (line) => log.debug({ postgres: line }) });
    databaseUrl = embedded.url;
  }
  const server = await startServer(config, { databaseUrl, log }).catch(async (err: unknown) => {
    await embedded?.stop();
    throw err;
  });
  // A database that cannot replicate is said up front, not only as a log line among others.
  const replicationProblem = await server.ctx.registry.get(config.tenantId)?.replicationCheck.run().catch(() => null);
  const anonKey = await signHs256({ iss: 'supabase-demo', role: 'anon', exp: KEY_EXPIRY }, config.jwtSecret);
  const serviceKey = await signHs256({ iss: 'supabase-demo', role: 'service_role', exp: KEY_EXPIRY }, config.jwtSecret);
  process.stdout.write(
    [
      '',
      'Performer is running.',
      `         API URL: ${server.url}`,
      `   Realtime (ws): ${server.url.replace(/^http/, 'ws')}/realtime/v1/websocket`,
      `          Tenant: ${config.tenantId}`,
      `        anon key: ${anonKey}`,
      `service_role key: ${serviceKey}`,
      `        Database: ${embedded ? `embedded Postgres, data in ${dataDir}` : 'DATABASE_URL'}`,
      ...(replicationProblem ? [`     Replication: UNAVAILABLE. ${replicationProblem.message}`] : []),
      '',
      '',
    ].join('\n'),
  );
  log.info({ url: server.url, tenant: config.tenantId }, 'listening');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    (async () => {
      await server.stop();
      await embedded?.stop();
    })().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // A promise rejected with nobody listening is a bug; log it loudly, but one tenant's bug must not end the
  // process that serves every other tenant.
  process.on('unhandledRejection', (err) => log.error({ err, error_code: 'UnhandledRejection' }, 'unhandled promise rejection'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`Performer failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
