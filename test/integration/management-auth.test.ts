import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signHs256 } from '../../src/auth/jwt.js';
import { MANAGEMENT_SECRET_FILE, MANAGEMENT_TOKEN_LIFETIME_SECONDS, signManagementToken } from '../../src/auth/management.js';
import { createLogger } from '../../src/observability/logger.js';
import { newTenantRecord } from '../../src/tenants/record.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { TenantStore } from '../../src/tenants/store.js';
import { until } from '../support/channels.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { startTestServer, TEST_API_SECRET, TEST_SECRET, type TestServer } from '../support/server.js';
import { api, extensionFor } from '../support/tenants.js';

const exp = () => Math.floor(Date.now() / 1000) + 600;

describe('management API with the default configuration (API_JWT_SECRET unset)', () => {
  let dataDir: string;
  let db: TestDatabase;
  const servers: TestServer[] = [];
  // One database for both starts; dropped once, at the end.
  const keepDb = (d: TestDatabase): TestDatabase => ({ ...d, drop: async () => undefined });

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-mgmt-'));
    db = await createTestDatabase('mgmt_default');
  });
  afterAll(async () => {
    for (const s of servers) await s.stop();
    await db?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const start = async () => {
    const s = await startTestServer({ API_JWT_SECRET: '', PERFORMER_DATA_DIR: dataDir }, keepDb(db));
    servers.push(s);
    return s;
  };

  it('refuses the public anon key (and the service key) on every management route, and accepts the generated secret', async () => {
    const t = await start();
    const secret = (await readFile(path.join(dataDir, MANAGEMENT_SECRET_FILE), 'utf8')).trim();
    expect(t.managementSecret).toBe(secret);
    expect(secret).not.toBe(TEST_SECRET);
    expect(secret.length).toBeGreaterThanOrEqual(32);
    // Readable by its owner only, like the encryption key.
    expect((await stat(path.join(dataDir, MANAGEMENT_SECRET_FILE))).mode & 0o077).toBe(0);

    const tenantTokens = [t.anonKey, t.serviceKey, await t.sign({ role: 'service_role' })];
    const attempts: [string, string, unknown][] = [
      ['GET', '/api/tenants', undefined],
      ['GET', '/api/tenants/realtime-dev', undefined],
      ['PATCH', '/api/tenants/realtime-dev', { tenant: { jwt_secret: 'attacker-chosen-secret-of-32-characters' } }],
      ['POST', '/api/tenants', { tenant: { external_id: 'evil', jwt_secret: 'x'.repeat(40), extensions: [extensionFor('postgres://u:p@attacker.example:5432/db')] } }],
      ['DELETE', '/api/tenants/realtime-dev', undefined],
    ];
    for (const token of tenantTokens) {
      for (const [method, route, body] of attempts) {
        const res = await api(t, method, route, body, token);
        expect([method, route, res.status, res.text]).toEqual([method, route, 403, '']);
      }
    }
    expect(t.server.ctx.registry.record('evil')).toBeNull();

    // A token signed with the generated secret is a management token; so is the banner's.
    expect((await api(t, 'GET', '/api/tenants', undefined, await signHs256({ exp: exp() }, secret))).status).toBe(200);
    expect((await api(t, 'GET', '/api/tenants', undefined, await signManagementToken(secret))).status).toBe(200);
  });

  it('keeps the generated secret across restarts: a token from before the restart still works', async () => {
    const before = servers[0] ?? (await start());
    const token = await signManagementToken(before.managementSecret);
    await before.stop();
    servers.splice(servers.indexOf(before), 1);
    const after = await start();
    expect(after.managementSecret).toBe(before.managementSecret);
    expect((await api(after, 'GET', '/api/tenants', undefined, token)).status).toBe(200);
    expect((await api(after, 'GET', '/api/tenants', undefined, after.anonKey)).status).toBe(403);
  });

  it('signs banner tokens that expire after the stated lifetime and carry no tenant role', async () => {
    const t = servers[0] ?? (await start());
    const issued = Date.now() - (MANAGEMENT_TOKEN_LIFETIME_SECONDS + 5) * 1000;
    expect((await api(t, 'GET', '/api/tenants', undefined, await signManagementToken(t.managementSecret, issued))).status).toBe(403);
    const payload = JSON.parse(Buffer.from((await signManagementToken(t.managementSecret)).split('.')[1]!, 'base64url').toString());
    expect(payload).not.toHaveProperty('role');
    expect(payload.exp - payload.iat).toBe(MANAGEMENT_TOKEN_LIFETIME_SECONDS);
  });
});

describe('management API secret never shared with a tenant', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ TENANT_CACHE_EXPIRATION_IN_MS: '100' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('refuses a tenant whose jwt_secret or JWKS oct key is the management secret (422), so the API cannot be locked out', async () => {
    const ext = [extensionFor(t.db.url)];
    const bySecret = await api(t, 'POST', '/api/tenants', { tenant: { external_id: 'same-secret', jwt_secret: TEST_API_SECRET, extensions: ext } });
    expect(bySecret).toMatchObject({ status: 422, body: { errors: { jwt_secret: ['must not be a management API secret'] } } });
    const jwks = { keys: [{ kty: 'oct', kid: 'k', k: Buffer.from(TEST_API_SECRET).toString('base64url') }] };
    const byJwks = await api(t, 'POST', '/api/tenants', { tenant: { external_id: 'same-jwks', jwt_jwks: jwks, extensions: ext } });
    expect(byJwks).toMatchObject({ status: 422, body: { errors: { jwt_jwks: ['must not be a management API secret'] } } });
    const bySecretPatch = await api(t, 'PATCH', '/api/tenants/realtime-dev', { tenant: { jwt_secret: TEST_API_SECRET } });
    expect(bySecretPatch.status).toBe(422);
    expect(t.server.ctx.registry.record('same-secret')).toBeNull();
    expect(t.server.ctx.registry.record('same-jwks')).toBeNull();
  });

  it('fails closed when a tenant stored by another node shares the management secret: that secret authorizes nothing', async () => {
    // Another node (another API_JWT_SECRET) wrote this tenant straight into the shared control plane.
    const store = await TenantStore.open(t.db.url, new SecretBox('test-encryption-key-0123456789'), createLogger('silent'));
    const now = new Date().toISOString().slice(0, 19);
    const record = newTenantRecord('elsewhere', t.server.ctx.config.tenantDefaults, now);
    record.jwtSecret = TEST_API_SECRET;
    record.extensions = [{ ...extensionFor(t.db.url), insertedAt: now, updatedAt: now }];
    await store.save(record);
    await store.close();
    await until(() => t.server.ctx.registry.record('elsewhere') !== null);

    // The tenant's own anon key would be signed with that secret: no management token at all is accepted now.
    const tenantAnonKey = await signHs256({ role: 'anon', exp: exp() }, TEST_API_SECRET);
    expect(await api(t, 'GET', '/api/tenants', undefined, tenantAnonKey)).toMatchObject({ status: 403, text: '' });
    expect(await api(t, 'GET', '/api/tenants')).toMatchObject({ status: 403, text: '' });
  });
});
