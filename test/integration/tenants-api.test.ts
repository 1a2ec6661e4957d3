import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failedHandshake, RawClient } from '../support/raw-client.js';
import { startTestServer, waitForEvent, type TestServer } from '../support/server.js';
import { api, createTenant, extensionFor, type TestTenant } from '../support/tenants.js';
import { subscribed, until } from '../support/channels.js';
import { withClient } from '../support/postgres.js';
import { databaseOid } from '../../src/replication/changes-slot.js';
import { changesSlotName } from '../../src/replication/slot-names.js';

let t: TestServer;
const tenants: TestTenant[] = [];
const NEXT_SECRET = 'next-api-secret-with-at-least-32-characters';

beforeAll(async () => {
  t = await startTestServer({ API_JWT_SECRET_NEXT: NEXT_SECRET });
});
afterAll(async () => {
  await t?.stop();
  await Promise.all(tenants.map((x) => x.db.drop()));
});

async function tenant(id: string, extra: Record<string, unknown> = {}): Promise<TestTenant> {
  const created = await createTenant(t, id, extra);
  tenants.push(created);
  return created;
}

/** A REST call with a tenant's Host header (fetch cannot set Host, so node:http does it). */
async function restPost(path: string, tenantId: string, key: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: t.port, path, method: 'POST', headers: { host: `${tenantId}.localhost`, authorization: `Bearer ${key}`, 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

function rawUrl(key: string): string {
  return `ws://127.0.0.1:${t.port}/socket/websocket?apikey=${key}&vsn=2.0.0`;
}

describe('management API authorization', () => {
  it('answers 403 with an empty body without a valid API token, and accepts the rotation secret', async () => {
    for (const token of ['', 'not-a-jwt', await t.sign({ role: 'x' }, 'some-other-secret-of-32-characters!!')]) {
      const res = await api(t, 'GET', '/api/tenants', undefined, token);
      expect(res.status).toBe(403);
      expect(res.text).toBe('');
    }
    const next = await t.sign({ role: 'service_role' }, NEXT_SECRET);
    expect((await api(t, 'GET', '/api/tenants', undefined, next)).status).toBe(200);
  });
});

describe('tenant lifecycle over the management API', () => {
  it('creates a tenant (201, location, no secrets in the body), encrypts its secrets, and serves it by Host', async () => {
    const acme = await tenant('acme');
    const res = await api(t, 'GET', '/api/tenants/acme');
    expect(res.status).toBe(200);
    const data = (res.body as { data: Record<string, unknown> }).data;
    expect(data).toMatchObject({ external_id: 'acme', name: 'acme', max_concurrent_users: 200, private_only: false, presence_enabled: false });
    expect(JSON.stringify(data)).not.toContain(acme.secret);
    const settings = (data.extensions as { settings: Record<string, unknown> }[])[0].settings;
    expect(settings).not.toHaveProperty('db_password');
    expect(String(settings.db_host)).toMatch(/^g1:/);
    expect(settings.region).toBe('us-east-1');

    // At rest: ciphertext only.
    const client = new pg.Client({ connectionString: t.db.url });
    await client.connect();
    const { rows } = await client.query("SELECT jwt_secret, (SELECT settings FROM _performer.extensions WHERE tenant_external_id = 'acme') AS s FROM _performer.tenants WHERE external_id = 'acme'");
    await client.end();
    expect(rows[0].jwt_secret).toMatch(/^g1:/);
    expect(JSON.stringify(rows[0])).not.toContain(acme.secret);
    expect(rows[0].s.db_password).toMatch(/^g1:/);

    // Its database was migrated when it was created.
    const tdb = new pg.Client({ connectionString: acme.db.url });
    await tdb.connect();
    const migrated = await tdb.query("SELECT count(*)::int AS n FROM realtime.schema_migrations");
    await tdb.end();
    expect(migrated.rows[0].n).toBeGreaterThan(0);

    const a = t.client({ host: 'acme.localhost', key: acme.anonKey }).channel('room', { config: { broadcast: { self: true } } });
    const got = waitForEvent<unknown>((cb) => a.on('broadcast', { event: 'e' }, (m) => cb(m.payload)), 5000, 'broadcast');
    expect(await subscribed(a)).toBe('SUBSCRIBED');
    await a.send({ type: 'broadcast', event: 'e', payload: { tenant: 'acme' } });
    expect(await got).toEqual({ tenant: 'acme' });
  });

  it('lists tenants, answers unknown ids with 404, and rejects invalid bodies with 422', async () => {
    const list = await api(t, 'GET', '/api/tenants');
    expect((list.body as { data: { external_id: string }[] }).data.map((x) => x.external_id)).toContain('realtime-dev');
    expect(await api(t, 'GET', '/api/tenants/nope')).toMatchObject({ status: 404, body: { message: 'not found' } });
    const bad = await api(t, 'POST', '/api/tenants', { tenant: { external_id: 'bad', extensions: [] } });
    expect(bad).toMatchObject({ status: 422, body: { errors: { jwt_secret: ["can't be blank"] } } });
    const badExt = await api(t, 'POST', '/api/tenants', {
      tenant: { external_id: 'bad', jwt_secret: 'x'.repeat(40), extensions: [{ type: 'postgres_cdc_rls', settings: { db_host: 'h' } }] },
    });
    expect(badExt.status).toBe(422);
    expect((badExt.body as { errors: { extensions: string[] } }).errors.extensions).toContain("db_name can't be blank");
    expect((await api(t, 'GET', '/api/tenants/bad')).status).toBe(404);
  });

  it('upserts: POST of an existing tenant is 200, PUT of a new id is 201, PATCH changes fields', async () => {
    const beta = await tenant('beta');
    const again = await api(t, 'POST', '/api/tenants', { tenant: { external_id: 'beta', max_channels_per_client: 7 } });
    expect(again.status).toBe(200);
    expect((again.body as { data: { max_channels_per_client: number } }).data.max_channels_per_client).toBe(7);
    const put = await api(t, 'PUT', '/api/tenants/gamma', { tenant: { jwt_secret: 'g'.repeat(40), extensions: [extensionFor(beta.db.url)] } });
    expect(put.status).toBe(201);
    expect((put.body as { data: { external_id: string; name: string } }).data).toMatchObject({ external_id: 'gamma', name: 'gamma' });
    const patch = await api(t, 'PATCH', '/api/tenants/gamma', { tenant: { presence_enabled: true, max_bytes_per_second: 5_000_000_000 } });
    expect(patch.status).toBe(200);
    expect((patch.body as { data: { presence_enabled: boolean; max_bytes_per_second: number } }).data).toMatchObject({ presence_enabled: true, max_bytes_per_second: 5_000_000_000 });
    expect(await api(t, 'PATCH', '/api/tenants/gamma', { tenant: { max_events_per_second: 5_000_000_000 } })).toMatchObject({ status: 422, body: { errors: { max_events_per_second: ['is invalid'] } } });
    expect((await api(t, 'DELETE', '/api/tenants/gamma')).status).toBe(204);
  });

  it('disconnects sockets with "Server requested disconnect" and 1012 when the JWT secret changes', async () => {
    const delta = await tenant('delta');
    const c = await RawClient.connect(rawUrl(delta.anonKey), { host: `delta.localhost:${t.port}` });
    c.send(['1', '1', 'realtime:r', 'phx_join', { config: {} }]);
    expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
    expect((await api(t, 'PATCH', '/api/tenants/delta', { tenant: { jwt_secret: 'n'.repeat(40) } })).status).toBe(200);
    const system = (await c.nextText((m) => (m as unknown[])[3] === 'system')) as unknown[];
    expect(system[4]).toEqual({ extension: 'system', status: 'ok', message: 'Server requested disconnect', channel: 'r' });
    expect(await c.closed).toBe(1012);
    // The old key no longer verifies.
    expect(await failedHandshake(rawUrl(delta.anonKey), { host: `delta.localhost:${t.port}` })).toMatchObject({ status: 401 });
  });

  it('applies limit changes without reconnecting', async () => {
    const eps = await tenant('eps');
    const c = await RawClient.connect(rawUrl(eps.anonKey), { host: `eps.localhost:${t.port}` });
    c.send(['1', '1', 'realtime:a', 'phx_join', { config: {} }]);
    expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
    expect((await api(t, 'PATCH', '/api/tenants/eps', { tenant: { max_channels_per_client: 1 } })).status).toBe(200);
    c.send(['2', '2', 'realtime:b', 'phx_join', { config: {} }]);
    expect((await c.reply('2'))[4]).toEqual({ status: 'error', response: { reason: 'ChannelRateLimitReached: Too many channels' } });
    expect(c.closeCode).toBeNull();
    expect((await api(t, 'PATCH', '/api/tenants/eps', { tenant: { max_channels_per_client: 5 } })).status).toBe(200);
    c.send(['3', '3', 'realtime:b', 'phx_join', { config: {} }]);
    expect((await c.reply('3'))[4]).toMatchObject({ status: 'ok' });
    c.close();
  });

  it('suspends a tenant: sockets disconnected, handshakes 403, REST 403 Tenant is suspended', async () => {
    const sus = await tenant('sus');
    const c = await RawClient.connect(rawUrl(sus.anonKey), { host: `sus.localhost:${t.port}` });
    c.send(['1', '1', 'realtime:a', 'phx_join', { config: {} }]);
    await c.reply('1');
    expect((await api(t, 'PATCH', '/api/tenants/sus', { tenant: { suspend: true } })).status).toBe(200);
    expect(await c.closed).toBe(1012);
    expect(await failedHandshake(rawUrl(sus.anonKey), { host: `sus.localhost:${t.port}` })).toEqual({
      status: 403,
      body: { error: 'Realtime was disabled for this tenant' },
    });
    const rest = await restPost(`/api/broadcast`, 'sus', sus.anonKey, { messages: [{ topic: 'a', event: 'e', payload: {} }] });
    expect(rest).toEqual({ status: 403, body: { message: 'Tenant is suspended' } });
  });

  it('deletes a tenant: 204 (also when absent), its sockets closed and its changes slots dropped, then unknown', async () => {
    const del = await tenant('gone');
    const c = await RawClient.connect(rawUrl(del.anonKey), { host: `gone.localhost:${t.port}` });
    c.send(['1', '1', 'realtime:a', 'phx_join', { config: {} }]);
    await c.reply('1');
    // Its Postgres Changes slot (this scheme and the earlier one) and another tenant's slot in the same database.
    const slotsLeft = () => withClient(del.db.url, async (sql) => (await sql.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots WHERE database = current_database() ORDER BY 1')).rows.map((r) => r.slot_name));
    const oid = await withClient(del.db.url, async (sql) => databaseOid(sql));
    await withClient(del.db.url, async (sql) => {
      for (const slot of [changesSlotName('gone', oid), 'performer_changes_gone_0123456789', changesSlotName('kept', oid)]) {
        await sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
      }
    });
    expect((await api(t, 'DELETE', '/api/tenants/gone')).status).toBe(204);
    expect(await c.closed).toBe(1012);
    expect(await slotsLeft()).toEqual([changesSlotName('kept', oid)]);
    expect((await api(t, 'DELETE', '/api/tenants/gone')).status).toBe(204);
    expect(await failedHandshake(rawUrl(del.anonKey), { host: `gone.localhost:${t.port}` })).toEqual({ status: 404, body: { error: 'Tenant not found' } });
  });

  it('reloads, shuts down and reports health', async () => {
    const h = await tenant('healthy');
    expect((await api(t, 'POST', '/api/tenants/nope/reload')).status).toBe(404);
    expect((await api(t, 'POST', '/api/tenants/nope/shutdown')).status).toBe(404);
    expect((await api(t, 'GET', '/api/tenants/nope/health')).status).toBe(404);
    const c = await RawClient.connect(rawUrl(h.anonKey), { host: `healthy.localhost:${t.port}` });
    c.send(['1', '1', 'realtime:a', 'phx_join', { config: {} }]);
    await c.reply('1');
    const health = await api(t, 'GET', '/api/tenants/healthy/health');
    expect(health.body).toMatchObject({ data: { healthy: true, db_connected: true, connected_cluster: 1 } });
    // The database-broadcast stream comes up shortly after the tenant starts.
    await until(async () => ((await api(t, 'GET', '/api/tenants/healthy/health')).body as { data: { replication_connected: boolean } }).data.replication_connected);
    expect((await api(t, 'POST', '/api/tenants/healthy/shutdown')).status).toBe(204);
    expect((await api(t, 'GET', '/api/tenants/healthy/health')).body).toMatchObject({ data: { healthy: false, db_connected: false, connected_cluster: 1 } });
    expect((await api(t, 'POST', '/api/tenants/healthy/reload')).status).toBe(204);
    expect(await c.closed).toBe(1012);
  });

  it('keeps two tenants with the same topic names apart', async () => {
    const one = await tenant('one');
    const two = await tenant('two');
    const a = t.client({ host: 'one.localhost', key: one.anonKey }).channel('shared');
    const b = t.client({ host: 'two.localhost', key: two.anonKey }).channel('shared');
    const gotA: unknown[] = [];
    const gotB: unknown[] = [];
    a.on('broadcast', { event: 'e' }, (m) => gotA.push(m.payload));
    b.on('broadcast', { event: 'e' }, (m) => gotB.push(m.payload));
    expect(await subscribed(a)).toBe('SUBSCRIBED');
    expect(await subscribed(b)).toBe('SUBSCRIBED');
    const senderA = t.client({ host: 'one.localhost', key: one.anonKey }).channel('shared');
    const senderB = t.client({ host: 'two.localhost', key: two.anonKey }).channel('shared');
    expect(await subscribed(senderA)).toBe('SUBSCRIBED');
    expect(await subscribed(senderB)).toBe('SUBSCRIBED');
    await senderA.send({ type: 'broadcast', event: 'e', payload: { from: 'one' } });
    await senderB.send({ type: 'broadcast', event: 'e', payload: { from: 'two' } });
    const deadline = Date.now() + 5000;
    while ((gotA.length < 1 || gotB.length < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    expect(gotA).toEqual([{ from: 'one' }]);
    expect(gotB).toEqual([{ from: 'two' }]);
    // A key signed for one tenant is not valid on the other.
    expect(await failedHandshake(rawUrl(one.anonKey), { host: `two.localhost:${t.port}` })).toMatchObject({ status: 401 });
  });
});
