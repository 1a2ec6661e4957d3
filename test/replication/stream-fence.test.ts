import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/replication/pgoutput/index.js';
import { isFencedError, streamFence, type OwnedStream } from '../../src/replication/stream-fence.js';
import { ReplicationStream, type ReplicationEvent } from '../../src/replication/stream.js';
import { migrateTenantDatabase } from '../../src/tenants/migrate.js';
import { createTestDatabase, withClient, type TestDatabase } from '../support/postgres.js';

let db: TestDatabase;
const streams: ReplicationStream[] = [];

beforeAll(async () => {
  db = await createTestDatabase('fence');
  const pool = new pg.Pool({ connectionString: db.url });
  await migrateTenantDatabase(pool, () => undefined);
  await pool.query(`CREATE TABLE items (id int PRIMARY KEY); CREATE PUBLICATION fence_pub FOR TABLE items;`);
  await pool.end();
});

afterAll(async () => {
  await Promise.all(streams.map((s) => s.stop()));
  await db.drop();
});

const until = async (cond: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

const insert = (id: number) => withClient(db.url, (c) => c.query('INSERT INTO items VALUES ($1)', [id]));
const slotRow = (slot: string) =>
  withClient(db.url, async (c) => (await c.query<{ lsn: string; pid: number | null }>('SELECT confirmed_flush_lsn::text AS lsn, active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0]!);
const ids = (events: ReplicationEvent[]) => events.flatMap((e) => (e.message.tag === 'insert' && e.message.new[0]?.kind === 'text' ? [Number(e.message.new[0].value)] : []));

function owner(
  fence: number,
  slot: string,
  valid: { ok: boolean },
  { tenant = 'tenant-a', stream: which = 'changes' as OwnedStream, temporary = false } = {},
): { stream: ReplicationStream; events: ReplicationEvent[] } {
  const events: ReplicationEvent[] = [];

  const stream = new ReplicationStream({
    connection: db.url,
    publications: ['fence_pub'],
    slot,
    temporary,
    autoAck: true,
    statusIntervalMs: 100,
    backoff: { initialMs: 50, maxMs: 200 },
    handler: (e) => void events.push(e),
    fence: streamFence({ tenant, fence, valid: () => valid.ok }, which),
  });
  streams.push(stream);
  stream.start();
  return { stream, events };
}

describe('a fenced replication stream', () => {
  it('a newer owner ends the old one\'s walsender, and the old one cannot stream or confirm again', async () => {
    const slot = 'fence_test_slot';
    const oldValid = { ok: true };
    const old = owner(1, slot, oldValid);
    await until(() => old.stream.status === 'up', 'the first owner to stream');
    await insert(1);
    await until(() => ids(old.events).includes(1), 'the first owner to read row 1');
    await until(async () => parseLsn((await slotRow(slot)).lsn) >= old.events.at(-1)!.lsn, 'row 1 to be confirmed');
    const oldPid = (await slotRow(slot)).pid;
    expect(oldPid).not.toBeNull();

    // The old owner is paused past its lease (its clock says so when it wakes); a newer owner claims the slot.
    oldValid.ok = false;
    const confirmedBefore = (await slotRow(slot)).lsn;
    const next = owner(2, slot, { ok: true });
    await until(() => next.stream.status === 'up', 'the new owner to stream');
    expect((await slotRow(slot)).pid).not.toBe(oldPid);
    await insert(2);
    await until(() => ids(next.events).includes(2), 'the new owner to read row 2');
    expect(ids(old.events)).not.toContain(2);
    expect(ids(next.events)).not.toContain(1);

    // Even were it to believe itself the owner again, its number is stale: Postgres refuses it.
    const nextPid = (await slotRow(slot)).pid;
    oldValid.ok = true;
    const refused = await withClient(db.url, (c) => c.query(`SELECT realtime.performer_claim_stream_fence('tenant-a', 1, $1)`, [slot]).then(() => null, (err: unknown) => err));
    expect(isFencedError(refused)).toBe(true);
    // It keeps trying to reconnect (every 50-200 ms) and is refused each time.
    await new Promise((r) => setTimeout(r, 1000));
    expect(old.stream.status).not.toBe('up');
    expect((await slotRow(slot)).pid).toBe(nextPid);
    await insert(3);
    await until(() => ids(next.events).includes(3), 'the new owner to read row 3');
    expect(ids(old.events)).not.toContain(3);
    expect(parseLsn((await slotRow(slot)).lsn)).toBeGreaterThan(parseLsn(confirmedBefore));
    await old.stream.stop();
  });

  it('confirms nothing once its lease may have lapsed', async () => {
    const slot = 'fence_test_lapsed';
    const valid = { ok: true };
    const o = owner(10, slot, valid);
    await until(() => o.stream.status === 'up', 'the owner to stream');
    await insert(100);
    await until(async () => ids(o.events).includes(100) && parseLsn((await slotRow(slot)).lsn) >= o.events.at(-1)!.lsn, 'row 100 confirmed');
    valid.ok = false;
    const frozen = (await slotRow(slot)).lsn;
    await insert(101);
    await until(() => ids(o.events).includes(101), 'row 101 read');
    await new Promise((r) => setTimeout(r, 400));
    expect((await slotRow(slot)).lsn).toBe(frozen);
    await o.stream.stop();
    expect((await slotRow(slot)).lsn).toBe(frozen);
  });

  it("keeps an owner's two streams apart, and a newer owner's broadcast stream takes a paused one's temporary slot", async () => {
    const changes = owner(20, 'fence_two_changes', { ok: true }, { tenant: 'tenant-b' });
    await until(() => changes.stream.status === 'up', 'the changes stream to stream');
    const changesPid = (await slotRow('fence_two_changes')).pid;
    const pausedValid = { ok: true };
    const paused = owner(20, 'fence_two_msgs', pausedValid, { tenant: 'tenant-b', stream: 'broadcast', temporary: true });
    await until(() => paused.stream.status === 'up', 'the broadcast stream to stream');
    await insert(200);
    await until(() => ids(changes.events).includes(200) && ids(paused.events).includes(200), 'both streams to read row 200');
    // Claiming the same number for its other stream did not end the first one's walsender.
    expect(changes.stream.status).toBe('up');
    expect((await slotRow('fence_two_changes')).pid).toBe(changesPid);

    // Paused past its lease (its connection still open, holding the temporary slot): the next owner takes it over.
    pausedValid.ok = false;
    const pausedPid = (await slotRow('fence_two_msgs')).pid;
    const next = owner(21, 'fence_two_msgs', { ok: true }, { tenant: 'tenant-b', stream: 'broadcast', temporary: true });
    await until(() => next.stream.status === 'up', "the next owner's broadcast stream to stream");
    expect((await slotRow('fence_two_msgs')).pid).not.toBe(pausedPid);
    await insert(201);
    await until(() => ids(next.events).includes(201), 'the next owner to read row 201');
    expect(ids(paused.events)).not.toContain(201);
    // The first owner's changes stream is another row: untouched by the broadcast takeover.
    expect((await slotRow('fence_two_changes')).pid).toBe(changesPid);
    await Promise.all([paused.stream.stop(), changes.stream.stop(), next.stream.stop()]);
  });
});
