/**
 * `/auth/v1`: the GoTrue-compatible auth API that supabase-js `auth.*` speaks (spec baas-api.md §2, §3). Per
 * request: the gate (tenant by Host, rate, CORS, bounded body), the API key (as Supabase's gateway: a valid tenant
 * JWT in `apikey`), the route (routes.ts, which also says who may call what), the handler against the tenant's
 * `auth` schema, and the answer with GoTrue's error shapes (errors.ts). Client mistakes are 4xx, never 500.
 */
import type { AppContext } from '../../context.js';
import { openRequest, parseJson, tenantGate } from '../../http/gate.js';
import type { Module } from '../../http/module.js';
import { emitCommitted, moduleEvents, type ModuleEvent } from '../../http/module-events.js';
import { BodyTooLarge, readBody, refusedByContentLength, type Reply } from '../../http/respond.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../../http/uws.js';
import type { TenantRuntime } from '../../tenants/tenant.js';
import type { AuthAnswer, AuthCall, AuthServices } from './call.js';
import { API_VERSION_HEADER, AuthError, errorAnswer, OAuthError, requestedApiVersion } from './errors.js';
import { Mailer, type Mail } from './mailer.js';
import { mountMailsApi } from './mails-api.js';
import { UnsentMails } from './unsent-mails.js';
import { EmailFrequency, RateLimiter } from './rate-limit.js';
import { matchRoute, pathKnown } from './routes.js';
import { TokenKeys } from './tokens.js';

const PREFIX = '/auth/v1';
/** Auth bodies are small (credentials, metadata): refused past this before they are buffered. */
const MAX_AUTH_BODY_BYTES = 256 * 1024;
const FIVE_MINUTES = 300_000;
const ALLOW_HEADERS = 'authorization, x-client-info, apikey, content-type, x-supabase-api-version, x-retry-count, traceparent, tracestate, baggage';

class AuthModule implements Module {
  readonly name = 'auth';

  mount(app: TemplatedApp, ctx: AppContext): void {
    const { auth } = ctx.config;
    const services: AuthServices = {
      config: auth,
      keys: new TokenKeys(auth.signingKeys),
      mailer: new Mailer(auth.smtpUrl, auth.smtpSender),
      unsent: new UnsentMails(),
      limits: {
        token: new RateLimiter(auth.rateLimitToken, FIVE_MINUTES),
        otp: new RateLimiter(auth.rateLimitOtp, FIVE_MINUTES),
        verify: new RateLimiter(auth.rateLimitVerify, FIVE_MINUTES),
        anonymous: new RateLimiter(auth.rateLimitAnonymous, 3_600_000),
        mfa: new RateLimiter(15, 60_000),
        email: new EmailFrequency(auth.emailMaxFrequency * 1000),
      },
    };
    const handler = (res: HttpResponse, req: HttpRequest) => serve(ctx, services, res, req);
    app.any(`${PREFIX}/*`, handler);
    mountMailsApi(app, ctx, services.unsent);
  }
}

export const authModule: Module = new AuthModule();

function serve(ctx: AppContext, services: AuthServices, res: HttpResponse, req: HttpRequest): void {
  const { reply, info, requestId } = openRequest(res, req, { cors: true });
  reply.header('access-control-expose-headers', 'x-supabase-api-version, x-total-count, link, x-sb-error-code');
  const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
  const method = info.method.toUpperCase();
  if (method === 'OPTIONS') {
    reply.header('access-control-allow-headers', ALLOW_HEADERS).header('access-control-max-age', '86400');
    return reply.send(204);
  }
  const version = requestedApiVersion(info.headers[API_VERSION_HEADER]);
  if (version !== null) reply.header(API_VERSION_HEADER, version);
  if (refusedByContentLength(reply, info.headers, MAX_AUTH_BODY_BYTES)) return;
  const tenant = tenantGate(ctx, reply, info);
  if (!tenant) return;
  const path = info.url.slice(PREFIX.length).replace(/\/+$/, '') || '/';
  const hasBody = method === 'POST' || method === 'PUT' || method === 'DELETE' || method === 'PATCH';
  const body = hasBody ? readBody(res, reply, info.headers, MAX_AUTH_BODY_BYTES) : Promise.resolve(Buffer.alloc(0));
  body.catch(() => undefined);
  const events: ModuleEvent[] = [];
  const unsentMails: Mail[] = [];
  (async () => {
    const matched = matchRoute(method, path);
    if (!matched) {
      throw pathKnown(path) ? new AuthError(405, 'method_not_allowed', 'Method Not Allowed') : AuthError.notFound('not_found', 'Not Found');
    }
    if (!matched.route.open) await checkApiKey(tenant, info.headers, info.query);
    if (tenant.settings.suspend) throw AuthError.forbidden('unexpected_failure', 'Tenant is suspended');
    const call: AuthCall = {
      ...services,
      // The tenant record's auth_settings win over AUTH_*.
      config: tenant.settings.auth ? { ...services.config, ...tenant.settings.auth } : services.config,
      tenant,
      pool: await tenant.database(),
      method,
      path,
      params: matched.params,
      query: info.query,
      headers: info.headers,
      body: parseBody(await body),
      ip,
      baseUrl: baseUrl(info.headers),
      events,
      unsentMails,
    };
    const answer = await matched.route.handler(call);
    // Every transaction of the handler has committed once it returns.
    emitCommitted(ctx, tenant.settings.externalId, events, tenant.log);
    for (const mail of unsentMails) services.unsent.add(tenant.settings.externalId, mail);
    send(reply, answer);
  })().catch((err: unknown) => {
    // A handler may fail after a transaction of it committed: those rows' events still happened.
    if (events.length > 0) void emitFoundEvents(ctx, tenant, events);
    if (err instanceof BodyTooLarge || reply.aborted) return;
    if (err instanceof ApiKeyRefusal) return reply.json(401, err.body);
    if (err instanceof AuthError || err instanceof OAuthError) return sendError(reply, err, info.headers[API_VERSION_HEADER]);
    const code = (err as { code?: unknown } | null)?.code;
    // Bad values that reached Postgres (a malformed uuid or inet, an over-long varchar) are the caller's mistake.
    if (typeof code === 'string' && /^(22|23)/.test(code)) {
      return sendError(reply, AuthError.validation('Invalid input for a database field'), info.headers[API_VERSION_HEADER]);
    }
    tenant.log.error({ err, error_code: 'AuthRequestFailed', request_id: requestId }, 'auth request failed');
    sendError(reply, new AuthError(500, 'unexpected_failure', 'Unexpected failure, please check server logs for more information'), info.headers[API_VERSION_HEADER]);
  });
}

/** The events whose audit rows are there (committed), emitted; the others were rolled back. */
async function emitFoundEvents(ctx: AppContext, tenant: TenantRuntime, events: ModuleEvent[]): Promise<void> {
  const tenantId = tenant.settings.externalId;
  if (!events.some((e) => moduleEvents(ctx).wants(tenantId, e.kind))) return;
  try {
    const pool = await tenant.database();
    const { rows } = await pool.query<{ id: string }>('SELECT id::text FROM auth.audit_log_entries WHERE id = ANY($1::uuid[])', [events.map((e) => e.id)]);
    const found = new Set(rows.map((r) => r.id));
    emitCommitted(ctx, tenantId, events.filter((e) => found.has(e.id as string)), tenant.log);
  } catch (err) {
    tenant.log.warn({ err, error_code: 'ModuleEventNotRecorded' }, 'checking auth events failed');
  }
}

class ApiKeyRefusal extends Error {
  constructor(readonly body: Record<string, string>) {
    super(body.message);
  }
}

/** Supabase's gateway in front of GoTrue: an `apikey` header (or query parameter) holding a valid tenant JWT. */
async function checkApiKey(tenant: TenantRuntime, headers: Record<string, string>, query: URLSearchParams): Promise<void> {
  const key = headers.apikey ?? query.get('apikey') ?? undefined;
  if (!key) throw new ApiKeyRefusal({ message: 'No API key found in request', hint: 'No `apikey` request header or url param was found.' });
  const result = await tenant.verifier.verify(key, { requireRoleAndExp: false });
  if (!result.ok) throw new ApiKeyRefusal({ message: 'Invalid API key', hint: 'Double check the provided API key.' });
}

function parseBody(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {};
  const parsed = parseJson(raw.toString('utf8'));
  if (!parsed.ok) throw AuthError.badRequest('bad_json', 'Could not parse request body as JSON: invalid character');
  if (parsed.value === null) return {};
  if (typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
    throw AuthError.badRequest('bad_json', 'Could not parse request body as JSON: expected an object');
  }
  return parsed.value as Record<string, unknown>;
}

/** `<scheme>://<host>` of the request, as a proxy in front reports it. */
function baseUrl(headers: Record<string, string>): string {
  const proto = headers['x-forwarded-proto']?.split(',')[0].trim() === 'https' ? 'https' : 'http';
  const host = (headers['x-forwarded-host'] ?? headers.host ?? 'localhost').split(',')[0].trim();
  return `${proto}://${/^[A-Za-z0-9.:[\]-]+$/.test(host) ? host : 'localhost'}`;
}

function send(reply: Reply, answer: AuthAnswer): void {
  if ('redirect' in answer) {
    reply.header('location', answer.redirect);
    return reply.send(303);
  }
  for (const [name, value] of answer.headers ?? []) reply.header(name, value);
  if (answer.status === 204 || answer.body === undefined) return reply.send(answer.status);
  reply.json(answer.status, answer.body);
}

function sendError(reply: Reply, err: AuthError | OAuthError, versionHeader: string | undefined): void {
  const { status, headers, body } = errorAnswer(err, versionHeader);
  // The version header was set once already when the request asked for one.
  for (const [name, value] of headers) if (name !== API_VERSION_HEADER) reply.header(name, value);
  reply.json(status, body);
}
