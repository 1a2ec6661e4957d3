import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkModules, type Module } from '../../src/http/module.js';
import { jsonBody, serveTenantRequest } from '../../src/http/gate.js';
import { MODULES } from '../../src/modules.js';
import { until } from '../support/channels.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * The seam for HTTP modules, proven with a module that exists only here: mounted through the one list a real server
 * reads, its tenant route answers through the gate (tenant by Host, rate headers, apikey / Authorization, CORS,
 * bounded JSON body), and its tenant child runs under the tenant's supervisor.
 */

const PROBE_BODY_LIMIT = 64;
/** Tenants whose probe child is running, as the child itself records it. */
const running = new Set<string>();

const probeModule: Module = {
  name: 'probe',
  mount(app, ctx) {
    const options = { cors: true, body: jsonBody(PROBE_BODY_LIMIT), failure: { errorCode: 'ProbeFailed', log: 'probe failed', message: 'Probe failed' } };
    app.post('/probe/echo', (res, req) =>
      serveTenantRequest(ctx, res, req, options, ({ tenant, reply, body, claims }) => {
        if (!body.ok) return reply.json(400, { message: 'not JSON' });
        reply.json(200, { tenant: tenant.id, role: claims.role, body: body.value });
      }),
    );
  },
  tenantChildren(tenant) {
    return [
      {
        name: 'marker',
        async start() {
          running.add(tenant.id);
          return { exited: new Promise<never>(() => undefined), stop: async () => void running.delete(tenant.id) };
        },
      },
    ];
  },
};

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({}, undefined, undefined, [...MODULES, probeModule]);
});
afterAll(async () => {
  await t?.stop();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** A POST with a chosen Host header (fetch does not let a caller set Host). */
function post(path: string, headers: Record<string, string>, body = '{}'): Promise<Answer> {
  return request('POST', path, { 'content-type': 'application/json', ...headers }, body);
}

function request(method: string, path: string, headers: Record<string, string> = {}, body = ''): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: t.port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('a module mounted through the Module contract', () => {
  it('finds the tenant by Host: an unknown one is 401, with CORS', async () => {
    const r = await post('/probe/echo', { host: 'nosuchtenant.localhost', apikey: t.anonKey });
    expect(r.status).toBe(401);
    expect(JSON.parse(r.text)).toEqual({ message: 'Tenant not found in database' });
    expect(r.headers['access-control-allow-origin']).toBe('*');
  });

  it('wants a valid tenant JWT, and sets the rate headers either way', async () => {
    const none = await post('/probe/echo', {});
    expect(none.status).toBe(401);
    expect(JSON.parse(none.text)).toEqual({ message: 'Unauthorized' });
    expect(none.headers['x-rate-limit']).toMatch(/^\d+$/);
    const forged = await post('/probe/echo', { apikey: await t.sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 60 }, 'another-secret-of-at-least-32-characters!!') });
    expect(forged.status).toBe(401);
  });

  it('answers a request with an apikey or a Bearer token, with its JSON body, its tenant and the CORS headers', async () => {
    const tenantId = t.server.ctx.config.tenantId;
    const byApikey = await post('/probe/echo', { apikey: t.anonKey }, '{"x":1}');
    expect(byApikey.status).toBe(200);
    expect(JSON.parse(byApikey.text)).toEqual({ tenant: tenantId, role: 'anon', body: { x: 1 } });
    expect(byApikey.headers['access-control-allow-origin']).toBe('*');
    expect(byApikey.headers['x-rate-limit-remaining']).toMatch(/^-?\d+$/);
    expect(byApikey.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);

    const byBearer = await post('/probe/echo', { authorization: `Bearer ${t.serviceKey}` }, '');
    expect(byBearer.status).toBe(200);
    expect(JSON.parse(byBearer.text)).toEqual({ tenant: tenantId, role: 'service_role', body: null });
  });

  it('reads the body within the module\'s limit: not JSON is the module\'s answer, too long is upstream\'s 413', async () => {
    const notJson = await post('/probe/echo', { apikey: t.anonKey }, '{"x":');
    expect(notJson.status).toBe(400);
    expect(JSON.parse(notJson.text)).toEqual({ message: 'not JSON' });
    const tooLong = await post('/probe/echo', { apikey: t.anonKey, accept: 'application/json' }, JSON.stringify({ pad: 'x'.repeat(PROBE_BODY_LIMIT) }));
    expect(tooLong.status).toBe(413);
    expect(JSON.parse(tooLong.text)).toBe('Request Entity Too Large');
  });

  it('runs its tenant child under the tenant supervisor: started with the tenant, stopped with it', async () => {
    const tenantId = t.server.ctx.config.tenantId;
    expect((await post('/probe/echo', { apikey: t.anonKey })).status).toBe(200);
    await until(() => running.has(tenantId), 10_000, 'the probe child to start');
    expect(t.server.ctx.registry.supervisor(tenantId)).not.toBeNull();
    await t.server.ctx.registry.stopTenant(tenantId, null);
    expect(running.has(tenantId)).toBe(false);
  });

  it('leaves the other modules as they were: a REST broadcast still answers 202', async () => {
    const r = await post('/api/broadcast', { authorization: `Bearer ${t.serviceKey}` }, JSON.stringify({ messages: [{ topic: 'room', event: 'e', payload: {} }] }));
    expect(r.status).toBe(202);
  });
});

describe('the request id', () => {
  it('is on the answer of every HTTP route, new for each request', async () => {
    const answers = await Promise.all([
      request('GET', '/healthcheck'),
      request('GET', '/api/ping'),
      request('GET', '/metrics'),
      request('GET', '/api/tenants', { authorization: 'Bearer not-a-token' }),
      request('POST', '/api/broadcast', { authorization: `Bearer ${t.serviceKey}`, 'content-type': 'application/json' }, '{"messages":[]}'),
      request('POST', '/probe/echo', { apikey: t.anonKey }, '{}'),
      request('OPTIONS', '/api/broadcast'),
      request('GET', '/no/such/route'),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 403, 422, 200, 204, 404]);
    const ids = answers.map((a) => a.headers['x-request-id']);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("is the caller's own x-request-id or baggage request-id when it has one", async () => {
    const given = 'caller-request-0123456789';
    expect((await request('GET', '/api/ping', { 'x-request-id': given })).headers['x-request-id']).toBe(given);
    expect((await request('GET', '/api/ping', { baggage: 'request-id=trace-0001' })).headers['x-request-id']).toBe('trace-0001');
  });

  it("is not on upstream's 413, which is answered before any plug runs", async () => {
    const r = await post('/probe/echo', { apikey: t.anonKey, 'content-length': String(9_000_000) }, '');
    expect(r.status).toBe(413);
    expect(r.headers['x-request-id']).toBeUndefined();
  });
});

describe('the module list', () => {
  it('refuses two modules of one name', () => {
    expect(() => checkModules([...MODULES, probeModule, { ...probeModule }])).toThrow('two HTTP modules are named "probe"');
    expect(() => checkModules([...MODULES, probeModule])).not.toThrow();
  });
});
