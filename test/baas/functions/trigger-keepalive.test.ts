import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startTestServer, type TestServer } from '../../support/server.js';
import { FunctionsAdmin, waitUntil } from './support.js';

const RECEIVER = `export default { async fetch(request) { return Response.json({ id: request.headers.get('x-performer-event-id') }); } };`;

// Database triggers read their slot inside the tenant's runtime: it must run, and start, with no client at all.
describe('database triggers keep their tenant running', () => {
  let t: TestServer;
  let admin: FunctionsAdmin;
  const tenant = 'realtime-dev';

  beforeAll(async () => {
    t = await startTestServer({ TENANT_IDLE_STOP_MS: '1000' });
    admin = new FunctionsAdmin(t);
    await admin.deploy('receiver', RECEIVER, 'application/javascript');
  });
  afterAll(() => t?.stop());

  it('starts and keeps a tenant with a database trigger, and still stops it once the trigger is gone', async () => {
    const registry = t.server.ctx.registry;
    const db = new pg.Client({ connectionString: t.db.url });
    await db.connect();
    try {
      await db.query('CREATE TABLE public.pings (id int PRIMARY KEY)');
      const put = await admin.request('PUT', '/functions/receiver/triggers', JSON.stringify([{ type: 'database', table: 'pings', events: ['INSERT'] }]), {
        'content-type': 'application/json',
      });
      expect(put.status).toBe(200);
      // As after a server restart: the runtime is gone and nobody calls the tenant.
      await registry.stopTenant(tenant, null);
      expect(registry.peek(tenant)).toBeNull();
      const started = await waitUntil(() => registry.peek(tenant), (r) => r !== null, 20_000);
      expect(started).not.toBeNull();
      // Well past the idle period, with no socket and no call: still the same runtime.
      await sleep(3000);
      expect(registry.peek(tenant)).toBe(started);
      await waitUntil(async () => (await db.query("SELECT 1 FROM pg_replication_slots WHERE slot_name LIKE 'performer_fn_%' AND active")).rowCount, (n) => n === 1, 20_000);
      await db.query('INSERT INTO pings VALUES (1)');
      const delivered = async () =>
        (await t.server.ctx.control.pool.query<{ state: string }>("SELECT state FROM _performer.function_deliveries WHERE event_id LIKE 'database:%'")).rows;
      await waitUntil(delivered, (r) => r.length === 1 && r[0].state === 'delivered', 20_000);
      await sleep(1500);
      expect(await delivered()).toEqual([{ state: 'delivered' }]);
      // Without database triggers the idle tenant stops as any other.
      await admin.request('PUT', '/functions/receiver/triggers', '[]', { 'content-type': 'application/json' });
      expect(await waitUntil(() => registry.peek(tenant), (r) => r === null, 20_000)).toBeNull();
    } finally {
      await db.end();
    }
  });
});
