import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signManagementToken } from '../../../src/auth/management.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { ECHO_WAT, FunctionsAdmin, wat } from './support.js';

describe('functions management API', () => {
  let t: TestServer;
  let admin: FunctionsAdmin;
  let echo: Uint8Array;

  beforeAll(async () => {
    t = await startTestServer();
    admin = new FunctionsAdmin(t);
    echo = await wat(ECHO_WAT);
  });
  afterAll(() => t?.stop());

  it('lets only the management token deploy, list, read, remove and set secrets', async () => {
    await admin.deploy('guarded', echo, 'application/wasm');
    const tokens: (string | null)[] = [null, 'garbage', t.anonKey, t.serviceKey, await signManagementToken('another-secret-with-at-least-32-characters')];
    for (const token of tokens) {
      const attempts = [
        await admin.request('PUT', '/functions/intruder', echo, { 'content-type': 'application/wasm' }, token),
        await admin.request('GET', '/functions', undefined, {}, token),
        await admin.request('GET', '/functions/guarded', undefined, {}, token),
        await admin.request('GET', '/functions/guarded/versions', undefined, {}, token),
        await admin.request('DELETE', '/functions/guarded', undefined, {}, token),
        await admin.request('PUT', '/functions/guarded/secrets', '{"A":"b"}', { 'content-type': 'application/json' }, token),
        await admin.request('GET', '/functions/guarded/secrets', undefined, {}, token),
        await admin.request('PUT', '/functions/guarded/triggers', '[]', { 'content-type': 'application/json' }, token),
      ];
      for (const res of attempts) {
        expect(res.status).toBe(403);
        expect(await res.text()).toBe('');
      }
    }
    const list = (await (await admin.request('GET', '/functions')).json()) as { data: { name: string }[] };
    expect(list.data.map((f) => f.name)).toEqual(['guarded']);
  });

  it('deploys new versions, answers 201 then 200 with name, version and verify_jwt, lists and removes', async () => {
    const first = await admin.request('PUT', '/functions/versioned', echo, { 'content-type': 'application/wasm' });
    expect(first.status).toBe(201);
    expect(await first.json()).toMatchObject({ name: 'versioned', version: 1, verify_jwt: true, kind: 'wasm' });
    const second = await admin.request('PUT', '/functions/versioned?verify_jwt=false', 'export default { fetch() { return new Response("ts") } } as const;', { 'content-type': 'application/typescript' });
    expect(second.status).toBe(200);
    expect(await second.json()).toMatchObject({ name: 'versioned', version: 2, verify_jwt: false, kind: 'js' });
    const versions = (await (await admin.request('GET', '/functions/versioned/versions')).json()) as { data: { version: number; current: boolean }[] };
    expect(versions.data.map((v) => [v.version, v.current])).toEqual([[1, false], [2, true]]);
    const invoked = await fetch(`${t.url}/functions/v1/versioned`, { method: 'POST' });
    expect(await invoked.text()).toBe('ts');
    expect((await admin.request('DELETE', '/functions/versioned')).status).toBe(204);
    expect((await admin.request('DELETE', '/functions/versioned')).status).toBe(404);
    expect((await fetch(`${t.url}/functions/v1/versioned`, { method: 'POST' })).status).toBe(404);
  });

  it('refuses bad deploys with 4xx, never 500', async () => {
    const cases: [string, string | Uint8Array, string, number][] = [
      ['/functions/x', 'not wasm', 'application/wasm', 400],
      ['/functions/x', 'body', 'text/html', 415],
      ['/functions/x', 'export default {', 'application/typescript', 400],
      ['/functions/x?verify_jwt=maybe', echo, 'application/wasm', 400],
      ['/functions/x?memory_mb=0', echo, 'application/wasm', 400],
      ['/functions/1bad', echo, 'application/wasm', 400],
      ['/functions/x', '', 'application/wasm', 400],
    ];
    for (const [path, body, type, status] of cases) {
      const res = await admin.request('PUT', path, body, { 'content-type': type });
      expect(res.status, path).toBe(status);
      expect(typeof ((await res.json()) as { message: string }).message).toBe('string');
    }
    const noTenant = await fetch(`${t.url}/api/tenants/nope/functions`, { headers: { authorization: `Bearer ${await admin.token()}` } });
    expect(noTenant.status).toBe(404);
  });

  it('refuses a deploy over FUNCTIONS_MAX_CODE_BYTES with 413', async () => {
    const small = await startTestServer({ FUNCTIONS_MAX_CODE_BYTES: '1024' }, t.db);
    try {
      const res = await new FunctionsAdmin(small).request('PUT', '/functions/large', new Uint8Array(2048), { 'content-type': 'application/wasm' });
      expect(res.status).toBe(413);
    } finally {
      await small.server.stop();
    }
  });

  it('keeps secrets encrypted at rest, never shows their values, and hands them to the function', async () => {
    await admin.deploy('secretive', 'export default { fetch(_r, env) { return new Response(env.API_KEY) } }', 'application/javascript', '?verify_jwt=false');
    const put = await admin.request('PUT', '/functions/secretive/secrets', JSON.stringify({ API_KEY: 'sk-very-secret-value' }), { 'content-type': 'application/json' });
    expect(put.status).toBe(200);
    expect(await put.text()).not.toContain('sk-very-secret-value');
    const names = await (await admin.request('GET', '/functions/secretive/secrets')).json();
    expect(names).toEqual({ data: [{ name: 'API_KEY' }] });
    const { rows } = await t.server.ctx.control.pool.query<{ secrets: string }>("SELECT secrets FROM _performer.functions WHERE name = 'secretive'");
    expect(rows[0].secrets.startsWith('g1:')).toBe(true);
    expect(rows[0].secrets).not.toContain('sk-very-secret-value');
    expect(await (await fetch(`${t.url}/functions/v1/secretive`)).text()).toBe('sk-very-secret-value');
    for (const bad of ['[]', '{"1X":"a"}', '{"A":1}', 'nope']) {
      expect((await admin.request('PUT', '/functions/secretive/secrets', bad, { 'content-type': 'application/json' })).status).toBe(400);
    }
    expect((await admin.request('PUT', '/functions/ghost/secrets', '{}', { 'content-type': 'application/json' })).status).toBe(404);
  });

  it('lets an invocation in flight finish on the version it started with while a new one is deployed', async () => {
    await admin.deploy('rolling', 'export default { fetch() { const end = Date.now() + 400; while (Date.now() < end) {} return new Response("v1") } }', 'application/javascript', '?verify_jwt=false');
    const inFlight = fetch(`${t.url}/functions/v1/rolling`).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 100));
    await admin.deploy('rolling', 'export default { fetch() { return new Response("v2") } }', 'application/javascript', '?verify_jwt=false');
    expect(await (await fetch(`${t.url}/functions/v1/rolling`)).text()).toBe('v2');
    expect(await inFlight).toBe('v1');
  });
});
