import { bearerToken, cleanToken, JwtVerifier } from '../auth/jwt.js';
import type { ChannelsContext } from '../channels/context.js';
import { openRequest, tenantGate } from './gate.js';
import { corsHeaders, readRequest, Reply } from './respond.js';
import { mountRestBroadcast } from './rest-broadcast.js';
import { mountTenantsApi } from './tenants-api.js';
import { uws, type HttpRequest, type HttpResponse, type TemplatedApp } from './uws.js';
import { mountWebSocket } from './websocket.js';

/**
 * Builds the uWS app: the Phoenix socket, the REST API and the operational endpoints. `managementSecrets` sign
 * management API tokens (resolved at start: API_JWT_SECRET or the generated one).
 */
export function createApp(ctx: ChannelsContext, managementSecrets: readonly string[]): TemplatedApp {
  const app = uws.App();
  mountWebSocket(app, ctx);
  mountRestBroadcast(app, ctx);
  mountTenantsApi(app, ctx, managementSecrets);
  const metricsVerifier = ctx.config.metricsJwtSecret ? new JwtVerifier({ secret: ctx.config.metricsJwtSecret, jwks: null }) : null;

  app.get('/healthcheck', (res) => new Reply(res).send(200, 'ok', 'text/plain'));

  for (const prefix of ['', '/realtime/v1']) {
    app.get(`${prefix}/api/ping`, (res, req) => {
      const { reply, info } = openRequest(res, req);
      if (tenantGate(ctx, reply, info)) reply.json(200, { message: 'Success' });
    });
  }

  const metricsBlocklist = new Set(ctx.config.metricsTokenBlocklist.map(cleanToken));
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
  return app;
}

/** Blocklisted and verified in the one cleaned form, so no spelling of a listed token gets past the list. */
async function verifyBearer(verifier: JwtVerifier, header: string, blocklist: Set<string>): Promise<boolean> {
  const token = bearerToken(header);
  if (token === null || blocklist.has(token)) return false;
  return (await verifier.verifyCleaned(token, { requireRoleAndExp: false })).ok;
}
