import { payloadLimitBytes } from '../channels/broadcast.js';
import type { PubSubMessage } from '../cluster/pubsub.js';
import type { Config } from '../config/index.js';
import { databaseTag } from '../replication/slot-names.js';
import { startBroadcastPipeline } from '../replication/db-broadcast.js';
import { MessagesRelay } from '../replication/messages-relay.js';
import { changesChild } from './changes.js';
import { databaseChild } from './database-child.js';
import { startJanitor } from './janitor.js';
import type { ChildSpec } from './supervisor.js';
import type { TenantRuntime } from './tenant.js';

/** Never settles: for children that recover on their own (the replication stream reconnects itself). */
const RUNS_UNTIL_STOPPED = new Promise<never>(() => undefined);

/**
 * What every tenant runs under its supervisor: its database, the database-broadcast stream, Postgres Changes, the
 * janitor, then `moduleChildren`: what the HTTP modules run per tenant (http/module.ts).
 */
export function tenantChildren(
  runtime: TenantRuntime,
  config: Config,
  publish: (msg: PubSubMessage) => void,
  moduleChildren: readonly ChildSpec[] = [],
): ChildSpec[] {
  const children: ChildSpec[] = [databaseChild(runtime, config.tenantDbProbeMs)];
  children.push({
    name: 'replication',
    async start() {
      await runtime.database();
      const limits = runtime.settings.limits;
      runtime.messagesRelay ??= new MessagesRelay({
        tenantId: runtime.id,
        publish: (msg) => {
          runtime.events.add(1);
          publish(msg);
        },
        log: runtime.log.child({ replication: 'broadcast_from_database' }),
        payloadLimitBytes: () => payloadLimitBytes(limits.maxPayloadSizeInKb),
        allow: () => runtime.events.rate < limits.maxEventsPerSecond,
      });
      const broadcast = startBroadcastPipeline(
        {
          databaseUrl: runtime.settings.databaseUrl,
          log: runtime.log,
          // Upstream's name plus a tag of the database: tenants whose databases share a cluster need distinct slots.
          slotSuffix: [config.slotNameSuffix, databaseTag(runtime.settings.databaseUrl)].filter(Boolean).join('_'),
          replication: { backoff: { initialMs: config.tenantBackoffMinMs, maxMs: config.tenantBackoffMaxMs } },
        },
        runtime.messagesRelay,
      );
      runtime.replication = broadcast;
      return {
        exited: RUNS_UNTIL_STOPPED,
        async stop() {
          runtime.replication = null;
          await broadcast.stop();
        },
      };
    },
  });
  children.push(changesChild(runtime, config));
  if (config.runJanitor) {
    children.push({
      name: 'janitor',
      async start() {
        const janitor = startJanitor({ pool: () => runtime.database(), log: runtime.log, intervalMs: config.janitorIntervalMs });
        return { exited: RUNS_UNTIL_STOPPED, stop: async () => janitor.stop() };
      },
    });
  }
  children.push(...moduleChildren);
  return children;
}
