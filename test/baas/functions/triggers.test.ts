import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emitFunctionEvent } from '../../../src/baas/functions/events.js';
import { parseTriggers } from '../../../src/baas/functions/triggers/config.js';
import { sleep, startTestServer, type TestServer } from '../../support/server.js';
import { FunctionsAdmin, waitUntil } from './support.js';

/** Answers 2xx only when the delivery carries its event id and the event; fails the first attempt when asked. */
const RECEIVER = `
export default {
  async fetch(request) {
    const id = request.headers.get('x-performer-event-id');
    const attempt = request.headers.get('x-performer-delivery-attempt');
    const event = await request.json();
    if (!id || request.method !== 'POST') return new Response('no event id', { status: 400 });
    if (event.flaky && attempt === '1') return new Response('try again', { status: 500 });
    return Response.json({ id, attempt, kind: event.kind });
  },
};`;

describe('function triggers', () => {
  let t: TestServer;
  let admin: FunctionsAdmin;

  beforeAll(async () => {
    t = await startTestServer();
    admin = new FunctionsAdmin(t);
    await admin.deploy('receiver', RECEIVER, 'application/javascript');
  });
  afterAll(() => t?.stop());

  const deliveries = async () => {
    const { rows } = await t.server.ctx.control.pool.query<{ event_id: string; state: string; attempts: number; last_status: number | null; kind: string }>(
      `SELECT d.event_id, d.state, d.attempts, d.last_status, t.kind FROM _performer.function_deliveries d
       JOIN _performer.function_triggers t ON t.id = d.trigger_id ORDER BY d.inserted_at, d.event_id`,
    );
    return rows;
  };

  it('validates trigger lists (400) and lets only the management token set them', async () => {
    expect(parseTriggers([{ type: 'cron', schedule: 'not a schedule' }])).toHaveProperty('errors');
    expect(parseTriggers([{ type: 'database', table: 'x;drop' }])).toHaveProperty('errors');
    expect(parseTriggers({})).toHaveProperty('errors');
    expect(parseTriggers([{ type: 'database', table: 'todos', filter: 'id=eq.5' }])).toEqual({
      triggers: [{ type: 'database', schema: 'public', table: 'todos', events: ['INSERT', 'UPDATE', 'DELETE'], filter: { column: 'id', value: '5' } }],
    });
    const bad = await admin.request('PUT', '/functions/receiver/triggers', '[{"type":"nope"}]', { 'content-type': 'application/json' });
    expect(bad.status).toBe(400);
    const forbidden = await admin.request('PUT', '/functions/receiver/triggers', '[]', { 'content-type': 'application/json' }, t.serviceKey);
    expect(forbidden.status).toBe(403);
    const missing = await admin.request('PUT', '/functions/ghost/triggers', '[]', { 'content-type': 'application/json' });
    expect(missing.status).toBe(404);
  });

  it('delivers an auth event and a storage event once each, even when emitted twice, with the event id', async () => {
    const put = await admin.request(
      'PUT',
      '/functions/receiver/triggers',
      JSON.stringify([{ type: 'auth', events: ['user.created'] }, { type: 'storage', events: ['object.created'], bucket: 'avatars' }]),
      { 'content-type': 'application/json' },
    );
    expect(put.status).toBe(200);
    const ctx = t.server.ctx;
    const tenant = 'realtime-dev';
    expect(await emitFunctionEvent(ctx, tenant, { kind: 'auth', type: 'user.created', id: 'user-1', record: { id: 'u1' } })).toBe(1);
    expect(await emitFunctionEvent(ctx, tenant, { kind: 'auth', type: 'user.created', id: 'user-1', record: { id: 'u1' } })).toBe(0);
    expect(await emitFunctionEvent(ctx, tenant, { kind: 'auth', type: 'user.deleted', id: 'user-1' })).toBe(0);
    expect(await emitFunctionEvent(ctx, tenant, { kind: 'storage', type: 'object.created', id: 'obj-1', scope: 'avatars' })).toBe(1);
    expect(await emitFunctionEvent(ctx, tenant, { kind: 'storage', type: 'object.created', id: 'obj-2', scope: 'other' })).toBe(0);
    const rows = await waitUntil(deliveries, (r) => r.length === 2 && r.every((d) => d.state === 'delivered'));
    expect(rows).toEqual([
      { event_id: 'auth:user-1', state: 'delivered', attempts: 1, last_status: 200, kind: 'auth' },
      { event_id: 'storage:obj-1', state: 'delivered', attempts: 1, last_status: 200, kind: 'storage' },
    ]);
  });

  it('retries a failed delivery with backoff and records each attempt', async () => {
    await emitFunctionEvent(t.server.ctx, 'realtime-dev', { kind: 'auth', type: 'user.created', id: 'flaky-1', flaky: true });
    const rows = await waitUntil(deliveries, (r) => r.some((d) => d.event_id === 'auth:flaky-1' && d.state === 'delivered'));
    expect(rows.find((d) => d.event_id === 'auth:flaky-1')).toEqual({ event_id: 'auth:flaky-1', state: 'delivered', attempts: 2, last_status: 200, kind: 'auth' });
    // The management API shows the record (to the management token only).
    const listed = (await (await admin.request('GET', '/functions/receiver/deliveries')).json()) as { data: { event_id: string; attempts: number }[] };
    expect(listed.data.find((d) => d.event_id === 'auth:flaky-1')).toMatchObject({ attempts: 2 });
    expect((await admin.request('GET', '/functions/receiver/deliveries', undefined, {}, t.anonKey)).status).toBe(403);
  });

  it('fires a cron schedule once per tick, even with two nodes ticking it', async () => {
    await admin.request('PUT', '/functions/receiver/triggers', JSON.stringify([{ type: 'cron', schedule: '* * * * * *' }]), { 'content-type': 'application/json' });
    // Started after the trigger exists, so both nodes tick the schedule from the start.
    const second = await startTestServer({}, t.db);
    try {
      const delivered = async (server: TestServer) => {
        const metric = await server.server.ctx.metrics.registry.getSingleMetric('performer_function_trigger_deliveries_total')?.get();
        return (metric?.values ?? []).filter((v) => v.labels.kind === 'cron' && v.labels.result === 'delivered').reduce((n, v) => n + v.value, 0);
      };
      const rows = await waitUntil(deliveries, (r) => r.filter((d) => d.kind === 'cron' && d.state === 'delivered').length >= 4);
      expect(rows.filter((d) => d.kind === 'cron').length).toBeGreaterThanOrEqual(4);
      // Between two ticks: what both nodes delivered equals the ticks recorded, each delivered once, on one attempt.
      for (let tries = 0; ; tries++) {
        const before = (await delivered(t)) + (await delivered(second));
        const cron = (await deliveries()).filter((d) => d.kind === 'cron' && d.state === 'delivered');
        const after = (await delivered(t)) + (await delivered(second));
        if (before !== after && tries < 20) continue;
        expect(cron.length).toBe(before);
        expect(new Set(cron.map((d) => d.event_id)).size).toBe(cron.length);
        for (const d of cron) {
          expect(d.event_id).toMatch(/^cron:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
          expect(d.attempts).toBe(1);
        }
        break;
      }
      // Both nodes ticked: the ticks one of them found already recorded were not delivered again.
      const duplicates = async (server: TestServer) => {
        const metric = await server.server.ctx.metrics.registry.getSingleMetric('performer_function_trigger_events_total')?.get();
        return (metric?.values ?? []).filter((v) => v.labels.kind === 'cron' && v.labels.result === 'duplicate').reduce((n, v) => n + v.value, 0);
      };
      expect((await duplicates(t)) + (await duplicates(second))).toBeGreaterThan(0);
    } finally {
      await admin.request('PUT', '/functions/receiver/triggers', '[]', { 'content-type': 'application/json' });
      await second.server.stop();
    }
  });

  it('fires a database trigger once per committed row change, from the replication stream, with the filter applied', async () => {
    const db = new pg.Client({ connectionString: t.db.url });
    await db.connect();
    try {
      // DELETE carries the whole old row (for the filter on status) only with REPLICA IDENTITY FULL.
      await db.query('CREATE TABLE public.orders (id int PRIMARY KEY, status text, total numeric); ALTER TABLE public.orders REPLICA IDENTITY FULL');
      const put = await admin.request(
        'PUT',
        '/functions/receiver/triggers',
        JSON.stringify([{ type: 'database', table: 'orders', events: ['INSERT', 'UPDATE'] }, { type: 'database', table: 'orders', events: ['DELETE'], filter: 'status=eq.void' }]),
        { 'content-type': 'application/json' },
      );
      expect(put.status).toBe(200);
      // The slot starts at its creation: wait for it before changing rows.
      await waitUntil(async () => (await db.query("SELECT 1 FROM pg_replication_slots WHERE slot_name LIKE 'performer_fn_%' AND active")).rowCount, (n) => n === 1);
      await db.query("BEGIN; INSERT INTO orders VALUES (1, 'new', 10), (2, 'new', 20); COMMIT");
      await db.query("UPDATE orders SET status = 'void' WHERE id = 1");
      await db.query('DELETE FROM orders');
      const dbRows = async () => (await deliveries()).filter((d) => d.kind === 'database');
      // 2 inserts + 1 update + 1 delete passing the filter (row 1 is void, row 2 is not).
      const rows = await waitUntil(dbRows, (r) => r.length >= 4 && r.every((d) => d.state === 'delivered'));
      await sleep(1500);
      const settled = await dbRows();
      expect(settled.length).toBe(4);
      expect(new Set(settled.map((d) => d.event_id)).size).toBe(4);
      for (const d of rows) expect(d).toMatchObject({ state: 'delivered', attempts: 1, last_status: 200 });
      const { rows: payloads } = await t.server.ctx.control.pool.query<{ payload: { type: string; record: { id: number } | null; old_record: { id: number } | null } }>(
        "SELECT payload FROM _performer.function_deliveries WHERE event_id LIKE 'database:%' ORDER BY inserted_at, event_id",
      );
      expect(payloads.map((p) => [p.payload.type, p.payload.record?.id ?? p.payload.old_record?.id])).toEqual([['INSERT', 1], ['INSERT', 2], ['UPDATE', 1], ['DELETE', 1]]);
      // Without database triggers the slot goes, so it pins no WAL.
      await admin.request('PUT', '/functions/receiver/triggers', '[]', { 'content-type': 'application/json' });
      const slots = await waitUntil(async () => (await db.query("SELECT 1 FROM pg_replication_slots WHERE slot_name LIKE 'performer_fn_%'")).rowCount, (n) => n === 0);
      expect(slots).toBe(0);
    } finally {
      await admin.request('PUT', '/functions/receiver/triggers', '[]', { 'content-type': 'application/json' });
      await db.end();
    }
  });
});
