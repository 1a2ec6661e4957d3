import type { ReplicationFigures } from '../observability/metrics.js';
import type { TenantRuntime } from './tenant.js';

/** A tenant's replication as health checks show it. */
export interface ReplicationReport {
  /**
   * up: the tenant's database is streamed; down: not streamed right now (starting, reconnecting, database down);
   * unavailable: the database's settings rule logical replication out (`problem` says which and how to fix it).
   */
  state: 'up' | 'down' | 'unavailable';
  problem: { setting: string; value: string; required: string; message: string } | null;
  /** Postgres Changes: null while nobody subscribes. */
  postgres_changes: {
    state: string;
    slot: string | null;
    subscribers: number;
    slot_lag_bytes: number | null;
    retained_wal_bytes: number | null;
  } | null;
}

export function replicationReport(runtime: TenantRuntime): ReplicationReport {
  const problem = runtime.replicationCheck.problem;
  const changes = runtime.changes;
  const usage = changes?.slotUsage ?? null;
  return {
    state: problem ? 'unavailable' : runtime.replication?.status === 'up' ? 'up' : 'down',
    problem: problem && { setting: problem.setting, value: problem.actual, required: problem.required, message: problem.message },
    postgres_changes: changes && {
      state: changes.status,
      slot: changes.slot,
      subscribers: changes.subscriberCount,
      slot_lag_bytes: usage?.lagBytes ?? null,
      retained_wal_bytes: usage?.retainedWalBytes ?? null,
    },
  };
}

/** What /metrics reports of a tenant's replication. */
export function replicationFigures(runtime: TenantRuntime): ReplicationFigures {
  const usage = runtime.changes?.slotUsage ?? null;
  return {
    tenant: runtime.id,
    misconfigured: runtime.replicationCheck.problem?.setting ?? null,
    slot: usage && { name: usage.slot, lagBytes: usage.lagBytes, retainedWalBytes: usage.retainedWalBytes },
  };
}
