import type { AppContext } from '../context.js';
import { replicationReport, type ReplicationReport } from '../tenants/replication-report.js';

export interface TenantHealth {
  state: string;
  db_connected: boolean;
  replication: ReplicationReport;
}

/** `/healthcheck?verbose=1`: whether every tenant running on this node streams its database. */
export interface NodeHealth {
  /** ok: every running tenant's replication is up; degraded otherwise (503). */
  status: 'ok' | 'degraded';
  node: string;
  /** Running tenants by id; left out when the caller may not see tenant names (see app.ts). */
  tenants?: Record<string, TenantHealth>;
}

export function nodeHealth(ctx: AppContext, withTenants: boolean): NodeHealth {
  const tenants: Record<string, TenantHealth> = {};
  let ok = true;
  for (const runtime of ctx.registry.running()) {
    const replication = replicationReport(runtime);
    if (replication.state !== 'up') ok = false;
    tenants[runtime.id] = { state: ctx.registry.supervisor(runtime.id)?.state ?? 'stopped', db_connected: runtime.dbState === 'ready', replication };
  }
  return { status: ok ? 'ok' : 'degraded', node: ctx.config.nodeName, ...(withTenants ? { tenants } : {}) };
}
