/** /rest/v1 per tenant: each tenant's schema cache, database and JWT secret, chosen by Host. */
import http from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { api, createTenant, extensionFor, type TestTenant } from '../../../support/tenants.js';
import { startRestWorld, until, type RestWorld } from './support.js';

let w: RestWorld;
let acme: TestTenant;
beforeAll(async () => {
  w = await startRestWorld();
  acme = await createTenant(w.t, 'acme');
}, 60_000);
afterAll(async () => {
  await w?.stop();
  await acme?.db.drop();
});

/** A request with a chosen Host header (fetch does not let a caller set Host). */
function get(host: string, path: string, key: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: w.t.port, path: `/rest/v1${path}`, headers: { host: `${host}:${w.t.port}`, apikey: key } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

it('keeps each tenant to its own tables, rows and secret', async () => {
  // The first request migrates acme's database; then its own table appears there only.
  expect((await get('acme.localhost', '/widgets', acme.anonKey)).status).toBe(404);
  const db = new pg.Client({ connectionString: acme.db.url });
  await db.connect();
  try {
    await db.query(`create table widgets (id int primary key); insert into widgets values (7)`);
  } finally {
    await db.end();
  }
  await until(async () => (await get('acme.localhost', '/widgets', acme.anonKey)).status === 200, "acme's new table");
  expect((await get('acme.localhost', '/widgets', acme.anonKey)).body).toEqual([{ id: 7 }]);
  expect(await get('127.0.0.1', '/widgets', w.t.anonKey)).toMatchObject({ status: 404, body: { code: 'PGRST205' } });
  expect(await get('acme.localhost', '/notes', acme.anonKey)).toMatchObject({ status: 404, body: { code: 'PGRST205' } });
  // The default tenant's key is not acme's.
  expect(await get('acme.localhost', '/widgets', w.t.anonKey)).toMatchObject({ status: 401, body: { code: 'PGRST301' } });
});

it('answers a tenant whose database is unreachable with a retryable 503 PGRST000, never a crash', async () => {
  const secret = 'secret-of-down-with-at-least-32-characters';
  const created = await api(w.t, 'POST', '/api/tenants', {
    tenant: { external_id: 'down', name: 'down', jwt_secret: secret, extensions: [extensionFor('postgres://u:p@127.0.0.1:1/nothing')] },
  });
  expect(created.status).toBe(201);
  const key = await w.t.sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 60 }, secret);
  const res = await get('down.localhost', '/notes', key);
  expect(res).toMatchObject({ status: 503, body: { code: 'PGRST000', details: null, hint: null } });
  expect((await get('127.0.0.1', '/notes?select=id&id=eq.1', w.t.anonKey)).body).toEqual([{ id: 1 }]);
});
