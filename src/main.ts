import path from 'node:path';
import { signHs256 } from './auth/jwt.js';
import { MANAGEMENT_TOKEN_LIFETIME_SECONDS, signManagementToken } from './auth/management.js';
import { formatBanner, maskedDatabaseUrl, type BannerLine } from './banner.js';
import { redisTarget } from './cluster/redis.js';
import { parseArgs } from './cli.js';
import { ConfigError, DEFAULT_JWT_SECRET, jwtSecretWeakness, loadConfig, MIN_JWT_SECRET_LENGTH, type Config } from './config/index.js';
import { createLogger } from './observability/logger.js';
import { packageInfo } from './version.js';

/** Same claims as Supabase's local demo keys, so signing with the default secret gives the familiar keys. */
const KEY_EXPIRY = 1983812996;

async function main(): Promise<void> {
  const action = parseArgs(process.argv.slice(2));
  if (action.kind === 'print') {
    process.stdout.write(action.stdout);
    process.stderr.write(action.stderr);
    process.exitCode = action.exitCode;
    return;
  }
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
  // Loaded here, not at the top: --help and --version need neither the native uWS binding nor Postgres.
  const { assertPortAvailable } = await import('./http/listen.js');
  const { startEmbeddedPostgres } = await import('./db/embedded-postgres.js');
  const { startServer } = await import('./server.js');
  // Before an embedded Postgres takes seconds to start: a port that is visibly taken ends the start at once.
  await assertPortAvailable(config.host, config.port);

  let databaseUrl = config.databaseUrl;
  let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | null = null;
  const dataDir = path.resolve(config.dataDir, 'postgres');
  if (databaseUrl === null) {
    log.info({ dataDir }, 'DATABASE_URL is not set: starting an embedded Postgres');
    embedded = await startEmbeddedPostgres({
      dataDir,
      systemDir: config.systemDir,
      logger: (line) => log.debug({ postgres: line }),
    });
    for (const notice of embedded.notices) log.info({ dataDir }, `embedded Postgres: ${notice}`);
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
  const managementToken = await signManagementToken(server.management.primary);
  const managementSecretFrom = server.management.file ?? 'API_JWT_SECRET';
  const lines: BannerLine[] = [
    ['API URL', server.url],
    ['Realtime (ws)', `${server.url.replace(/^http/, 'ws')}/realtime/v1/websocket`],
    ['Tenant', config.tenantId],
    ['anon key', anonKey],
    ['service_role key', serviceKey],
    ['management token', managementToken],
    ['', `(management API /api/tenants; valid ${MANAGEMENT_TOKEN_LIFETIME_SECONDS / 3600} h; secret: ${managementSecretFrom})`],
    // The embedded database listens on 127.0.0.1 only (on the port of the last start when free), with a generated password.
    ['Database URL', embedded ? embedded.url : maskedDatabaseUrl(databaseUrl)],
    ...(embedded ? ([['Database', `embedded Postgres, data in ${embedded.home}`]] as BannerLine[]) : []),
    // Running as root from a private directory: say where things are instead, and why.
    ...(embedded?.notices ?? []).map((notice): BannerLine => ['', `(${notice})`]),
    ...(replicationProblem ? ([['Replication', `UNAVAILABLE. ${replicationProblem.message}`]] as BannerLine[]) : []),
    ...clusterLines(config, server.ctx.cluster.membership.members().length),
  ];
  const notes =
    config.jwtSecret === DEFAULT_JWT_SECRET && isLoopback(config.host)
      ? [`Listening on ${config.host} only, since the demo JWT_SECRET is in use: set JWT_SECRET (${MIN_JWT_SECRET_LENGTH}+ characters) or HOST to serve other machines.`]
      : [];
  process.stdout.write(formatBanner(`Performer ${packageInfo.version} is running.`, lines, notes));
  log.info({ url: server.url, tenant: config.tenantId }, 'listening');
  const weakness = jwtSecretWeakness(config.jwtSecret);
  if (weakness) log.warn(`${weakness}; set JWT_SECRET to a random string of ${MIN_JWT_SECRET_LENGTH}+ characters`);

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

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

main().catch((err: unknown) => {
  // A taken port is an operator's situation, not a bug: its message says it all.
  const text = err instanceof Error && err.name === 'ListenError' ? err.message : ((err as Error).stack ?? String(err));
  process.stderr.write(`Performer failed to start: ${text}\n`);
  process.exit(1);
});

/** The banner's cluster line: this node's name, its Redis (password masked) and the members it sees; none when alone. */
function clusterLines(config: Config, members: number): BannerLine[] {
  const target = redisTarget(config);
  if (target === null) return [];
  const where = 'url' in target ? maskedDatabaseUrl(target.url) : `Redis Cluster ${target.clusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  return [['Cluster', `node ${config.nodeName} via ${where}, ${members} live member${members === 1 ? '' : 's'}`]];
}
