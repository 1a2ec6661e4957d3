import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMachineTestDatabase, createTestDatabase, type TestDatabase } from '../support/postgres.js';
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

async function database(onMachinePostgres = false): Promise<TestDatabase> {
  const d = onMachinePostgres ? await createMachineTestDatabase('tenant_input') : await createTestDatabase('tenant_input');
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

describe('db_password', () => {
  it('accepts an empty db_password (trust authentication) and connects with it', async () => {
    // The machine's PostgreSQL 15 trusts local connections: no password at all.
    const d = await database(true);
    const ext = extensionFor(d.url);
    expect(ext.settings.db_password).toBe('');
    const secret = 'trust-auth-tenant-secret-with-32-characters';
    const res = await api(t, 'POST', '/api/tenants', { tenant: { external_id: 'trusted', jwt_secret: secret, extensions: [ext] } });
    expect([res.status, res.text]).toEqual([201, expect.any(String)]);
    // Its database was migrated on creation, over the password-less connection.
    const client = new pg.Client({ connectionString: d.url });
    await client.connect();
    const { rows } = await client.query('SELECT count(*)::int AS n FROM realtime.schema_migrations');
    await client.end();
    expect(rows[0].n).toBeGreaterThan(0);
    expect(await joinStatus('trusted.localhost', secret)).toBe('ok');
  });

  it('still requires the db_password key: absent or null is blank, as upstream', async () => {
    const d = await database();
    for (const password of [undefined, null]) {
      const ext = extensionFor(d.url);
      if (password === undefined) delete ext.settings.db_password;
      else ext.settings.db_password = password;
      const res = await api(t, 'POST', '/api/tenants', { tenant: { external_id: 'no-password', jwt_secret: 's'.repeat(40), extensions: [ext] } });
      expect(res.status).toBe(422);
      expect((res.body as { errors: { extensions: string[] } }).errors.extensions).toEqual(["db_password can't be blank"]);
    }
    // The other connection settings may not be empty: an empty host would silently mean localhost.
    const ext = extensionFor(d.url);
    ext.settings.db_host = '';
    const res = await api(t, 'POST', '/api/tenants', { tenant: { external_id: 'no-host', jwt_secret: 's'.repeat(40), extensions: [ext] } });
    expect((res.body as { errors: { extensions: string[] } }).errors.extensions).toEqual(["db_host can't be blank"]);
  });
});
