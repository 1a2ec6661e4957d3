/**
 * The functions part of the management API, behind the same management token as the tenants API (any auth failure
 * is 403 with an empty body): deploy (`PUT …/functions/<name>?verify_jwt=`, the module or source as the body),
 * list, versions, remove, secrets (sealed in the control database, never shown back) and triggers.
 */
import type { AppContext } from '../../context.js';
import { openRequest, parseJson } from '../../http/gate.js';
import { managementAuthorizer } from '../../http/management-auth.js';
import { BodyTooLarge, readBody, type Reply } from '../../http/respond.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../../http/uws.js';
import { DeployRefusal, prepareCode, validFunctionName } from './deploy.js';
import type { FunctionsService } from './service.js';
import { parseTriggers } from './triggers/config.js';
import type { TriggerEngine } from './triggers/engine.js';

const MAX_JSON_BYTES = 64 * 1024;
const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const MAX_SECRETS = 100;

interface Call {
  reply: Reply;
  tenant: string;
  name: string | null;
  query: URLSearchParams;
  contentType: string | undefined;
  body: Buffer;
}

type Handler = (call: Call) => Promise<void>;

export function mountFunctionsApi(app: TemplatedApp, ctx: AppContext, service: FunctionsService, triggers: TriggerEngine): void {
  const authorized = managementAuthorizer(ctx);
  const route = (bodyLimit: number, handler: Handler) => (res: HttpResponse, req: HttpRequest) => {
    const { reply, info, requestId } = openRequest(res, req);
    const tenant = decode(req.getParameter(0) ?? '');
    const rawName = req.getParameter(1);
    const name = rawName ? decode(rawName) : null;
    const body = bodyLimit > 0 ? readBody(res, reply, info.headers, bodyLimit) : Promise.resolve(Buffer.alloc(0));
    body.catch(() => undefined);
    authorized(info.headers.authorization)
      .then(async (ok) => {
        if (!ok) return reply.send(403);
        if (tenant === null || !ctx.registry.record(tenant)) return reply.json(404, { message: 'tenant not found' });
        if (rawName !== undefined && rawName !== '' && (name === null || !validFunctionName(name))) {
          return reply.json(400, { message: 'a function name starts with a letter and has only letters, digits, - and _ (at most 128)' });
        }
        await handler({ reply, tenant, name, query: info.query, contentType: info.headers['content-type'], body: await body });
      })
      .catch((err: unknown) => {
        if (err instanceof BodyTooLarge || reply.aborted) return;
        if (err instanceof DeployRefusal) return reply.json(err.status, { message: err.message });
        ctx.log.error({ err, error_code: 'FunctionsApiError', request_id: requestId }, 'functions management request failed');
        reply.json(500, { errors: { detail: 'Internal Server Error' } });
      });
  };
  const base = '/api/tenants/:tenant/functions';

  app.get(base, route(0, async ({ reply, tenant }) => reply.json(200, { data: await service.store.list(tenant) })));

  app.put(`${base}/:name`, route(ctx.config.functionsMaxCodeBytes, async ({ reply, tenant, name, query, contentType, body }) => {
    const verifyJwt = flag(query.get('verify_jwt'));
    const timeoutMs = bounded(query.get('timeout_ms'), 10, 3_600_000);
    const memoryMb = bounded(query.get('memory_mb'), 1, 4096);
    if (verifyJwt === undefined || timeoutMs === undefined || memoryMb === undefined) {
      return reply.json(400, { message: 'verify_jwt is true or false; timeout_ms (10..3600000) and memory_mb (1..4096) are integers' });
    }
    if (body.length === 0) return reply.json(400, { message: 'the body is the module or the source to deploy' });
    const prepared = await prepareCode(contentType, body);
    const fn = name as string;
    const { version, created } = await service.store.deploy({ tenant, name: fn, ...prepared, verifyJwt: verifyJwt ?? true, timeoutMs, memoryMb });
    service.forget(tenant, fn);
    reply.json(created ? 201 : 200, { name: fn, version, verify_jwt: verifyJwt ?? true, kind: prepared.kind, sha256: prepared.sha256 });
  }));

  app.get(`${base}/:name`, route(0, async ({ reply, tenant, name }) => {
    const versions = await service.store.versions(tenant, name as string);
    if (versions.length === 0) return reply.json(404, { message: 'function not found' });
    const current = versions.find((v) => v.current) ?? versions[versions.length - 1];
    reply.json(200, { data: { name, version: current.version, verify_jwt: current.verify_jwt, kind: current.kind, sha256: current.sha256 } });
  }));

  app.get(`${base}/:name/versions`, route(0, async ({ reply, tenant, name }) => {
    const versions = await service.store.versions(tenant, name as string);
    if (versions.length === 0) return reply.json(404, { message: 'function not found' });
    reply.json(200, { data: versions });
  }));

  app.del(`${base}/:name`, route(0, async ({ reply, tenant, name }) => {
    const removed = await service.store.remove(tenant, name as string);
    service.forget(tenant, name as string);
    if (!removed) return reply.json(404, { message: 'function not found' });
    await triggers.reload(tenant);
    reply.send(204);
  }));

  app.get(`${base}/:name/secrets`, route(0, async ({ reply, tenant, name }) => {
    const secrets = await service.store.secrets(tenant, name as string);
    if (secrets === null) return reply.json(404, { message: 'function not found' });
    reply.json(200, { data: Object.keys(secrets).sort().map((key) => ({ name: key })) });
  }));

  app.put(`${base}/:name/secrets`, route(MAX_JSON_BYTES, async ({ reply, tenant, name, body }) => {
    const parsed = parseJson(body.toString('utf8'));
    const value = parsed.ok ? parsed.value : null;
    if (!value || typeof value !== 'object' || Array.isArray(value)) return reply.json(400, { message: 'the body is a JSON object of secret names to string values' });
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length > MAX_SECRETS) return reply.json(400, { message: `at most ${MAX_SECRETS} secrets` });
    for (const [key, v] of entries) {
      if (!SECRET_NAME.test(key) || typeof v !== 'string') return reply.json(400, { message: `secret ${JSON.stringify(key.slice(0, 64))}: names are identifiers, values strings` });
    }
    if (!(await service.store.setSecrets(tenant, name as string, Object.fromEntries(entries) as Record<string, string>))) {
      return reply.json(404, { message: 'function not found' });
    }
    service.forget(tenant, name as string);
    reply.json(200, { data: entries.map(([key]) => ({ name: key })) });
  }));

  app.get(`${base}/:name/triggers`, route(0, async ({ reply, tenant, name }) => {
    reply.json(200, { data: await triggers.store.list(tenant, name as string) });
  }));

  app.get(`${base}/:name/deliveries`, route(0, async ({ reply, tenant, name }) => {
    reply.json(200, { data: await triggers.store.deliveries(tenant, name as string) });
  }));

  app.put(`${base}/:name/triggers`, route(MAX_JSON_BYTES, async ({ reply, tenant, name, body }) => {
    const parsed = parseJson(body.toString('utf8'));
    const triggerList = parsed.ok ? parseTriggers(parsed.value) : { errors: ['the body is a JSON list of triggers'] };
    if ('errors' in triggerList) return reply.json(400, { message: 'invalid triggers', errors: triggerList.errors });
    if (!(await triggers.store.replace(tenant, name as string, triggerList.triggers))) return reply.json(404, { message: 'function not found' });
    await triggers.reload(tenant);
    reply.json(200, { data: await triggers.store.list(tenant, name as string) });
  }));
}

/** undefined = present but not a boolean; null = absent. */
function flag(value: string | null): boolean | null | undefined {
  if (value === null) return null;
  return value === 'true' ? true : value === 'false' ? false : undefined;
}

function bounded(value: string | null, min: number, max: number): number | null | undefined {
  if (value === null) return null;
  if (!/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n >= min && n <= max ? n : undefined;
}

function decode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}
