import type { Config } from '../config/index.js';
import type { LocalPublisher, Publisher } from '../shared/messages.js';
import type { OwnedStreams } from './owned-streams.js';
import { changesChild } from './changes.js';
import { databaseChild } from './database-child.js';
import { startJanitor } from './janitor.js';
import { replicationChild } from './replication-child.js';
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
  pubsub: Publisher,
  moduleChildren: readonly ChildSpec[] = [],
  owned: OwnedStreams | null = null,
  changesPublisher: LocalPublisher = pubsub,
): ChildSpec[] {
  const children: ChildSpec[] = [databaseChild(runtime, config.tenantDbProbeMs)];
  // Database broadcasts enter pub/sub like any other message.
  const streams = [replicationChild(runtime, config, (msg) => pubsub.publish(msg, null)), changesChild(runtime, config, changesPublisher)];
  // In a cluster they run on the tenant's owner only.
  children.push(...(owned === null ? streams : [owned.child(runtime, streams)]));
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
