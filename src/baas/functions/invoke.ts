/**
 * `ANY /functions/v1/<name>[/<sub-path>][?query]`, as supabase-js `functions.invoke` calls it (spec baas-api.md
 * §5): the tenant by Host, a built-in CORS preflight, the request body within FUNCTIONS_MAX_BODY_BYTES, the
 * function by name (404 NOT_FOUND), the caller's JWT when the function verifies it (401 Invalid JWT; the anon key
 * passes), then the invocation and its answer, or the status table of §5.3.
 */
import type { AppContext } from '../../context.js';
import { openRequest, tenantGate, tenantToken } from '../../http/gate.js';
import { BodyTooLarge, readBody, refusedByContentLength, type Reply } from '../../http/respond.js';
import type { HttpRequest, HttpResponse } from '../../http/uws.js';
import type { GuestResponse } from './cgi.js';
import { INVALID_JWT, METHOD_NOT_ALLOWED, NOT_FOUND, type GatewayError } from './errors.js';
import type { FunctionsService } from './service.js';

export const PREFIX = '/functions/v1/';
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD']);
/** supabase-js's recommended set plus what the other modules need, as spec §0.3 lists. */
const CORS_ALLOW_HEADERS =
  'authorization, x-client-info, apikey, content-type, x-retry-count, traceparent, tracestate, baggage, prefer, accept-profile, content-profile, range, x-upsert, cache-control, x-metadata, x-supabase-api-version, x-region';
/** Headers of the function's answer the server writes itself. */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'date']);

export function serveInvocation(ctx: AppContext, service: FunctionsService, res: HttpResponse, req: HttpRequest): void {
  const { reply, info, requestId } = openRequest(res, req);
  const method = info.method.toUpperCase();
  const rest = info.url.slice(PREFIX.length);
  const slash = rest.indexOf('/');
  const name = decodeSafely(slash === -1 ? rest : rest.slice(0, slash));
  const path = slash === -1 ? '' : rest.slice(slash);
  const query = req.getQuery() ?? '';
  if (method === 'OPTIONS' && info.headers['access-control-request-method'] !== undefined) {
    cors(reply, info.headers.origin);
    reply.header('access-control-max-age', '86400');
    return reply.send(200, 'ok', 'text/plain; charset=utf-8');
  }
  if (!METHODS.has(method)) return fail(reply, METHOD_NOT_ALLOWED);
  if (refusedByContentLength(reply, info.headers, ctx.config.functionsMaxBodyBytes)) return;
  const tenant = tenantGate(ctx, reply, info);
  if (!tenant) return;
  const body = method === 'GET' || method === 'HEAD' ? Promise.resolve(Buffer.alloc(0)) : readBody(res, reply, info.headers, ctx.config.functionsMaxBodyBytes);
  body.catch(() => undefined);
  (async () => {
    if (name === null || name === '') return fail(reply, NOT_FOUND);
    const found = service.lookup(tenant.settings.externalId, name);
    const { head, secrets } = found instanceof Promise ? await found : found;
    if (!head) return fail(reply, NOT_FOUND);
    if (head.verifyJwt) {
      const token = tenantToken(info.headers);
      const verified = token ? await tenant.verifier.verify(token, { requireRoleAndExp: false }) : null;
      if (!verified?.ok) {
        service.metrics.errors.inc({ tenant: head.tenant, function: head.name, code: 'INVALID_JWT' });
        return fail(reply, INVALID_JWT);
      }
    }
    if (tenant.settings.suspend) return fail(reply, { status: 403, body: { code: 'FORBIDDEN', message: 'Tenant is suspended' } });
    const headers = { ...info.headers };
    const answer = await service.run(
      { tenant, name, request: { method, path, query, headers, body: await body }, host: info.headers.host ?? '', requestId },
      head,
      secrets,
    );
    if (!answer.ok) return fail(reply, answer.error);
    respond(reply, answer.response, method, info.headers.origin);
  })().catch((err: unknown) => {
    if (err instanceof BodyTooLarge || reply.aborted) return;
    tenant.log.error({ err, error_code: 'FunctionsGatewayError', request_id: requestId }, 'function invocation failed in the gateway');
    reply.header('x-relay-error', 'true');
    fail(reply, { status: 502, body: { code: 'RELAY_ERROR', message: 'The function host failed' } });
  });
}

function respond(reply: Reply, response: GuestResponse, method: string, origin: string | undefined): void {
  let hasCors = false;
  for (const [name, value] of response.headers) {
    if (FRAMING.has(name)) continue;
    if (name.startsWith('access-control-')) hasCors = true;
    reply.header(name, value);
  }
  if (!hasCors) cors(reply, origin);
  reply.send(response.status, method === 'HEAD' ? '' : response.body);
}

function fail(reply: Reply, error: GatewayError): void {
  cors(reply, undefined);
  reply.json(error.status, error.body);
}

function cors(reply: Reply, _origin: string | undefined): void {
  reply
    .header('access-control-allow-origin', '*')
    .header('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS')
    .header('access-control-allow-headers', CORS_ALLOW_HEADERS);
}

function decodeSafely(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}
