import { randomFillSync } from 'node:crypto';
import type { Claims } from '../auth/jwt.js';
import type { AppContext } from '../context.js';
import type { TenantRuntime } from '../tenants/tenant.js';
import { BodyTooLarge, corsHeaders, MAX_REQUEST_BODY_BYTES, readBody, readRequest, refusedByContentLength, Reply, type RequestInfo } from './respond.js';
import type { HttpRequest, HttpResponse } from './uws.js';

/**
 * The front of every HTTP module's routes, as upstream's endpoint and router plugs are of its controllers: the
 * request's facts copied out, its request id, CORS, the tenant from the Host with its request rate (AssignTenant,
 * RateLimiter), the tenant's JWT from `Authorization: Bearer` or `apikey` (AuthTenant), and JSON bodies read within a
 * limit.
 */

/** A request as the gate opened it: answer through `reply`; `info` stays valid after the handler returns. */
export interface OpenedRequest {
  reply: Reply;
  info: RequestInfo;
  /** Sent back as `x-request-id`; log it as `request_id`. */
  requestId: string;
}

/**
 * Opens a request: its facts copied out of the uWS request (valid only until the handler first returns or awaits),
 * its request id set on the answer, and with `cors`, upstream's open CORS headers on whatever the answer is.
 */
export function openRequest(res: HttpResponse, req: HttpRequest, opts: { cors?: boolean } = {}): OpenedRequest {
  const reply = new Reply(res);
  const info = readRequest(req);
  const id = requestId(info.headers);
  reply.header('x-request-id', id);
  if (opts.cors) corsHeaders(reply);
  return { reply, info, requestId: id };
}

/**
 * The request id, as upstream's BaggageRequestId and Plug.RequestId pick it: the `request-id` entry of the W3C
 * `baggage` header when it is 10 to 200 bytes, else the caller's `x-request-id` when it is 20 to 200 bytes, else a new
 * one. Only visible ASCII is taken from the caller: a decoded baggage value could otherwise put a line break into the
 * response headers.
 */
export function requestId(headers: Record<string, string>): string {
  const fromBaggage = baggageEntry(headers.baggage, 'request-id');
  if (fromBaggage !== null && fromBaggage.length >= 10 && fromBaggage.length <= 200 && VISIBLE_ASCII.test(fromBaggage)) return fromBaggage;
  const given = headers['x-request-id'];
  if (given !== undefined && given.length >= 20 && given.length <= 200 && VISIBLE_ASCII.test(given)) return given;
  return freshRequestId();
}

/**
 * 16 random bytes as hex, taken from a pool filled 4 KB at a time: one randomBytes call per request (a crypto job
 * and a buffer each) was a visible part of a REST request's CPU.
 */
const ID_POOL = Buffer.alloc(4096);
let idPoolOffset = ID_POOL.length;
function freshRequestId(): string {
  if (idPoolOffset === ID_POOL.length) {
    randomFillSync(ID_POOL);
    idPoolOffset = 0;
  }
  const id = ID_POOL.toString('hex', idPoolOffset, idPoolOffset + 16);
  idPoolOffset += 16;
  return id;
}

const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

/** One entry of a W3C baggage header (`key=value;property,...`, values percent-encoded); null when absent or garbled. */
function baggageEntry(header: string | undefined, key: string): string | null {
  if (!header) return null;
  for (const member of header.split(',')) {
    const eq = member.indexOf('=');
    if (eq === -1 || member.slice(0, eq).trim() !== key) continue;
    const value = member.slice(eq + 1).split(';')[0].trim();
    try {
      return decodeURIComponent(value);
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * The tenant of a request, as upstream's AssignTenant and RateLimiter plugs: from the Host (401 when unknown), the
 * request counted, the rate headers set, 429 when over. Null when it already answered.
 */
export function tenantGate(ctx: AppContext, reply: Reply, info: RequestInfo): TenantRuntime | null {
  const tenant = ctx.registry.resolve(info.headers.host ?? '');
  if (!tenant) {
    reply.json(401, { message: 'Tenant not found in database' });
    return null;
  }
  tenant.requests.add(1);
  const limit = tenant.settings.limits.maxEventsPerSecond;
  const rolling = Math.round(tenant.requests.avg);
  reply.header('x-rate-rolling', String(rolling)).header('x-rate-limit', String(limit)).header('x-rate-limit-remaining', String(limit - rolling));
  if (rolling >= limit) {
    reply.json(429, { message: 'Too many requests' });
    return null;
  }
  return tenant;
}

/** The tenant JWT of a request, as upstream's AuthTenant takes it: `Authorization: Bearer` (any case), else `apikey`. */
export function tenantToken(headers: Record<string, string>): string | undefined {
  const m = headers.authorization ? /^bearer\s+(.+)$/i.exec(headers.authorization.trim()) : null;
  return m ? m[1] : headers.apikey;
}

/** JSON text parsed, or `ok: false` when it is not JSON. */
export type JsonResult = { ok: true; value: unknown } | { ok: false };

export function parseJson(text: string): JsonResult {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/**
 * Reads a request body of at most `limit` bytes (413 past it, see readBody) and parses it as JSON; an empty body
 * reads as null. Must be called synchronously inside the handler.
 */
export async function readJsonBody(res: HttpResponse, reply: Reply, headers: Record<string, string>, limit: number): Promise<JsonResult> {
  const raw = await readBody(res, reply, headers, limit);
  return raw.length === 0 ? { ok: true, value: null } : parseJson(raw.toString('utf8'));
}

/** Starts reading a tenant request's body once its tenant is known; called synchronously inside the handler. */
export type BodyReader<B> = (res: HttpResponse, reply: Reply, info: RequestInfo, tenant: TenantRuntime) => Promise<B>;

/** A body read whole, up to upstream's request body limit. */
export const wholeBody: BodyReader<Buffer> = (res, reply, info) => readBody(res, reply, info.headers, MAX_REQUEST_BODY_BYTES);

/** A JSON body of at most `limit` bytes (413 past it); an empty body reads as null. */
export function jsonBody(limit = MAX_REQUEST_BODY_BYTES): BodyReader<JsonResult> {
  return (res, reply, info) => readJsonBody(res, reply, info.headers, limit);
}

/** What a tenant route's handler is given once the gate let the request through. */
export interface TenantCall<B> {
  tenant: TenantRuntime;
  reply: Reply;
  info: RequestInfo;
  body: B;
  claims: Claims;
  requestId: string;
}

export interface TenantRouteOptions<B> {
  /** Upstream's open CORS headers on every answer. */
  cors?: boolean;
  body: BodyReader<B>;
  /** An unexpected failure: logged as `log` with `errorCode`, answered 500 with `{"message": message}`. */
  failure: { errorCode: string; log: string; message: string };
}

/**
 * Serves a tenant REST request: body limit, tenant, rate headers, token, body, then `handler`. Upstream's body
 * parser runs before the tenant and auth plugs, so a body announced too large is refused first, uncounted; the body
 * is read only for a known tenant, alongside the token check. Call it synchronously inside the uWS handler.
 */
export function serveTenantRequest<B>(
  ctx: AppContext,
  res: HttpResponse,
  req: HttpRequest,
  options: TenantRouteOptions<B>,
  handler: (call: TenantCall<B>) => void | Promise<void>,
): void {
  const { reply, info, requestId: id } = openRequest(res, req, { cors: options.cors });
  if (refusedByContentLength(reply, info.headers, MAX_REQUEST_BODY_BYTES)) return;
  const tenant = tenantGate(ctx, reply, info);
  if (!tenant) return;
  const bodyPromise = options.body(res, reply, info, tenant);
  bodyPromise.catch(() => undefined);
  const token = tenantToken(info.headers);
  if (!token) return reply.json(401, { message: 'Unauthorized' });
  tenant.verifier
    .verify(token, { requireRoleAndExp: true })
    .then(async (result) => {
      if (!result.ok) return reply.json(401, { message: 'Unauthorized' });
      if (tenant.settings.suspend) return reply.json(403, { message: 'Tenant is suspended' });
      const body = await bodyPromise;
      await handler({ tenant, reply, info, body, claims: result.claims, requestId: id });
    })
    .catch((err: unknown) => {
      // An oversize body was answered 413 by the reader, as soon as it knew.
      if (err instanceof BodyTooLarge || reply.aborted) return;
      tenant.log.error({ err, error_code: options.failure.errorCode, request_id: id }, options.failure.log);
      reply.json(500, { message: options.failure.message });
    });
}
