import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Binding } from '../../src/replication/changes/index.js';
import { SubscriberStore, type ChangesSubscriber } from '../../src/replication/changes-subscribers.js';
import { parseLsn } from '../../src/replication/pgoutput/index.js';
import { migrateTenantDatabase } from '../../src/tenants/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

let db: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase('substore');
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  await migrateTenantDatabase(pool);
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

const binding = { id: 7, event: 'INSERT', schema: 'public', table: 't', filters: [], select: null } as unknown as Binding;

function subscriber(instance: string, claims: Record<string, unknown>): ChangesSubscriber {
  return { instance, topic: 'room', legacy: false, bindings: [binding], claims, deliverMany: () => undefined, flush: () => undefined };
}

const insertPosition = async () => parseLsn((await pool.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn);

describe('persisted changes subscribers', () => {
  it('belong to their tenant: two tenants on one database never load, or remove, each other’s', async () => {
    const a = new SubscriberStore(async () => pool, 'node-1', 'tenant-a');
    const b = new SubscriberStore(async () => pool, 'node-1', 'tenant-b');
    await a.save(subscriber('00000000-0000-4000-8000-00000000000a', { role: 'service_role' }));
    expect(await b.loadPending()).toEqual([]);
    await b.remove('00000000-0000-4000-8000-00000000000a');
    const loaded = await a.loadPending();
    expect(loaded.map((p) => [p.instance, p.topic, p.claims])).toEqual([['00000000-0000-4000-8000-00000000000a', 'room', { role: 'service_role' }]]);
    await a.remove('00000000-0000-4000-8000-00000000000a');
    expect(await a.loadPending()).toEqual([]);
  });

  it('returns, when saved, a WAL position between what committed before and what commits after', async () => {
    const store = new SubscriberStore(async () => pool, 'node-1', 'tenant-a');
    const before = await insertPosition();
    const at = await store.save(subscriber('00000000-0000-4000-8000-00000000000b', { role: 'anon' }));
    const after = await insertPosition();
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(after);
  });

  it('keeps where a subscriber starts: set when it is new or continued from a known position, kept by a claims update', async () => {
    const store = new SubscriberStore(async () => pool, 'node-1', 'tenant-c');
    const s = subscriber('00000000-0000-4000-8000-00000000000c', { role: 'anon' });
    const startOf = async () => (await store.loadPending()).find((p) => p.instance === s.instance)!.start;
    const before = await insertPosition();
    const first = await store.save(s, 'now');
    expect(first).toBeGreaterThanOrEqual(before);
    expect(await startOf()).toBe(first);
    await store.save({ ...s, claims: { role: 'anon', sub: 'u1' } });
    expect(await startOf()).toBe(first);
    await store.save(s, 42n);
    expect(await startOf()).toBe(42n);
    // Put on record again as new (a newer owner that had not loaded it): it starts where that one read.
    const again = await store.save(s, 'now');
    expect(again).toBeGreaterThan(first);
    expect(await startOf()).toBe(again);
    await store.remove(s.instance);
  });

  it("refuses to put a subscriber on record for an owner once a newer owner's number is claimed", async () => {
    const store = new SubscriberStore(async () => pool, 'node-1', 'tenant-f', { key: 'tenant-f', fence: 5 });
    const s = subscriber('00000000-0000-4000-8000-00000000000f', { role: 'anon' });
    // No owner claimed yet, then this one: written.
    await store.save(s, 'now');
    await pool.query(`SELECT realtime.performer_claim_stream_fence('tenant-f', 5, 'no_such_slot')`);
    await store.save(s, 'keep');
    await store.remove(s.instance);
    // A newer owner claims: the former one writes nothing more.
    await pool.query(`SELECT realtime.performer_claim_stream_fence('tenant-f', 6, 'no_such_slot')`);
    await expect(store.save(s, 'now')).rejects.toThrow('a newer owner of the tenant runs its streams');
    expect(await store.loadPending()).toEqual([]);
    // Another tenant's row is not this one's fence.
    const other = new SubscriberStore(async () => pool, 'node-1', 'tenant-g', { key: 'tenant-g', fence: 1 });
    await other.save(subscriber('00000000-0000-4000-8000-0000000000f1', { role: 'anon' }), 'now');
    expect((await other.loadPending()).length).toBe(1);
  });
});
