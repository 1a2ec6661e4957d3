import type { AppContext } from '../context.js';
import { replicationReport, type ReplicationReport } from '../tenants/replication-report.js';
import { openRequest, tenantGate } from './gate.js';
import { metricsAccess } from './metrics.js';
import type { Module } from './module.js';

/**
 * `GET /healthcheck`: plain, liveness (upstream's `200 ok`); verbose (`?verbose=1`), readiness: 503 unless every
 * running tenant streams its database, tenant names and their state only for whoever may read /metrics (which names
 * them too). `GET /api/ping`: this Host's tenant is reachable, within its request rate.
 */
export const healthModule: Module = {
  name: 'health',
  mount(app, ctx) {
    const mayReadMetrics = metricsAccess(ctx);
    app.get('/healthcheck', (res, req) => {
      const { reply, info } = openRequest(res, req);
      const verbose = info.query.get('verbose');
      if (verbose !== '1' && verbose !== 'true') return reply.send(200, 'ok', 'text/plain');
      void mayReadMetrics(info.headers.authorization ?? '').then(
        (withTenants) => {
          const health = nodeHealth(ctx, withTenants);
          reply.json(health.status === 'ok' ? 200 : 503, health);
        },
        () => reply.send(500),
      );
    });
    for (const prefix of ['', '/realtime/v1']) {
      app.get(`${prefix}/api/ping`, (res, req) => {
        const { reply, info } = openRequest(res, req);
        if (tenantGate(ctx, reply, info)) reply.json(200, { message: 'Success' });
      });
    }
  },
};

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
  /** Running tenants by id; left out when the caller may not see tenant names (see healthModule). */
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
