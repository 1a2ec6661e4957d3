/**
 * The functions runtime of one server: deployed functions looked up (briefly cached, so a deploy on another node
 * is served within HEAD_CACHE_MS), their code compiled once per version, invocations run on the worker pool with
 * the function's limits, and every outcome logged and counted. Both the HTTP route and the triggers call `invoke`.
 */
import { signHs256 } from '../../auth/jwt.js';
import type { AppContext } from '../../context.js';
import type { TenantRuntime } from '../../tenants/tenant.js';
import { wagiEnvironment, type GuestRequest, type GuestResponse } from './cgi.js';
import { errorFor, NOT_FOUND, type GatewayError } from './errors.js';
import { FunctionMetrics } from './metrics.js';
import { CodeCache } from './runtime/code-cache.js';
import { WorkerPool } from './runtime/pool.js';
import { FunctionStore, type FunctionHead } from './store.js';

const HEAD_CACHE_MS = 1000;
/** The keys a function finds in its env live an hour and are made again after half of it. */
const KEY_LIFETIME_S = 3600;
const CACHED_VERSIONS = 256;

export interface Invocation {
  tenant: TenantRuntime;
  name: string;
  request: GuestRequest;
  /** The Host the call came in on: the function's own-API fetches go out as it, so they reach the same tenant. */
  host: string;
  requestId: string;
}

export type InvocationAnswer = { ok: true; response: GuestResponse; head: FunctionHead } | { ok: false; error: GatewayError; head: FunctionHead | null };

interface CachedHead {
  head: FunctionHead | null;
  secrets: Record<string, string>;
  at: number;
}

export class FunctionsService {
  readonly store: FunctionStore;
  readonly pool: WorkerPool;
  readonly metrics: FunctionMetrics;
  private readonly code = new CodeCache(CACHED_VERSIONS);
  private readonly heads = new Map<string, CachedHead>();
  private readonly keys = new Map<string, { anon: string; service: string; until: number; secret: string }>();

  constructor(private readonly ctx: AppContext) {
    this.store = new FunctionStore(ctx.control);
    this.metrics = new FunctionMetrics(ctx.metrics.registry);
    this.pool = new WorkerPool({
      size: ctx.config.functionsWorkers,
      // The worker's own JavaScript (runtime, QuickJS glue) beside the cap; guests' memory is capped on its own.
      heapMb: Math.max(64, ctx.config.functionsMemoryMb) + 64,
      maxQueued: ctx.config.functionsWorkers * 256,
      cachedVersions: 64,
    });
  }

  /** The current version of a function with its secrets, cached for HEAD_CACHE_MS (then without a promise). */
  lookup(tenant: string, name: string): CachedHead | Promise<CachedHead> {
    const key = `${tenant}\u0000${name}`;
    const cached = this.heads.get(key);
    if (cached && Date.now() - cached.at < HEAD_CACHE_MS) return cached;
    return this.load(key, tenant, name);
  }

  private async load(key: string, tenant: string, name: string): Promise<CachedHead> {
    const head = await this.store.head(tenant, name);
    const secrets = head ? ((await this.store.secrets(tenant, name)) ?? {}) : {};
    const entry = { head, secrets, at: Date.now() };
    if (this.heads.size > 10_000) this.heads.clear();
    this.heads.set(key, entry);
    return entry;
  }

  /** Drops what this node cached about a function after a change made here. */
  forget(tenant: string, name: string): void {
    this.heads.delete(`${tenant}\u0000${name}`);
  }

  /** Runs a function that `lookup` found; `head` and `secrets` pin the version the invocation started with. */
  async run(call: Invocation, head: FunctionHead, secrets: Record<string, string>): Promise<InvocationAnswer> {
    const started = process.hrtime.bigint();
    const labels = { tenant: head.tenant, function: head.name };
    const memoryBytes = (head.memoryMb ?? this.ctx.config.functionsMemoryMb) * 1024 * 1024;
    const timeoutMs = head.timeoutMs ?? this.ctx.config.functionsTimeoutMs;
    const ready = this.code.ready(head.versionId) ?? (await this.code.get(head.versionId, head.kind, memoryBytes, () => this.store.code(head.versionId)));
    let answer: InvocationAnswer;
    if (ready.kind === 'failed') {
      call.tenant.log.warn({ function: head.name, version: head.version, error_code: 'FunctionBootError', request_id: call.requestId, reason: ready.message }, 'function failed to start');
      answer = { ok: false, error: errorFor(ready.outcome), head };
    } else {
      const selfOrigin = this.ctx.selfUrl;
      const keys = this.tenantKeys(call.tenant);
      const env = this.environment(call, head, { ...(keys instanceof Promise ? await keys : keys), ...secrets }, selfOrigin);
      const result = await this.pool.run({
        versionId: head.versionId,
        kind: head.kind,
        name: head.name,
        ...(ready.kind === 'wasm' ? { module: ready.module, wasmMemory: ready.memory } : { source: ready.source }),
        memoryBytes,
        request: call.request,
        env,
        url: `http://${call.host || 'localhost'}/functions/v1/${head.name}${call.request.path}${call.request.query ? `?${call.request.query}` : ''}`,
        fetch: {
          allow: selfOrigin === null ? this.ctx.config.functionsFetchAllow : [selfOrigin, ...this.ctx.config.functionsFetchAllow],
          selfOrigin,
          selfAddress: selfOrigin,
          host: call.host,
        },
        responseLimit: this.ctx.config.functionsMaxBodyBytes,
        timeoutMs,
      });
      for (const line of result.logs) {
        call.tenant.log[line.level]({ function: head.name, version: head.version, request_id: call.requestId, source: 'function' }, line.message);
      }
      if (result.memoryBytes > 0) this.metrics.memory.set(labels, result.memoryBytes);
      if (result.outcome === 'ok' && result.response) {
        answer = { ok: true, response: result.response, head };
      } else {
        const outcome = result.outcome === 'ok' ? 'error' : result.outcome;
        call.tenant.log.warn(
          { function: head.name, version: head.version, request_id: call.requestId, error_code: errorFor(outcome).body.code, reason: result.message },
          'function invocation failed',
        );
        answer = { ok: false, error: errorFor(outcome), head };
      }
    }
    this.metrics.duration.observe({ ...labels, kind: head.kind }, Number(process.hrtime.bigint() - started) / 1e9);
    const status = answer.ok ? answer.response.status : answer.error.status;
    this.metrics.invocations.inc({ ...labels, status: String(status) });
    if (!answer.ok) this.metrics.errors.inc({ ...labels, code: String(answer.error.body.code) });
    return answer;
  }

  /** Looks the function up and runs it: NOT_FOUND when there is none. */
  async invoke(call: Invocation): Promise<InvocationAnswer> {
    const found = this.lookup(call.tenant.settings.externalId, call.name);
    const { head, secrets } = found instanceof Promise ? await found : found;
    if (!head) return { ok: false, error: NOT_FOUND, head: null };
    return this.run(call, head, secrets);
  }

  /**
   * SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY, as Supabase gives its functions: short-lived tokens signed with
   * the tenant's secret (none for a tenant verified by JWKS only), so a function can call the API as anon or as
   * service_role. A function's own secrets of the same names win.
   */
  private tenantKeys(tenant: TenantRuntime): Record<string, string> | Promise<Record<string, string>> {
    const secret = tenant.settings.jwtSecret;
    if (secret === null) return {};
    const now = Math.floor(Date.now() / 1000);
    const entry = this.keys.get(tenant.settings.externalId);
    if (entry && entry.until >= now && entry.secret === secret) return { SUPABASE_ANON_KEY: entry.anon, SUPABASE_SERVICE_ROLE_KEY: entry.service };
    return this.signKeys(tenant.settings.externalId, secret, now);
  }

  private async signKeys(id: string, secret: string, now: number): Promise<Record<string, string>> {
    const claims = { iss: 'performer', iat: now, exp: now + KEY_LIFETIME_S };
    const entry = { anon: await signHs256({ ...claims, role: 'anon' }, secret), service: await signHs256({ ...claims, role: 'service_role' }, secret), until: now + KEY_LIFETIME_S / 2, secret };
    this.keys.set(id, entry);
    return { SUPABASE_ANON_KEY: entry.anon, SUPABASE_SERVICE_ROLE_KEY: entry.service };
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  /** WASI: the WAGI variables with the secrets; JavaScript: the `env` object, secrets and SUPABASE_URL. */
  private environment(call: Invocation, head: FunctionHead, secrets: Record<string, string>, selfOrigin: string | null): Record<string, string> {
    const base: Record<string, string> = { ...secrets };
    if (selfOrigin !== null) base.SUPABASE_URL = selfOrigin;
    return head.kind === 'wasm' ? wagiEnvironment(call.request, head.name, base) : base;
  }
}
