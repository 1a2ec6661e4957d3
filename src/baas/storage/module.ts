/**
 * `/storage/v1`: the Supabase Storage API that supabase-js `storage.*` speaks (spec baas-api.md §4). Per request: the
 * gate (tenant by Host, rate, CORS), the route (routes/table.ts), the body (JSON within a limit, or a stream from
 * the socket for uploads), the caller (http/auth.ts, the shared JWT verifier), then the handler, whose SQL runs in a
 * transaction with the caller's role and claims so the policies on storage.objects and storage.buckets apply
 * (db.ts). Errors have upstream's body (errors.ts); nothing here crashes the process or leaks a stack trace.
 */
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { AppContext } from '../../context.js';
import { openRequest, parseJson, tenantGate } from '../../http/gate.js';
import type { Module } from '../../http/module.js';
import { emitCommitted, type ModuleEvent } from '../../http/module-events.js';
import { BodyTooLarge, readBody, type Reply } from '../../http/respond.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../../http/uws.js';
import type { TenantRuntime } from '../../tenants/tenant.js';
import type { BlobBackend } from './blob/backend.js';
import { createBlobBackend } from './blob/select.js';
import { errors, fromDatabaseError, isDatabaseError, StorageError } from './errors.js';
import { identify, MissingApiKey } from './http/auth.js';
import { bodyStream, RequestAborted } from './http/body.js';
import { decodePath } from './names.js';
import { RESUMABLE_PATH, ResumableUploads } from './routes/resumable.js';
import { matchRoute, type RouteMatch } from './routes/table.js';
import { storageSweeper } from './sweeper.js';
import type { StorageCall, StorageSettings } from './service.js';

const PREFIX = '/storage/v1';
/** JSON bodies (bucket settings, lists of paths) are small; upstream's body limit for them is 1 MB-ish too. */
const MAX_JSON_BODY_BYTES = 1024 * 1024;
/** What browsers may send and read on storage calls (spec §0.3), beyond the gate's defaults. */
const ALLOW_HEADERS =
  'authorization, x-client-info, apikey, content-type, x-upsert, cache-control, x-metadata, range, if-none-match, if-modified-since, content-encoding, x-api-key, ' +
  'tus-resumable, upload-length, upload-metadata, upload-offset, upload-defer-length, upload-concat, x-http-method-override';
const EXPOSE_HEADERS = 'content-range, content-disposition, etag, last-modified, content-length, accept-ranges, location, upload-offset, upload-length, tus-resumable, tus-version, tus-max-size, tus-extension';

class StorageModule implements Module {
  readonly name = 'storage';
  private backend: BlobBackend | null = null;
  private resumable: ResumableUploads | null = null;

  mount(app: TemplatedApp, ctx: AppContext): void {
    const settings: StorageSettings = {
      fileSizeLimit: ctx.config.storageFileSizeLimit,
      smallUploadBytes: ctx.config.storageSmallUploadBytes,
      statementTimeoutMs: ctx.config.restStatementTimeoutMs,
    };
    const { backend, resumable } = this.parts(ctx);
    const handler = (res: HttpResponse, req: HttpRequest) => serve(ctx, settings, backend, resumable, res, req);
    app.any(`${PREFIX}/*`, handler);
  }

  tenantChildren(tenant: TenantRuntime, ctx: AppContext) {
    const { backend, resumable } = this.parts(ctx);
    return [storageSweeper(tenant, backend, resumable)];
  }

  /** One backend and one set of TUS servers per server, made on first use. */
  private parts(ctx: AppContext): { backend: BlobBackend; resumable: ResumableUploads } {
    this.backend ??= createBlobBackend(ctx.config);
    this.resumable ??= new ResumableUploads(path.resolve(ctx.config.storageDir));
    return { backend: this.backend, resumable: this.resumable };
  }
}

export const storageModule: Module = new StorageModule();

function serve(ctx: AppContext, settings: StorageSettings, backend: BlobBackend, resumable: ResumableUploads, res: HttpResponse, req: HttpRequest): void {
  const { reply, info, requestId } = openRequest(res, req, { cors: false });
  storageCors(reply);
  const method = info.method.toUpperCase();
  if (method === 'OPTIONS') return reply.send(204);
  const tenant = tenantGate(ctx, reply, info);
  if (!tenant) return;
  const route = info.url === RESUMABLE_PATH || info.url.startsWith(`${RESUMABLE_PATH}/`) ? resumableRoute(resumable, method) : matchRoute(method, info.url.slice(PREFIX.length));
  if (!route) return reply.json(404, errors.notFound().body());
  // The body must be claimed before the handler first returns: uWS hands it only to an onData set synchronously.
  let stream: Readable | null = null;
  let jsonBody: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
  if (route.body === 'stream') stream = bodyStream(res, reply);
  else if (route.body === 'json') jsonBody = readBody(res, reply, info.headers, MAX_JSON_BODY_BYTES);
  jsonBody.catch(() => undefined);
  const events: ModuleEvent[] = [];
  (async () => {
    if (tenant.settings.suspend) throw errors.accessDenied('Tenant is suspended');
    const bucket = decodePath(route.bucket);
    const key = decodePath(route.key);
    if (bucket === null || key === null) throw errors.invalidKey(route.key);
    const caller = route.caller ? await identify(tenant, info.headers) : null;
    let json: unknown = null;
    if (route.body === 'json') {
      const raw = await jsonBody;
      const parsed = raw.length === 0 ? { ok: true as const, value: null } : parseJson(raw.toString('utf8'));
      if (!parsed.ok) throw errors.invalidRequest('Body is not valid JSON');
      json = parsed.value;
    }
    const call: StorageCall = { settings, backend, tenant, reply, info, method, bucket, key, caller, json, body: stream, requestId, events };
    await route.handler(call);
  })().finally(() => {
    // Events are noted only after their COMMIT, so they stand whether or not the handler failed afterwards.
    emitCommitted(ctx, tenant.settings.externalId, events, tenant.log);
  }).catch((err: unknown) => {
    // An unread upload body is left behind: close the connection with the answer rather than read the rest.
    const close = stream !== null && !stream.readableEnded;
    stream?.destroy();
    if (err instanceof BodyTooLarge || err instanceof RequestAborted || reply.aborted) return;
    if (err instanceof MissingApiKey) return reply.json(401, err.body, close);
    if (err instanceof StorageError) return reply.json(err.httpStatus, err.body(), close);
    // A statement the caller's rights or input refused (RLS, a role the API may not take, a duplicate...).
    const mapped = isDatabaseError(err) ? fromDatabaseError(err) : null;
    if (mapped && mapped.statusCode !== 500) return reply.json(mapped.httpStatus, mapped.body(), close);
    tenant.log.error({ err, error_code: 'StorageRequestFailed', request_id: requestId }, 'storage request failed');
    reply.json(500, errors.internal().body(), close);
  });
}

/** TUS requests go to the library whole; POST and PATCH carry bytes. */
function resumableRoute(resumable: ResumableUploads, method: string): RouteMatch | null {
  if (!['POST', 'PATCH', 'HEAD', 'DELETE'].includes(method)) return null;
  return { handler: (call) => resumable.handle(call), body: method === 'POST' || method === 'PATCH' ? 'stream' : 'none', caller: true, bucket: '', key: '' };
}

function storageCors(reply: Reply): void {
  reply
    .header('access-control-allow-origin', '*')
    .header('access-control-allow-methods', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS')
    .header('access-control-allow-headers', ALLOW_HEADERS)
    .header('access-control-expose-headers', EXPOSE_HEADERS);
}
