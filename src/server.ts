import { managementSecrets, type ManagementSecrets } from './auth/management.js';
import type { Config } from './config/index.js';
import { startSocketSweeps } from './channels/sweeps.js';
import { createContext, type AppContext } from './context.js';
import { mountApp } from './http/app.js';
import { listenExclusive } from './http/listen.js';
import { moduleChildren, type Module } from './http/module.js';
import { uws } from './http/uws.js';
import { MODULES } from './modules.js';
import { startHeapTrim } from './observability/heap-trim.js';
import { createLogger, type Logger } from './observability/logger.js';
import { encryptionKey, ensureDefaultTenant } from './tenants/bootstrap.js';
import { SecretBox } from './tenants/secrets.js';
import { TenantStore } from './tenants/store.js';

export interface RunningServer {
  port: number;
  url: string;
  ctx: AppContext;
  /** The management API's secrets (API_JWT_SECRET or the generated one). */
  management: ManagementSecrets;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** The default tenant's database (DATABASE_URL or the embedded one). */
  databaseUrl: string;
  log?: Logger;
  /** The modules to mount; MODULES unless a test adds its own. */
  modules?: readonly Module[];
}

/** Starts the HTTP/WebSocket server on the configured host and port (0 = any free port). */
export async function startServer(config: Config, opts: ServerOptions): Promise<RunningServer> {
  const log = opts.log ?? createLogger(config.logLevel);
  const modules = opts.modules ?? MODULES;
  const management = await managementSecrets(config);
  if (management.file !== null) log.info({ file: management.file }, 'API_JWT_SECRET is not set: the management API secret is kept in the data dir');
  const store = await TenantStore.open(config.controlDatabaseUrl ?? opts.databaseUrl, new SecretBox(await encryptionKey(config)), log);
  await ensureDefaultTenant(store, config, opts.databaseUrl);
  const app = uws.App();
  const ctx = createContext(config, log, store, app, {
    managementSecrets: management.accepted,
    moduleChildren: (runtime, context) => moduleChildren(modules, runtime, context),
  });
  const { registry } = ctx;
  await registry.load();
  // Joins the cluster (when clustered) before serving; a Redis that is away is waited for in the background.
  await ctx.cluster.start();
  await ctx.clusterState?.start();
  mountApp(app, ctx, modules);
  const sweeps = startSocketSweeps(registry, config.noChannelTimeoutMs);

  // Start the default tenant now, so its database is migrated before the first client arrives.
  const defaultTenant = registry.get(config.tenantId);
  await defaultTenant?.database().catch((err: unknown) => {
    log.error({ err, tenant: config.tenantId, error_code: 'UnableToConnectToProject' }, 'default tenant database is not reachable yet');
  });

  const listenSocket = await listenExclusive(app, config.host, config.port).catch(async (err: unknown) => {
    sweeps.stop();
    await ctx.clusterState?.stop();
    await registry.stop();
    await ctx.pubsub.close();
    await ctx.cluster.stop();
    throw err;
  });
  const port = uws.us_socket_local_port(listenSocket as never);
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const loopback = config.host === '0.0.0.0' || config.host === '::' || config.host === 'localhost' ? '127.0.0.1' : config.host;
  ctx.selfUrl = `http://${loopback.includes(':') ? `[${loopback}]` : loopback}:${port}`;

  // V8 keeps the young generation a burst of joins grew until long after it ended; given back once idle.
  const stopHeapTrim = startHeapTrim();

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      ctx.shuttingDown = true;
      sweeps.stop();
      stopHeapTrim();
      uws.us_listen_socket_close(listenSocket);
      for (const tenant of registry.running()) {
        for (const socket of [...tenant.sockets]) socket.disconnect(1001, null);
      }
      await waitFor(() => registry.running().every((t) => t.sockets.size === 0), 2000);
      // Owned streams stop and their leases go, so another node takes over at once.
      await ctx.clusterState?.stop();
      // Tenants stop publishing first (their streams hand out what they read), then pub/sub closes.
      await registry.stop();
      await ctx.pubsub.close();
      await ctx.cluster.stop();
    })();
    return stopping;
  };
  return { port, url: `http://${shownHost}:${port}`, ctx, management, stop };
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}
