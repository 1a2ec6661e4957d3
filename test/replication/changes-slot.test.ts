import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseOid, dropTenantChangesSlots, prepareChangesSlot, readSlotUsage, SlotGrowthLog } from '../../src/replication/changes-slot.js';
import { parseLsn } from '../../src/replication/pgoutput/index.js';
import { changesSlotName } from '../../src/replication/slot-names.js';
import { ReplicationStream, type ReplicationEvent } from '../../src/replication/stream.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

/** A real pino logger that keeps its lines. */
function memoryLog(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'debug', formatters: { level: (label) => ({ level: label }) } }, sink), lines };
}

let db: TestDatabase;
let other: TestDatabase;
let pool: pg.Pool;
let otherPool: pg.Pool;
let oid: string;
const streams: ReplicationStream[] = [];

beforeAll(async () => {
  db = await createTestDatabase('slots');
  other = await createTestDatabase('slots_other');
  pool = new pg.Pool({ connectionString: db.url, max: 3 });
  otherPool = new pg.Pool({ connectionString: other.url, max: 2 });
  await pool.query('CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE t');
  oid = await databaseOid(pool);
});
afterAll(async () => {
  for (const s of streams) await s.stop();
  await pool.end();
  await otherPool.end();
  await db.drop();
  await other.drop();
});

async function slots(p: pg.Pool = pool): Promise<Map<string, string | null>> {
  const { rows } = await p.query<{ slot_name: string; confirmed: string | null }>(
    'SELECT slot_name, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE database = current_database() ORDER BY slot_name',
  );
  return new Map(rows.map((r) => [r.slot_name, r.confirmed]));
}

const create = (p: pg.Pool, slot: string) => p.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);

/** Streams a slot until its backlog is read; returns the inserted ids it held. */
async function backlogOf(slot: string): Promise<number[]> {
  const events: ReplicationEvent[] = [];
  const stream = new ReplicationStream({ connection: db.url, publications: ['pub'], slot, temporary: false, handler: (e) => void events.push(e), backoff: { initialMs: 100, maxMs: 500 } });
  streams.push(stream);
  stream.start();
  const { rows } = await pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  const end = parseLsn(rows[0]!.lsn);
  const deadline = Date.now() + 15_000;
  while (stream.handledLsn < end) {
    if (Date.now() > deadline) throw new Error('backlog not read in time');
    await new Promise((r) => setTimeout(r, 25));
  }
  await stream.stop();
  return events.flatMap((e) => (e.message.tag === 'insert' && e.message.new[0]?.kind === 'text' ? [Number(e.message.new[0].value)] : []));
}

describe('the changes slot', () => {
  it('is named after the tenant and the database oid', async () => {
    const { log } = memoryLog();
    expect(await prepareChangesSlot(pool, 'fresh-tenant', log)).toBe(changesSlotName('fresh-tenant', oid));
    expect(oid).toMatch(/^\d+$/);
  });

  it('takes over the newest idle slot of the earlier scheme with its position, and drops only that tenant\'s idle ones', async () => {
    const { log, lines } = memoryLog();
    // Two starts of the embedded Postgres on two ports left two slots; row 2 was committed after the second run stopped.
    await create(pool, 'performer_changes_realtime_dev_aaaaaaaaaa');
    await pool.query('INSERT INTO t VALUES (1)');
    await create(pool, 'performer_changes_realtime_dev_bbbbbbbbbb');
    await pool.query('INSERT INTO t VALUES (2)');
    // Not ours to drop: another tenant's, one a running process streams from, the same tenant's in another database.
    await create(pool, 'performer_changes_other_cccccccccc');
    await create(pool, 'performer_changes_realtime_dev_dddddddddd');
    const busy = new ReplicationStream({ connection: db.url, publications: ['pub'], slot: 'performer_changes_realtime_dev_dddddddddd', temporary: false, handler: () => undefined });
    streams.push(busy);
    busy.start();
    await new Promise<void>((resolve) => busy.onStatus((s) => s === 'up' && resolve()));
    await create(otherPool, 'performer_changes_realtime_dev_eeeeeeeeee');
    const before = await slots();

    const slot = await prepareChangesSlot(pool, 'realtime-dev', log);

    expect(slot).toBe(changesSlotName('realtime-dev', oid));
    const after = await slots();
    expect([...after.keys()].sort()).toEqual(['performer_changes_other_cccccccccc', 'performer_changes_realtime_dev_dddddddddd', slot].sort());
    expect(after.get(slot)).toBe(before.get('performer_changes_realtime_dev_bbbbbbbbbb'));
    expect([...(await slots(otherPool)).keys()]).toEqual(['performer_changes_realtime_dev_eeeeeeeeee']);
    expect(lines.some((l) => /renamed/.test(String(l.msg)) && l.from === 'performer_changes_realtime_dev_bbbbbbbbbb')).toBe(true);
    // The row committed while no slot was read is still there for the subscribers that rejoin.
    await busy.stop();
    expect(await backlogOf(slot)).toEqual([2]);
  });

  it('leaves its current position alone when it exists, and only drops the earlier slots', async () => {
    const { log } = memoryLog();
    const slot = changesSlotName('tenant-b', oid);
    await create(pool, slot);
    await pool.query('INSERT INTO t VALUES (3)');
    await create(pool, 'performer_changes_tenant_b_0123456789');
    const position = (await slots()).get(slot);
    expect(await prepareChangesSlot(pool, 'tenant-b', log)).toBe(slot);
    const after = await slots();
    expect(after.has('performer_changes_tenant_b_0123456789')).toBe(false);
    expect(after.get(slot)).toBe(position);
  });

  it('are all dropped for a deleted tenant, but not while in use and not another tenant\'s', async () => {
    const { log } = memoryLog();
    const current = changesSlotName('gone', oid);
    await create(pool, current);
    await create(pool, 'performer_changes_gone_0123456789');
    await create(pool, changesSlotName('gone2', oid));
    expect((await dropTenantChangesSlots(pool, 'gone', log)).sort()).toEqual([current, 'performer_changes_gone_0123456789'].sort());
    const after = await slots();
    expect(after.has(current)).toBe(false);
    expect(after.has(changesSlotName('gone2', oid))).toBe(true);
  });
});

describe('slot usage', () => {
  it('measures how far a slot trails and how much WAL it keeps', async () => {
    const slot = changesSlotName('usage', oid);
    await create(pool, slot);
    await pool.query(`INSERT INTO t SELECT g FROM generate_series(100, 5099) g`);
    const usage = await readSlotUsage(pool, slot);
    expect(usage).toMatchObject({ slot, active: false });
    expect(usage!.lagBytes).toBeGreaterThan(5000 * 20);
    expect(usage!.retainedWalBytes).toBeGreaterThanOrEqual(usage!.lagBytes);
    expect(await readSlotUsage(pool, 'no_such_slot')).toBeNull();
  });

  it('is logged at warn past the threshold, again when it doubles, and once when back under', () => {
    const { log, lines } = memoryLog();
    const growth = new SlotGrowthLog(1000, log);
    const at = (lagBytes: number, retainedWalBytes = lagBytes) => growth.observe({ slot: 's', active: true, lagBytes, retainedWalBytes });
    at(10);
    at(999);
    expect(lines).toEqual([]);
    at(10, 1500); // retained WAL alone counts too
    at(2000);
    at(2999);
    at(3000);
    at(5000);
    at(6000);
    at(20);
    at(30);
    expect(lines.map((l) => [l.level, l.error_code ?? null, l.retained_wal_bytes])).toEqual([
      ['warn', 'ReplicationSlotGrowing', 1500],
      ['warn', 'ReplicationSlotGrowing', 3000],
      ['warn', 'ReplicationSlotGrowing', 6000],
      ['info', null, 20],
    ]);
  });
});
