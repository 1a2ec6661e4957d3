import type pg from 'pg';
import type { TemplatedApp } from 'uWebSockets.js';
import { Dispatcher } from './channels/dispatcher.js';
import { Fanout } from './channels/fanout.js';
import { createPubSub } from './cluster/drivers.js';
import { createClusterNode, type ClusterNode } from './cluster/node.js';
import type { PubSub } from './cluster/pubsub.js';
import type { Config } from './config/index.js';
import type { Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { tenantChildren } from './tenants/children.js';
import { ClusterState } from './tenants/cluster-state.js';
import { ensureMessagePartitions, migrateTenantDatabase } from './tenants/migrate.js';
import { TenantRegistry } from './tenants/registry.js';
import { replicationFigures } from './tenants/replication-report.js';
import type { ControlPlane, TenantStore } from './tenants/store.js';
import type { ChildSpec } from './tenants/supervisor.js';
import type { TenantRuntime } from './tenants/tenant.js';

/** What every module of the server is given: one per server instance, built whole by createContext. */
export interface AppContext {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly registry: TenantRegistry;
  readonly pubsub: PubSub;
  /** This node's place in the cluster: Redis (or none), membership, identity. */
  readonly cluster: ClusterNode;
  /** Presence, tenant ownership and Postgres Changes across nodes; null when the node runs alone. */
  readonly clusterState: ClusterState | null;
  /** uWS pub/sub of this node's sockets: what channels subscribe to. */
  readonly fanout: Fanout;
  /** Where every message for this node's subscribers goes (pub/sub hands them to it). */
  readonly dispatcher: Dispatcher;
  /** The control database (closed with the registry) and the box for secrets kept in it. */
  readonly control: ControlPlane;
  /** Every secret a management API token may be signed with (ManagementSecrets.accepted), resolved at start. */
  readonly managementSecrets: readonly string[];
  /** This node's listener as a loopback URL (`http://127.0.0.1:<port>`), set once it listens. */
  selfUrl: string | null;
  /** Set when the node is stopping: new joins are refused with RealtimeRestarting. */
  shuttingDown: boolean;
}

/** What the wiring gives the context besides the configuration. */
export interface ContextOptions {
  /** Every secret a management API token may be signed with (ManagementSecrets.accepted). */
  managementSecrets: readonly string[];
  /** What the mounted HTTP modules run for each tenant under its supervisor (http/module.ts). */
  moduleChildren: (runtime: TenantRuntime, ctx: AppContext) => ChildSpec[];
}

/**
 * Builds the app-wide context in one go. The one circle in it (tenants publish into pub/sub, whose dispatcher counts
 * on their tenant, and run module children that are given the context) closes through `children`, which the
 * registry calls only when a tenant starts, after this returns.
 */
export function createContext(config: Config, log: Logger, store: TenantStore, app: TemplatedApp, opts: ContextOptions): AppContext {
  const metrics = new Metrics();
  const fanout = new Fanout(app);
  const registry = new TenantRegistry(store, log, prepareTenantDatabase, {
    defaultTenantId: config.tenantId,
    dbPoolSize: config.dbPoolSize,
    refreshMs: config.tenantCacheExpirationMs,
    rates: { tickMs: config.rateCounterTickMs, windowMs: config.rateCounterWindowMs },
    claimValidators: config.jwtClaimValidators,
    metrics: (tenantId) => metrics.forTenant(tenantId),
    nodeName: config.nodeName,
    supervisor: {
      backoffMinMs: config.tenantBackoffMinMs,
      backoffMaxMs: config.tenantBackoffMaxMs,
      idleStopMs: config.tenantIdleStopMs,
      idleCheckMs: Math.min(60_000, config.tenantIdleStopMs),
    },
    children: (runtime) =>
      tenantChildren(runtime, config, pubsub, opts.moduleChildren(runtime, ctx), clusterState?.owned ?? null, clusterState?.changesPublisher ?? pubsub),
  });
  const dispatcher = new Dispatcher(registry, metrics, fanout);
  const cluster = createClusterNode(config, log, metrics.cluster, {
    report: { connections: () => registry.running().reduce((n, tenant) => n + tenant.sockets.size, 0) },
    tenants: () => registry.running(),
  });
  const pubsub = createPubSub(config, dispatcher, { redis: cluster.redis, origin: cluster.instance, metrics: metrics.cluster, log });
  const clusterState =
    cluster.redis === null
      ? null
      : new ClusterState({ config, log, registry, local: pubsub, redis: cluster.redis, membership: cluster.membership, metrics: metrics.cluster });
  metrics.tenantsRunning = () => registry.running().length;
  metrics.replicationFigures = () => registry.running().map(replicationFigures);
  const ctx: AppContext = { config, log, metrics, registry, pubsub, cluster, clusterState, fanout, dispatcher, control: store.control, managementSecrets: opts.managementSecrets, selfUrl: null, shuttingDown: false };
  return ctx;
}

/** Brings a tenant database to the schema Performer needs; runs once per tenant start. */
async function prepareTenantDatabase(pool: pg.Pool, log: Logger): Promise<void> {
  const { applied } = await migrateTenantDatabase(pool, (message) => log.info(message));
  if (applied.length > 0) log.info({ applied }, 'tenant database migrated');
  await ensureMessagePartitions(pool);
}
