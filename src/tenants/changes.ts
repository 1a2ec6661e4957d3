import type { Config } from '../config/index.js';
import { ChangesEngine } from '../replication/changes-engine.js';
import type { LocalPublisher } from '../shared/messages.js';
import type { ChildSpec } from './supervisor.js';
import type { TenantRuntime } from './tenant.js';

/**
 * The tenant's Postgres Changes engine, created on first use; it stops itself (and drops its slot) when idle. `pubsub`
 * is the node's (one per server: every caller passes the same).
 */
export function changesEngine(runtime: TenantRuntime, config: Config, pubsub: LocalPublisher): ChangesEngine {
  if (runtime.changes) return runtime.changes;
  const engine = new ChangesEngine({
    tenantId: runtime.id,
    databaseUrl: runtime.settings.databaseUrl,
    publication: runtime.settings.publication ?? 'supabase_realtime',
    node: config.nodeName,
    log: runtime.log,
    pool: () => runtime.database(),
    graceMs: config.changesGraceMs,
    idleDropMs: config.changesSlotIdleDropMs,
    maxLagBytes: config.changesMaxLagBytes,
    lagCheckMs: config.changesLagCheckMs,
    slotWarnBytes: config.changesSlotWarnBytes,
    rlsBatch: config.changesRlsBatch,
    pipeline: config.changesPipeline,
    backoff: { initialMs: config.tenantBackoffMinMs, maxMs: config.tenantBackoffMaxMs },
    pubsub,
    // Changes have their own counter, as upstream's db_events: broadcast traffic cannot hold them back.
    allow: () => runtime.dbEvents.rate < runtime.settings.limits.maxEventsPerSecond,
    onDeliveries: (n) => {
      runtime.dbEvents.add(n);
      runtime.metrics.dbEvents.inc(n);
    },
    metrics: { payloadBytes: runtime.metrics.postgresChangesPayload, authorizationMs: runtime.metrics.postgresChangesAuthorization },
    onStopped: () => {
      if (runtime.changes === engine) runtime.changes = null;
    },
    messages: () => runtime.replication,
    fence: runtime.streamOwner?.fence,
    published: runtime.streamOwner?.published,
  });
  runtime.changes = engine;
  return engine;
}

/**
 * At tenant start: if an earlier run left subscribers behind, start streaming now, so their changes are held
 * for them from the first moment instead of when the first of them rejoins.
 */
export function changesChild(runtime: TenantRuntime, config: Config, pubsub: LocalPublisher): ChildSpec {
  return {
    name: 'postgres_changes',
    async start() {
      const pool = await runtime.database();
      const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM realtime.performer_changes_subscribers WHERE tenant = $1', [runtime.id]);
      // A database that cannot replicate is reported by the replication check; rejoining subscribers hear it then.
      if ((rows[0]?.n ?? 0) > 0 && (await runtime.replicationCheck.run()) === null) await changesEngine(runtime, config, pubsub).start();
      return {
        exited: new Promise<never>(() => undefined),
        async stop() {
          // The tenant is stopping: its database-broadcast pipeline stops too, nothing to hand back.
          await runtime.changes?.stop(false, false);
        },
      };
    },
  };
}
