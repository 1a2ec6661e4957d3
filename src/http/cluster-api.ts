import type { AppContext } from '../context.js';
import { openRequest } from './gate.js';
import { managementAuthorizer } from './management-gate.js';
import type { Module } from './module.js';

/**
 * `GET /api/cluster`: the live members of the cluster as this node sees them (itself first), for whoever holds a
 * management API token; anyone else gets the tenants API's 403 with an empty body. A node running alone lists itself.
 */
export const clusterApiModule: Module = {
  name: 'cluster-api',
  mount(app, ctx: AppContext) {
    const authorized = managementAuthorizer(ctx);
    app.get('/api/cluster', (res, req) => {
      const { reply, info, requestId } = openRequest(res, req);
      authorized(info.headers.authorization).then(
        (ok) => {
          if (!ok) return reply.send(403);
          const nodes = ctx.cluster.membership.members().map((m) => ({
            name: m.name,
            region: m.region,
            started_at: m.started_at,
            last_seen: m.last_seen,
            connections: m.connections,
            tenants: m.tenants,
          }));
          reply.json(200, { nodes });
        },
        (err: unknown) => {
          ctx.log.error({ err, error_code: 'ClusterApiError', request_id: requestId }, 'cluster API request failed');
          reply.json(500, { errors: { detail: 'Internal Server Error' } });
        },
      );
    });
  },
};
