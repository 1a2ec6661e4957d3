import type pg from 'pg';
import { managementSecrets, type ManagementSecrets } from './auth/management.js';
import type { ChannelsContext } from './channels/context.js';
import { Fanout, isPresenceTopicKey } from './channels/fanout.js';
import { LocalPubSub, type PubSubMessage } from './cluster/pubsub.js';
import type { Config } from './config/index.js';
import { createApp } from './http/app.js';
import { uws, type us_listen_socket, type WebSocket } from './http/uws.js';
import { startHeapTrim } from './observability/heap-trim.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { encryptionKey, ensureDefaultTenant } from './tenants/bootstrap.js';
import { tenantChildren } from './tenants/children.js';
import { shutdownTopic, trafficLimitHit } from './tenants/limits.js';
import { ensureMessagePartitions, migrateTenantDatabase } from './tenants/migrate.js';
import { TenantRegistry } from './tenants/registry.js';
import { SecretBox } from './tenants/secrets.js';
import { TenantStore } from './tenants/store.js';

export interface RunningServer {
  port: number;
  url: string;
  ctx: ChannelsContext;
  /** The management API's secrets (API_JWT_SECRET or the generated one). */
  management: ManagementSecrets;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** The default tenant's database (DATABASE_URL or the embedded one). */
  databaseUrl: string;
  log?: Logger;
}

/** Brings a tenant database to the schema Performer needs; runs once per tenant start. */
async function prepareTenantDatabase(pool: pg.Pool, log: Logger): Promise<void> {
  const { applied } = await migrateTenantDatabase(pool, (message) => log.info(message));
  if (applied.length > 0) log.info({ applied }, 'tenant database migrated');
  await ensureMessagePartitions(pool);
}

/** Starts the HTTP/WebSocket server on the configured host and port (0 = any free port). */
export async function startServer(config: Config, opts: ServerOptions): Promise<RunningServer> {
  const log = opts.log ?? createLogger(config.logLevel);
  const metrics = new Metrics();
  const management = await managementSecrets(config);
  if (management.file !== null) log.info({ file: management.file }, 'API_JWT_SECRET is not set: the management API secret is kept in the data dir');
  const store = await TenantStore.open(config.controlDatabaseUrl ?? opts.databaseUrl, new SecretBox(await encryptionKey(config)), log);
  await ensureDefaultTenant(store, config, opts.databaseUrl);
  // Database broadcasts enter pub/sub like any other message; bound once pub/sub exists.
  let publish: (msg: PubSubMessage) => void = () => undefined;
  const registry = new TenantRegistry(store, log, prepareTenantDatabase, {
    defaultTenantId: config.tenantId,
    dbPoolSize: config.dbPoolSize,
    refreshMs: config.tenantCacheExpirationMs,
    rates: { tickMs: config.rateCounterTickMs, windowMs: config.rateCounterWindowMs },
    claimValidators: config.jwtClaimValidators,
    supervisor: {
      backoffMinMs: config.tenantBackoffMinMs,
      backoffMaxMs: config.tenantBackoffMaxMs,
      idleStopMs: config.tenantIdleStopMs,
      idleCheckMs: Math.min(60_000, config.tenantIdleStopMs),
    },
    children: (runtime) => tenantChildren(runtime, config, (msg) => publish(msg)),
  });
  await registry.load();

  let fanout: Fanout | null = null;
  const deliverLocal = (msg: PubSubMessage, exclude: WebSocket<unknown> | null) => {
    if (!fanout) return;
    const tenant = registry.peek(msg.tenantId);
    if (isPresenceTopicKey(msg.key)) {
      // presence_diff (presence issue): counts against the presence rate, not the message rate, and is not held
      // back by the message-rate limiter (presence has its own, checked at track and at presence_state).
      const stats = fanout.deliver(msg.key, `realtime:${msg.subTopic}`, msg.env, exclude);
      tenant?.presenceEvents.add(stats.deliveries);
      metrics.channelPresenceEvents.inc({ tenant: msg.tenantId }, stats.deliveries);
      metrics.outputBytes.inc({ tenant: msg.tenantId }, stats.bytes);
      return;
    }
    if (tenant) {
      const hit = trafficLimitHit(tenant);
      if (hit) return shutdownTopic(tenant, msg.key, hit.message, hit.code);
    }
    const stats = fanout.deliver(msg.key, `realtime:${msg.subTopic}`, msg.env, exclude);
    if (stats.deliveries === 0) return;
    tenant?.events.add(stats.deliveries);
    tenant?.bytes.add(stats.bytes);
    const series = metrics.forTenant(msg.tenantId);
    series.events.inc(stats.deliveries);
    series.outputBytes.inc(stats.bytes);
  };
  const ctx: ChannelsContext = { config, registry, pubsub: new LocalPubSub(deliverLocal), metrics, log, fanout: null, shuttingDown: false };
  const app = createApp(ctx, management.accepted);
  fanout = new Fanout(app);
  ctx.fanout = fanout;
  publish = (msg) => ctx.pubsub.publish(msg, null);
  metrics.tenantsRunning = () => registry.running().length;
  // Upstream's sweeper: a socket that has had no channel for a whole period holds resources for nothing.
  const sweeper = setInterval(() => {
    const cutoff = Date.now() - config.noChannelTimeoutMs;
    for (const tenant of registry.running()) {
      for (const socket of [...tenant.sockets]) {
        const idle = socket.idleSince;
        if (idle !== null && idle <= cutoff) socket.disconnect(1000, null);
      }
    }
  }, config.noChannelTimeoutMs);
  sweeper.unref();

  // Start the default tenant now, so its database is migrated before the first client arrives.
  const defaultTenant = registry.get(config.tenantId);
  await defaultTenant?.database().catch((err: unknown) => {
    log.error({ err, tenant: config.tenantId, error_code: 'UnableToConnectToProject' }, 'default tenant database is not reachable yet');
  });

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.port, (socket) => {
      if (socket) resolve(socket);
      else reject(new Error(`cannot listen on ${config.host}:${config.port}`));
    });
  }).catch(async (err: unknown) => {
    await registry.stop();
    throw err;
  });
  const port = uws.us_socket_local_port(listenSocket as never);
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;

  // V8 keeps the young generation a burst of joins grew until long after it ended; given back once idle.
  const stopHeapTrim = startHeapTrim();

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      ctx.shuttingDown = true;
      clearInterval(sweeper);
      stopHeapTrim();
      uws.us_listen_socket_close(listenSocket);
      for (const tenant of registry.running()) {
        for (const socket of [...tenant.sockets]) socket.disconnect(1001, null);
      }
      await waitFor(() => registry.running().every((t) => t.sockets.size === 0), 2000);
      await ctx.pubsub.close();
      await registry.stop();
    })();
    return stopping;
  };
  return { port, url: `http://${shownHost}:${port}`, ctx, management, stop };
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}
