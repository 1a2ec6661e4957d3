/**
 * `/rest/v1`: the PostgREST-compatible database API that supabase-js `from()` and `rpc()` speak (spec baas-api.md
 * §1, §3). Per request: the gate (tenant by Host, rate, CORS, bounded body), the caller's identity (http/auth.ts),
 * the pure core (request.ts: grammar and preferences; sql/statement.ts: ONE parameterized statement against the
 * tenant's schema cache), then one transaction on the tenant's pool with the request's role and claims so RLS
 * applies (http/transaction.ts), and the answer (http/answer.ts). Errors have PostgREST's status and body; nothing
 * here crashes the process or leaks a stack trace.
 */
import type { AppContext } from '../../context.js';
import { openRequest, tenantGate } from '../../http/gate.js';
import type { Module } from '../../http/module.js';
import { MAX_REQUEST_BODY_BYTES, readBodyThen, refusedByContentLength, type Reply, type RequestInfo } from '../../http/respond.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../../http/uws.js';
import type { TenantRuntime } from '../../tenants/tenant.js';
import type { Pool } from 'pg';
import { RestError } from './errors.js';
import { preferenceApplied } from './grammar/prefer.js';
import { answerFor, databaseErrorAnswer, isDatabaseError, type Answer } from './http/answer.js';
import { AuthRefusal, identify, identifyKnown, type RequestIdentity } from './http/auth.js';
import { SchemaCaches } from './http/schema-cache.js';
import { cachedStatement, rememberStatement, statementKey } from './http/statement-cache.js';
import { AnswerWriter } from './http/stream.js';
import { runRequest, type RequestSettings, type TransactionMode } from './http/transaction.js';
import { prepareRequest, type PreparedRequest, type RestConfig } from './request.js';
import { BodyAssembler, metaOf, type ResultFields } from './sql/result.js';
import { buildStatement, type BuiltStatement } from './sql/statement.js';

const PREFIX = '/rest/v1';
const BODY_METHODS = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);
/** Requests waiting for a pool client per pooled connection before new ones are shed with 503 + Retry-After. */
const WAITING_PER_CONNECTION = 4;

/** Per-server state: the REST config and the tenants' schema caches. */
class RestModule implements Module {
  readonly name = 'rest';
  private caches: SchemaCaches | null = null;

  mount(app: TemplatedApp, ctx: AppContext): void {
    const caches = this.cachesFor(ctx);
    const config: RestConfig = {
      schemas: ctx.config.restSchemas,
      maxRows: ctx.config.restMaxRows === null ? null : BigInt(ctx.config.restMaxRows),
      allowTransactionOverride: true,
    };
    const handler = (res: HttpResponse, req: HttpRequest) => serve(ctx, caches, config, res, req);
    for (const path of [PREFIX, `${PREFIX}/*`]) {
      app.get(path, handler).head(path, handler).post(path, handler).patch(path, handler).del(path, handler).put(path, handler);
    }
  }

  tenantChildren(tenant: TenantRuntime, ctx: AppContext) {
    return [this.cachesFor(ctx).listener(tenant)];
  }

  private cachesFor(ctx: AppContext): SchemaCaches {
    this.caches ??= new SchemaCaches(ctx.config.restSchemas);
    return this.caches;
  }
}

export const restModule: Module = new RestModule();

function serve(ctx: AppContext, caches: SchemaCaches, config: RestConfig, res: HttpResponse, req: HttpRequest): void {
  const { reply, info, requestId } = openRequest(res, req, { cors: true });
  const rawQuery = req.getQuery() ?? '';
  if (refusedByContentLength(reply, info.headers, MAX_REQUEST_BODY_BYTES)) return;
  const tenant = tenantGate(ctx, reply, info);
  if (!tenant) return;
  const method = info.method.toUpperCase();
  const incoming: Incoming = { ctx, caches, config, reply, info, requestId, tenant, method, rawQuery };
  if (!BODY_METHODS.has(method)) return handle(incoming, '', false);
  // The body is read with callbacks, not a promise: when it comes in one piece (the common case) the request goes
  // on synchronously from uWS's data callback. A refused (413) or aborted body never gets here.
  readBodyThen(res, reply, info.headers, MAX_REQUEST_BODY_BYTES, (body) => handle(incoming, body.toString('utf8'), method === 'POST' || method === 'PATCH'));
}

/** One request's facts, copied out of uWS's request in the handler. */
interface Incoming {
  ctx: AppContext;
  caches: SchemaCaches;
  config: RestConfig;
  reply: Reply;
  info: RequestInfo;
  requestId: string;
  tenant: TenantRuntime;
  method: string;
  rawQuery: string;
}

/** `payloadBody`: the body is the statement's payload (POST, PATCH), so it is part of the cache lookup. */
function handle(x: Incoming, text: string, payloadBody: boolean): void {
  const { ctx, caches, config, reply, info, requestId, tenant, method, rawQuery } = x;
  let identity: RequestIdentity | null = null;
  let writer: AnswerWriter | null = null;
  const path = info.url.slice(PREFIX.length);
  (async () => {
    // Each step without waiting when its answer is at hand (a known token, a loaded pool and schema cache, a cached
    // statement): every await is a promise and a microtask hop more per request.
    identity = identifyKnown(tenant, info.headers) ?? (await identify(tenant, info.headers));
    if (tenant.settings.suspend) throw new AuthRefusal(403, { message: 'Tenant is suspended' });
    const key = statementKey(method, path, rawQuery, info.headers);
    let cache = caches.loaded(tenant);
    let cached = cache && key !== null ? cachedStatement(cache, key, payloadBody ? text : undefined) : undefined;
    const prepared =
      cached?.prepared ??
      prepareRequest({ method, path, query: rawQuery, header: (name) => (info.headers[name] !== undefined ? [info.headers[name]] : []), body: text }, config);
    const pool = tenant.readyPool() ?? (await tenant.database());
    if (pool.waitingCount >= pool.options.max * WAITING_PER_CONNECTION) {
      reply.header('retry-after', '1');
      throw new RestError(503, 'PGRST003', 'Timed out acquiring connection from connection pool.');
    }
    if (!cached) {
      cache ??= await caches.get(tenant, pool);
      cached = { prepared, built: buildStatement({ cache, ...prepared }) };
      if (key !== null) rememberStatement(cache, key, cached);
    }
    const { built } = cached;
    writer = new AnswerWriter(reply, built.readOnly);
    await execute(pool, built, prepared, settingsFor(ctx, identity, prepared, method, path, info.headers), reply, writer);
  })().catch((err: unknown) => {
    if (reply.aborted) return;
    if (writer?.started) {
      tenant.log.warn({ err, error_code: 'RestStreamFailed', request_id: requestId }, 'REST answer failed while streaming');
      return writer.cut();
    }
    if (err instanceof AuthRefusal) {
      if (err.wwwAuthenticate) reply.header('www-authenticate', err.wwwAuthenticate);
      return reply.json(err.status, err.body);
    }
    if (err instanceof RestError) return errorReply(reply, err.status, err.body());
    if (isDatabaseError(err)) {
      const { status, body: errorBody } = databaseErrorAnswer(err, identity?.role ?? 'anon');
      if (status === 503) reply.header('retry-after', '1');
      return errorReply(reply, status, errorBody);
    }
    tenant.log.error({ err, error_code: 'RestRequestFailed', request_id: requestId }, 'REST request failed');
    // No answer from the database (down, unreachable, connection lost) is PostgREST's retryable 503 PGRST000;
    // anything else is our fault, 500 without details (a 503 would make postgrest-js retry it).
    if (!isConnectionFailure(err)) return errorReply(reply, 500, { code: 'PGRSTX00', message: 'Internal server error', details: null, hint: null });
    reply.header('retry-after', '1');
    errorReply(reply, 503, { code: 'PGRST000', message: 'Database client error. Retrying the connection.', details: null, hint: null });
  });
}

function isConnectionFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ECONNRESET, ENOTFOUND...
  const message = err instanceof Error ? err.message : '';
  return /connect|connection|terminat|timeout|recently failed/i.test(message);
}

function errorReply(reply: Reply, status: number, body: object): void {
  reply.header('proxy-status', `PostgREST; error=${(body as { code?: string }).code ?? 'unknown'}`);
  reply.json(status, body);
}

/**
 * Runs the statement and writes the answer as its rows arrive: the first row says status and headers, each row
 * adds its piece of the body (sql/result.ts), the writer sends it whole or streams it (http/stream.ts).
 */
async function execute(pool: Pool, built: BuiltStatement, prepared: PreparedRequest, settings: RequestSettings, reply: Reply, writer: AnswerWriter): Promise<void> {
  let assembler: BodyAssembler | null = null;
  let answer: Answer | null = null;
  const onRow = (fields: ResultFields) => {
    if (!assembler) {
      const meta = metaOf(fields);
      answer = answerFor(prepared, built, meta);
      assembler = new BodyAssembler(built.layout, meta);
      setHeaders(reply, answer, prepared);
      writer.setHead(answer.status, answer.contentType);
      if (answer.body) writer.write(assembler.opening());
    }
    if (answer!.body) writer.write(assembler.piece(fields));
  };
  await runRequest(pool, built, settings, { mode: transactionMode(built, prepared), onRow, onStart: (exchange) => writer.attach(exchange), decide: () => true });
  if (!assembler) throw new Error('the REST statement returned no row');
  if (answer!.body) writer.write((assembler as BodyAssembler).closing());
  writer.finish();
}

/**
 * Postgres's implicit transaction (committed by the Sync) unless the answer may still roll it back: tx=rollback,
 * or a singular write (PGRST116 when it touched other than one row). Reads have nothing to roll back.
 */
function transactionMode(built: BuiltStatement, prepared: PreparedRequest): TransactionMode {
  if (built.readOnly) return 'implicit';
  if (prepared.preferences.transaction === 'rollback') return 'rollback';
  return prepared.output.format === 'singular' ? 'decide' : 'implicit';
}

function setHeaders(reply: Reply, answer: Answer, prepared: PreparedRequest): void {
  for (const [name, value] of answer.headers) reply.header(name, value);
  const applied = preferenceApplied(prepared.preferences);
  if (applied !== null) reply.header('preference-applied', applied);
  if (prepared.profileHeader) reply.header('content-profile', prepared.schema);
}

/** The claims as JSON with `role` the effective role; memoized per verified claims object (the verifier caches one per token). */
const claimsJsonMemo = new WeakMap<object, { role: string; json: string }>();
function claimsJson(identity: RequestIdentity): string {
  const known = claimsJsonMemo.get(identity.claims);
  if (known && known.role === identity.role) return known.json;
  const json = JSON.stringify({ ...identity.claims, role: identity.role });
  claimsJsonMemo.set(identity.claims, { role: identity.role, json });
  return json;
}

function settingsFor(ctx: AppContext, identity: RequestIdentity, prepared: PreparedRequest, method: string, path: string, headers: Record<string, string>): RequestSettings {
  const claims = identity.claims;
  return {
    role: identity.role,
    claimsJson: claimsJson(identity),
    sub: typeof claims.sub === 'string' ? claims.sub : '',
    email: typeof claims.email === 'string' ? claims.email : '',
    method,
    path,
    headersJson: JSON.stringify(headers),
    searchPath: `"${prepared.schema}"`,
    statementTimeoutMs: ctx.config.restStatementTimeoutMs,
    ...(prepared.preferences.timezone !== undefined ? { timezone: prepared.preferences.timezone } : {}),
  };
}
