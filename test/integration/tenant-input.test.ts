import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { RawClient } from '../support/raw-client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { api, extensionFor } from '../support/tenants.js';

let t: TestServer;
const databases: TestDatabase[] = [];

beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.stop();
  await Promise.all(databases.map((d) => d.drop()));
});

async function database(): Promise<TestDatabase> {
  const d = await createTestDatabase('tenant_input');
  databases.push(d);
  return d;
}

/** Joins a public channel on the tenant named by the Host header; the reply's status. */
async function joinStatus(host: string, secret: string): Promise<string> {
  const key = await t.sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 600 }, secret);
  const c = await RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${key}&vsn=2.0.0`, { host: `${host}:${t.port}` });
  c.send(['1', '1', 'realtime:room', 'phx_join', { config: {} }]);
  const reply = await c.reply('1', 10_000);
  c.close();
  return (reply[4] as { status: string }).status;
}

describe('external_id', () => {
  it('refuses an upper-case external_id (the Host lookup is lower-case, so it could never be reached)', async () => {
    const d = await database();
    const tenant = (id: string) => ({ tenant: { external_id: id, jwt_secret: 's'.repeat(40), extensions: [extensionFor(d.url)] } });
    for (const id of ['Acme', 'ACME', 'acMe-2']) {
      expect(await api(t, 'POST', '/api/tenants', tenant(id))).toMatchObject({ status: 422, body: { errors: { external_id: ['is invalid'] } } });
      expect(t.server.ctx.registry.record(id)).toBeNull();
    }
    const put = await api(t, 'PUT', '/api/tenants/Upper', { tenant: { jwt_secret: 's'.repeat(40), extensions: [extensionFor(d.url)] } });
    expect(put).toMatchObject({ status: 422, body: { errors: { external_id: ['is invalid'] } } });
    expect((await api(t, 'GET', '/api/tenants/Upper')).status).toBe(404);
  });

  it('serves a lower-case tenant whatever the case of the Host header', async () => {
    const d = await database();
    const secret = 'lower-case-tenant-secret-with-32-characters';
    const res = await api(t, 'POST', '/api/tenants', { tenant: { external_id: 'mixed-case', jwt_secret: secret, extensions: [extensionFor(d.url)] } });
    expect(res.status).toBe(201);
    expect(await joinStatus('mixed-case.localhost', secret)).toBe('ok');
    expect(await joinStatus('MIXED-Case.localhost', secret)).toBe('ok');
  });
});
