import type { Config } from '../config/index.js';
import { databaseOid } from '../replication/changes-slot.js';
import { startBroadcastPipeline, type DatabaseBroadcast } from '../replication/db-broadcast.js';
import { MessagesRelay } from '../replication/messages-relay.js';
import { broadcastSlotTag } from '../replication/slot-names.js';
import type { PubSubMessage } from '../shared/messages.js';
import { payloadLimitBytes } from './limits.js';
import type { ChildSpec } from './supervisor.js';
import type { TenantRuntime } from './tenant.js';

/** Never settles: the stream reconnects by itself, and a database that cannot replicate is checked again quietly. */
const RUNS_UNTIL_STOPPED = new Promise<never>(() => undefined);

/**
 * The tenant's database-broadcast stream. On a database whose settings rule logical replication out (wal_level),
 * it does not connect at all: the problem is logged once (ReplicationCheck) and the settings are checked again every
 * probe interval, quietly, until they allow it.
 */
export function replicationChild(runtime: TenantRuntime, config: Config, publish: (msg: PubSubMessage) => void): ChildSpec {
  return {
    name: 'replication',
    async start() {
      let pipeline: DatabaseBroadcast | null = null;
      let stopped = false;
      let timer: NodeJS.Timeout | null = null;

      const startPipeline = async (): Promise<void> => {
        const oid = await databaseOid(await runtime.database());
        if (stopped) return;
        const limits = runtime.settings.limits;
        runtime.messagesRelay ??= new MessagesRelay({
          tenantId: runtime.id,
          publish: (msg) => {
            // An owner whose lease may have lapsed (a paused process) leaves the broadcast to the next owner.
            if (runtime.streamOwner !== null && !runtime.streamOwner.valid()) return;
            runtime.events.add(1);
            runtime.metrics.events.inc();
            publish(msg);
          },
          log: runtime.log.child({ replication: 'broadcast_from_database' }),
          payloadLimitBytes: () => payloadLimitBytes(limits.maxPayloadSizeInKb),
          allow: () => runtime.events.rate < limits.maxEventsPerSecond,
          metrics: {
            payloadBytes: runtime.metrics.broadcastPayload,
            latencyCommittedAt: runtime.metrics.broadcastFromDatabaseCommitted,
            latencyInsertedAt: runtime.metrics.broadcastFromDatabaseInserted,
          },
        });
        pipeline = startBroadcastPipeline(
          {
            databaseUrl: runtime.settings.databaseUrl,
            log: runtime.log,
            // Upstream's name plus a tag of the tenant and database: tenants whose databases share a cluster need
            // distinct slots.
            slotSuffix: [config.slotNameSuffix, broadcastSlotTag(runtime.id, oid)].filter(Boolean).join('_'),
            replication: { backoff: { initialMs: config.tenantBackoffMinMs, maxMs: config.tenantBackoffMaxMs } },
            // Started by the owned-streams gate after it set the owner: in a cluster the stream claims its fence.
            fence: runtime.streamOwner?.broadcastFence,
          },
          runtime.messagesRelay,
        );
        runtime.replication = pipeline;
      };

      /** Starts the pipeline when the settings allow it, else looks again later. */
      const attempt = async (): Promise<void> => {
        timer = null;
        if (stopped) return;
        try {
          if ((await runtime.replicationCheck.run()) === null) return await startPipeline();
        } catch (err) {
          runtime.log.debug({ err }, 'replication settings check failed; trying again');
        }
        if (stopped) return;
        timer = setTimeout(() => void attempt(), config.tenantDbProbeMs);
        timer.unref();
      };

      // Throws while the database is unreachable: the supervisor retries with backoff. Once it is reachable the
      // child runs, streaming or waiting for settings that allow it, as the stream itself runs while reconnecting.
      await runtime.database();
      void attempt();
      return {
        exited: RUNS_UNTIL_STOPPED,
        async stop() {
          stopped = true;
          if (timer) clearTimeout(timer);
          if (runtime.replication === pipeline) runtime.replication = null;
          await pipeline?.stop();
        },
      };
    },
  };
}
