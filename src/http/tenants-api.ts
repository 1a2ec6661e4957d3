import type { AppContext } from '../context.js';
import { applyTenantInput } from '../tenants/record.js';
import { replicationReport } from '../tenants/replication-report.js';
import { renderTenant } from '../tenants/store.js';
import { openRequest, readJsonBody } from './gate.js';
import { managementAuthorizer, signsForTenant } from './management-gate.js';
import type { Module } from './module.js';
import { BodyTooLarge, type Reply } from './respond.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';

const MAX_BODY_BYTES = 1024 * 1024;

type Handler = (reply: Reply, id: string | null, body: unknown) => Promise<void>;

/**
 * The upstream management API: tenants created, changed and stopped at run time, behind a Bearer JWT signed with
 * a management secret (API_JWT_SECRET or the generated one, or API_JWT_SECRET_NEXT during rotation). Any auth
 * failure is a 403 with an empty body. A management secret that is also a tenant's signing key never authorizes:
 * that tenant's anon key would otherwise be an admin token.
 */
export const tenantsApiModule: Module = { name: 'tenants-api', mount: mountTenantsApi };

function mountTenantsApi(app: TemplatedApp, ctx: AppContext): void {
  const secrets = ctx.managementSecrets;
  const registry = ctx.registry;
  const defaults = ctx.config.tenantDefaults;
  const authorized = managementAuthorizer(ctx);

  const route = (withBody: boolean, handler: Handler) => (res: HttpResponse, req: HttpRequest) => {
    const { reply, info, requestId } = openRequest(res, req);
    // uWS answers '' for a parameter the route does not have.
    const id = req.getParameter(0) || null;
    const body = withBody ? readJsonBody(res, reply, info.headers, MAX_BODY_BYTES) : Promise.resolve({ ok: true as const, value: null });
    body.catch(() => undefined);
    authorized(info.headers.authorization)
      .then(async (ok) => {
        if (!ok) return reply.send(403);
        const parsed = await body;
        if (!parsed.ok) return reply.json(400, { message: 'invalid JSON body' });
        await handler(reply, id === null ? null : decodeURIComponent(id), parsed.value);
      })
      .catch((err: unknown) => {
        // The reader answered an oversize body with upstream's 413 as soon as it knew.
        if (err instanceof BodyTooLarge) return;
        ctx.log.error({ err, error_code: 'TenantsApiError', request_id: requestId }, 'management API request failed');
        reply.json(500, { errors: { detail: 'Internal Server Error' } });
      });
  };

  const upsert = async (reply: Reply, id: string | null, body: unknown) => {
    const wanted = id ?? externalIdOf(body);
    const existing = wanted ? registry.record(wanted) : null;
    const result = applyTenantInput(body, existing, defaults, id);
    if ('errors' in result) return reply.json(422, { errors: result.errors });
    // Refused here too, so an operator cannot lock the management API out by giving a tenant its secret.
    if (secrets.some((secret) => signsForTenant(secret, result.record))) {
      const field = result.record.jwtSecret !== null && secrets.includes(result.record.jwtSecret) ? 'jwt_secret' : 'jwt_jwks';
      return reply.json(422, { errors: { [field]: ['must not be a management API secret'] } });
    }
    const stored = await registry.save(result.record);
    if (!existing) {
      // A new tenant's database gets its migrations now, as upstream does; a failure is retried on first use.
      await registry.get(stored.externalId)?.database().catch((err: unknown) =>
        ctx.log.warn({ err, tenant: stored.externalId, error_code: 'UnableToConnectToProject' }, 'new tenant database not migrated yet'),
      );
      reply.header('location', `/api/tenants/${encodeURIComponent(stored.externalId)}`);
    }
    reply.json(existing ? 200 : 201, { data: renderTenant(stored) });
  };

  app.get('/api/tenants', route(false, async (reply) => reply.json(200, { data: registry.list().map(renderTenant) })));
  app.post('/api/tenants', route(true, upsert));
  app.get('/api/tenants/:id', route(false, async (reply, id) => {
    const record = registry.record(id as string);
    if (!record) return reply.json(404, { message: 'not found' });
    reply.json(200, { data: renderTenant(record) });
  }));
  app.put('/api/tenants/:id', route(true, upsert));
  app.patch('/api/tenants/:id', route(true, upsert));
  app.del('/api/tenants/:id', route(false, async (reply, id) => {
    await registry.delete(id as string);
    reply.send(204);
  }));
  app.post('/api/tenants/:id/reload', route(false, async (reply, id) => {
    if (!registry.record(id as string)) return reply.json(404, { message: 'not found' });
    await registry.stopTenant(id as string, null);
    reply.send(204);
  }));
  app.post('/api/tenants/:id/shutdown', route(false, async (reply, id) => {
    if (!registry.record(id as string)) return reply.json(404, { message: 'not found' });
    await registry.peek(id as string)?.resetDatabase();
    reply.send(204);
  }));
  app.get('/api/tenants/:id/health', route(false, async (reply, id) => {
    if (!registry.record(id as string)) return reply.json(404, { message: 'not found' });
    const runtime = registry.peek(id as string);
    const supervisor = registry.supervisor(id as string);
    const dbConnected = runtime?.dbState === 'ready';
    const connected = runtime?.sockets.size ?? 0;
    reply.json(200, {
      data: {
        healthy: dbConnected || connected === 0,
        db_connected: dbConnected,
        replication_connected: runtime?.replication?.status === 'up',
        // Not upstream's: why replication is down (e.g. wal_level) and how far the changes slot trails.
        replication: runtime ? replicationReport(runtime) : null,
        connected_cluster: connected,
        state: supervisor?.state ?? 'stopped',
        region: 'local',
        node: ctx.config.nodeName,
      },
    });
  }));
}

function externalIdOf(body: unknown): string | null {
  const id = (body as { tenant?: { external_id?: unknown } } | null)?.tenant?.external_id;
  return typeof id === 'string' ? id : null;
}
