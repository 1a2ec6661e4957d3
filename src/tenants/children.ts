import type { PubSubMessage } from '../cluster/pubsub.js';
import type { Config } from '../config/index.js';
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
  publish: (msg: PubSubMessage) => void,
  moduleChildren: readonly ChildSpec[] = [],
): ChildSpec[] {
  const children: ChildSpec[] = [databaseChild(runtime, config.tenantDbProbeMs)];
  children.push(replicationChild(runtime, config, publish));
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
