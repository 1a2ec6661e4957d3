import { bearerToken, cleanToken, JwtVerifier } from '../auth/jwt.js';
import type { AppContext } from '../context.js';
import { packageInfo } from '../version.js';
import { nodeHealth } from './health.js';
import { corsHeaders, readRequest, Reply } from './respond.js';
import { mountRestBroadcast, tenantGate } from './rest-broadcast.js';
import { mountTenantsApi } from './tenants-api.js';
import { type HttpRequest, type HttpResponse, type TemplatedApp } from './uws.js';
import { mountWebSocket } from './websocket.js';

const ROOT_DOCUMENT = {
  name: packageInfo.name,
  version: packageInfo.version,
  description: packageInfo.description,
  links: {
    websocket: '/realtime/v1/websocket',
    phoenix_websocket: '/socket/websocket',
    broadcast: '/realtime/v1/api/broadcast',
    healthcheck: '/healthcheck',
    metrics: '/metrics',
    tenants: '/api/tenants',
  },
};

/**
 * Mounts on the uWS app the Phoenix socket, the REST API and the operational endpoints. `managementSecrets` sign
 * management API tokens (resolved at start: API_JWT_SECRET or the generated one).
 */
export function mountApp(app: TemplatedApp, ctx: AppContext, managementSecrets: readonly string[]): void {
  mountWebSocket(app, ctx);
  mountRestBroadcast(app, ctx);
  mountTenantsApi(app, ctx, managementSecrets);
  const metricsVerifier = ctx.config.metricsJwtSecret ? new JwtVerifier({ secret: ctx.config.metricsJwtSecret, jwks: null }) : null;

  const metricsBlocklist = new Set(ctx.config.metricsTokenBlocklist.map(cleanToken));
  // Plain: liveness, upstream's `200 ok`. Verbose: readiness, 503 unless every running tenant streams its database;
  // tenant names and their state only for whoever may read /metrics (which names them too).
  app.get('/healthcheck', (res, req) => {
    const reply = new Reply(res);
    const info = readRequest(req);
    const verbose = info.query.get('verbose');
    if (verbose !== '1' && verbose !== 'true') return reply.send(200, 'ok', 'text/plain');
    const auth = info.headers.authorization ?? '';
    const mayName = metricsVerifier === null ? Promise.resolve(true) : verifyBearer(metricsVerifier, auth, metricsBlocklist);
    void mayName.then(
      (withTenants) => {
        const health = nodeHealth(ctx, withTenants);
        reply.json(health.status === 'ok' ? 200 : 503, health);
      },
      () => reply.send(500),
    );
  });
  // What someone who opens the printed URL in a browser sees: what this is and where to go, for any Host.
  app.get('/', (res) => new Reply(res).json(200, ROOT_DOCUMENT));


  for (const prefix of ['', '/realtime/v1']) {
    app.get(`${prefix}/api/ping`, (res, req) => {
      const reply = new Reply(res);
      if (tenantGate(ctx, reply, readRequest(req))) reply.json(200, { message: 'Success' });
    });
  }

  const serveMetrics = (res: HttpResponse, req: HttpRequest) => {
    const reply = new Reply(res);
    const auth = readRequest(req).headers.authorization ?? '';
    const authorized = metricsVerifier === null ? Promise.resolve(true) : verifyBearer(metricsVerifier, auth, metricsBlocklist);
    authorized
      .then(async (ok) => {
        if (!ok) return reply.send(403);
        const body = await ctx.metrics.registry.metrics();
        reply.send(200, body, ctx.metrics.registry.contentType);
      })
      .catch((err: unknown) => {
        ctx.log.error({ err }, 'metrics collection failed');
        reply.send(500);
      });
  };
  // One node serves its own figures for every region path (single region until clustering lands).
  app.get('/metrics', serveMetrics);
  app.get('/metrics/:region', serveMetrics);

  app.options('/*', (res) => corsHeaders(new Reply(res)).send(204));
  app.any('/*', (res, req) => {
    const reply = new Reply(res);
    const info = readRequest(req);
    // Unknown tenants get the same answer on every path, as clients of a wrong host would expect.
    if (!ctx.registry.resolve(info.headers.host ?? '')) return reply.json(404, { error: 'Tenant not found' });
    reply.json(404, { error: 'Not found' });
  });
}

/** Blocklisted and verified in the one cleaned form, so no spelling of a listed token gets past the list. */
async function verifyBearer(verifier: JwtVerifier, header: string, blocklist: Set<string>): Promise<boolean> {
  const token = bearerToken(header);
  if (token === null || blocklist.has(token)) return false;
  return (await verifier.verifyCleaned(token, { requireRoleAndExp: false })).ok;
}
