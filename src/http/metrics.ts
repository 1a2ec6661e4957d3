import { bearerToken, cleanToken, JwtVerifier } from '../auth/jwt.js';
import type { AppContext } from '../context.js';
import { openRequest } from './gate.js';
import type { Module } from './module.js';
import type { HttpRequest, HttpResponse } from './uws.js';

/**
 * `GET /metrics` and `GET /metrics/:region`: Prometheus text, for whoever metricsAccess lets in (403 with an empty
 * body otherwise). One node serves its own figures for every region path (single region until clustering lands).
 */
export const metricsModule: Module = {
  name: 'metrics',
  mount(app, ctx) {
    const mayRead = metricsAccess(ctx);
    const serve = (res: HttpResponse, req: HttpRequest) => {
      const { reply, info } = openRequest(res, req);
      mayRead(info.headers.authorization ?? '')
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
    app.get('/metrics', serve);
    app.get('/metrics/:region', serve);
  },
};

/**
 * Who may read the metrics (and the tenant names of the verbose healthcheck): anyone without METRICS_JWT_SECRET,
 * else a Bearer JWT signed with it that METRICS_TOKEN_BLOCKLIST does not list.
 */
export function metricsAccess(ctx: AppContext): (authorization: string) => Promise<boolean> {
  const verifier = ctx.config.metricsJwtSecret ? new JwtVerifier({ secret: ctx.config.metricsJwtSecret, jwks: null }) : null;
  const blocklist = new Set(ctx.config.metricsTokenBlocklist.map(cleanToken));
  return (authorization) => (verifier === null ? Promise.resolve(true) : verifyBearer(verifier, authorization, blocklist));
}

/** Blocklisted and verified in the one cleaned form, so no spelling of a listed token gets past the list. */
async function verifyBearer(verifier: JwtVerifier, header: string, blocklist: Set<string>): Promise<boolean> {
  const token = bearerToken(header);
  if (token === null || blocklist.has(token)) return false;
  return (await verifier.verifyCleaned(token, { requireRoleAndExp: false })).ok;
}
