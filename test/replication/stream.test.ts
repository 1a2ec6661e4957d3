import net from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { formatLsn, parseLsn, type Lsn } from '../../src/replication/pgoutput/index.js';
import { ReplicationStream, type ReplicationEvent, type ReplicationStatus, type ReplicationStreamOptions } from '../../src/replication/stream.js';
import { OrderedQueue } from '../../src/replication/ordered-queue.js';
import { backoffDelay, chooseProtocolVersion, failureCode, quotePublications, readCopyData, replicationClientConfig, standbyStatusUpdate } from '../../src/replication/stream-wire.js';
import { createMachineTestDatabase, createTestDatabase, startDedicatedPostgres, withClient, type DedicatedPostgres, type TestDatabase } from '../support/postgres.js';

const FAST = { backoff: { initialMs: 100, maxMs: 1000 }, statusIntervalMs: 200 } as const;

async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Ids of inserted rows (first column, text mode) in delivery order. */
function insertedIds(events: ReplicationEvent[]): number[] {
  return events.flatMap((e) => {
    if (e.message.tag !== 'insert') return [];
    const col = e.message.new[0];
    return col?.kind === 'text' ? [Number(col.value)] : [];
  });
}

interface Harness {
  stream: ReplicationStream;
  events: ReplicationEvent[];
  statuses: ReplicationStatus[];
}

const streams: ReplicationStream[] = [];

function open(url: string, opts: Partial<ReplicationStreamOptions> & { slot: string }, handler?: (e: ReplicationEvent, h: Harness) => void | Promise<void>): Harness {
  const events: ReplicationEvent[] = [];
  const statuses: ReplicationStatus[] = [];
  const h = {} as Harness;
  const stream = new ReplicationStream({
    connection: url,
    publications: ['pub'],
    temporary: true,
    ...FAST,
    ...opts,
    handler: (e) => {
      events.push(e);
      return handler?.(e, h);
    },
  });
  stream.onStatus((s) => statuses.push(s));
  Object.assign(h, { stream, events, statuses });
  streams.push(stream);
  stream.start();
  return h;
}

async function slotInfo(url: string, slot: string): Promise<{ confirmed: Lsn; active: boolean; pid: number | null } | null> {
  return withClient(url, async (c) => {
    const res = await c.query<{ lsn: string; active: boolean; pid: number | null }>(
      'SELECT confirmed_flush_lsn::text AS lsn, active, active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
    const row = res.rows[0];
    return row ? { confirmed: parseLsn(row.lsn), active: row.active, pid: row.pid } : null;
  });
}

async function prepareDatabase(url: string): Promise<void> {
  await withClient(url, (c) =>
    c.query(`CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, v text);
             DO $$ BEGIN CREATE PUBLICATION pub FOR TABLE items; EXCEPTION WHEN duplicate_object THEN NULL; END $$;`),
  );
}

const insert = (url: string, ...ids: number[]) =>
  withClient(url, async (c) => {
    for (const id of ids) await c.query('INSERT INTO items VALUES ($1, $2)', [id, `v${id}`]);
  });

afterEach(async () => {
  await Promise.all(streams.splice(0).map((s) => s.stop()));
});

describe('stream helpers', () => {
  it('encodes a standby status update with exact positions', () => {
    const buf = standbyStatusUpdate(0x1_0000_0010n, 0x1_0000_0008n, 0x1_0000_0008n, true, 946_684_800_000 + 1);
    expect(buf.length).toBe(34);
    expect(buf[0]).toBe(0x72);
    expect(buf.readBigUInt64BE(1)).toBe(0x1_0000_0010n);
    expect(buf.readBigUInt64BE(9)).toBe(0x1_0000_0008n);
    expect(buf.readBigUInt64BE(17)).toBe(0x1_0000_0008n);
    expect(buf.readBigInt64BE(25)).toBe(1000n);
    expect(buf[33]).toBe(1);
  });

  it('reads XLogData and keepalive headers, and refuses anything else', () => {
    const seen: unknown[] = [];
    const onData = (lsn: Lsn, payload: Buffer) => seen.push(['w', lsn, payload.toString('hex')]);
    const onKeepalive = (walEnd: Lsn, reply: boolean) => seen.push(['k', walEnd, reply]);
    // 'w', start 0/2A, end 0/30, clock, payload 'B'.
    const xlog = Buffer.concat([Buffer.from([0x77]), Buffer.from('000000000000002a', 'hex'), Buffer.from('0000000000000030', 'hex'), Buffer.alloc(8), Buffer.from('42', 'hex')]);
    const keepalive = Buffer.concat([Buffer.from([0x6b]), Buffer.from('0000000100000010', 'hex'), Buffer.alloc(8), Buffer.from([1])]);
    expect(readCopyData(xlog, onData, onKeepalive)).toBe(true);
    expect(readCopyData(keepalive, onData, onKeepalive)).toBe(true);
    expect(readCopyData(keepalive.subarray(0, 17), onData, onKeepalive)).toBe(false);
    expect(readCopyData(Buffer.from([0x78, 0, 0]), onData, onKeepalive)).toBe(false);
    expect(seen).toEqual([['w', 0x2an, '42'], ['k', 0x1_0000_0010n, true]]);
  });

  it('backs off reconnects by doubling up to the maximum', () => {
    expect([0, 1, 2, 3, 10].map((n) => backoffDelay(n))).toEqual([500, 1000, 2000, 4000, 30_000]);
    expect([0, 1, 2].map((n) => backoffDelay(n, { initialMs: 10, maxMs: 25 }))).toEqual([10, 20, 25]);
  });

  it('pins the text formats the decoders depend on in the replication client settings', () => {
    const config = replicationClientConfig('postgres://u@h/db', 'performer_postgres_changes');
    expect(config).toMatchObject({ connectionString: 'postgres://u@h/db', application_name: 'performer_postgres_changes' });
    expect(config.options).toContain('DateStyle=ISO');
    expect(config.options).toContain('bytea_output=hex');
  });

  it('picks the protocol version and quotes publication names', () => {
    expect([130000, 140005, 150002, 160000, 180001].map(chooseProtocolVersion)).toEqual([1, 2, 3, 4, 4]);
    expect(quotePublications(['a', `we"ird'name`])).toBe(`'"a","we""ird''name"'`);
  });

  it('queues handlers in order, pauses at the high-water mark and survives failures', async () => {
    const log: string[] = [];
    const queue: OrderedQueue<number> = new OrderedQueue<number>({
      handle: (n) => {
        if (n === 3) throw new Error('sync failure');
        if (n % 2 === 0) return new Promise((r) => setTimeout(r, 5)).then(() => void log.push(`async ${n}`));
        log.push(`sync ${n}`);
      },
      done: () => undefined,
      failed: (n) => log.push(`failed ${n}`),
      highWaterMark: 3,
      lowWaterMark: 1,
      pause: () => log.push('pause'),
      resume: () => log.push('resume'),
    });
    queue.push(1);
    expect(log).toEqual(['sync 1']);
    for (const n of [2, 3, 4, 5, 6]) queue.push(n);
    expect(queue.busy).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(log).toEqual(['sync 1', 'pause', 'async 2', 'failed 3', 'async 4', 'sync 5', 'resume', 'async 6']);
    expect(queue.idle).toBe(true);
  });

  it('stops while the server never answers the connection (a session stuck inside the library)', async () => {
    // Accepts TCP and stays silent: the replication client hangs in its start-up, where the library's own stop()
    // strips the listeners that would have settled it.
    const sockets: import('node:net').Socket[] = [];
    const silent = net.createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as import('node:net').AddressInfo).port;
    const stream = new ReplicationStream({
      connection: `postgres://nobody:x@127.0.0.1:${port}/nothing`,
      publications: ['p'],
      slot: 'silent_server',
      temporary: true,
      stopTimeoutMs: 300,
      handler: () => {},
    });
    stream.start();
    await waitUntil(() => sockets.length > 0, 5000, 'the client to connect');
    let stopped = false;
    const stopping = stream.stop().then(() => (stopped = true));
    await waitUntil(() => stopped, 10_000, 'stop() to finish');
    await stopping;
    expect(stream.status).toBe('stopped');
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('names a server without wal_level=logical in its failure code (machine PG 15)', async () => {
    const machine = await createMachineTestDatabase('stream_wal');
    const stream = new ReplicationStream({ connection: machine.url, publications: ['p'], slot: 'wal_level_probe', temporary: true, handler: () => {}, ...FAST });
    try {
      stream.start();
      await waitUntil(() => stream.error !== null, 15_000, 'the stream to fail');
      expect(failureCode(stream.error)).toBe('ReplicationWalLevelNotLogical');
      expect(failureCode({ code: '55006', message: 'replication slot "x" is active for PID 1' })).toBe('ReplicationSlotBusy');
      expect(failureCode(new Error('connection reset'))).toBe('ReplicationConnectionDown');
    } finally {
      await stream.stop();
      await machine.drop();
    }
  });

  it('rejects invalid slot names', () => {
    expect(() => new ReplicationStream({ connection: 'postgres://x', publications: ['p'], slot: 'Bad-Name', temporary: true, handler: () => {} })).toThrow(/slot name/);
  });
});

describe('replication stream (shared PG 18)', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('stream');
    await prepareDatabase(db.url);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('delivers inserts in commit order, not start order', async () => {
    const h = open(db.url, { slot: 'order_slot', autoAck: true });
    await waitUntil(() => h.stream.status === 'up', 15_000, 'stream up');
    const a = new pg.Client({ connectionString: db.url });
    const b = new pg.Client({ connectionString: db.url });
    await a.connect();
    await b.connect();
    try {
      await a.query('BEGIN');
      await a.query('INSERT INTO items VALUES (1, $1)', ['first started']);
      await b.query('BEGIN');
      await b.query('INSERT INTO items VALUES (2, $1)', ['second started']);
      await b.query('COMMIT');
      await a.query('INSERT INTO items VALUES (3, $1)', ['first again']);
      await a.query('COMMIT');
    } finally {
      await a.end();
      await b.end();
    }
    await waitUntil(() => insertedIds(h.events).length === 3, 10_000, 'three inserts');
    expect(insertedIds(h.events)).toEqual([2, 1, 3]);
    const tags = h.events.map((e) => e.message.tag).filter((t) => t !== 'relation');
    expect(tags).toEqual(['begin', 'insert', 'commit', 'begin', 'insert', 'insert', 'commit']);
    // The relation cache is filled before the handler sees the first insert.
    const firstInsert = h.events.find((e) => e.message.tag === 'insert')!;
    if (firstInsert.message.tag !== 'insert') throw new Error('unreachable');
    expect(h.stream.relations.zip(firstInsert.message.relationId, firstInsert.message.new).relation.name).toBe('items');
    // Only commits carry an acknowledgement position, and it is the commit's end.
    for (const e of h.events) {
      if (e.message.tag === 'commit') expect(e.ackLsn).toBe(e.message.endLsn);
      else expect(e.ackLsn).toBeNull();
    }
  });

  it('confirms only acknowledged positions, then advances confirmed_flush_lsn on ack', async () => {
    await withClient(db.url, (c) => c.query('TRUNCATE items'));
    const h = open(db.url, { slot: 'ack_slot', temporary: false });
    await waitUntil(() => h.stream.status === 'up', 15_000, 'stream up');
    await insert(db.url, 10, 11);
    // An insert reaches the handler before its transaction's commit message: wait for both commits.
    await waitUntil(() => h.events.filter((e) => e.message.tag === 'commit').length >= 2, 10_000, 'two commits');
    expect(insertedIds(h.events)).toEqual([10, 11]);
    const commits = h.events.filter((e) => e.message.tag === 'commit');
    const firstCommit = commits[0]!.message;
    if (firstCommit.tag !== 'commit') throw new Error('unreachable');
    // While idle before the inserts the slot may follow the server's WAL end (other databases write WAL too),
    // but never past the first undelivered commit; once delivered and unacknowledged it must stay put.
    const pending = (await slotInfo(db.url, 'ack_slot'))!.confirmed;
    expect(pending <= firstCommit.commitLsn).toBe(true);
    await new Promise((r) => setTimeout(r, 800));
    expect((await slotInfo(db.url, 'ack_slot'))!.confirmed).toBe(pending);

    h.stream.ack(commits[0]!.ackLsn!);
    await waitUntil(async () => (await slotInfo(db.url, 'ack_slot'))!.confirmed === commits[0]!.ackLsn, 5000, 'first ack confirmed');
    h.stream.ack(commits[1]!.ackLsn!);
    // With everything acknowledged the stream is idle and may confirm up to the server's WAL end.
    await waitUntil(async () => (await slotInfo(db.url, 'ack_slot'))!.confirmed >= commits[1]!.ackLsn!, 5000, 'second ack confirmed');
    expect(h.stream.ackedLsn).toBe(commits[1]!.ackLsn);
  });

  it('runs async handlers one at a time in order, with backpressure, and survives handler errors', async () => {
    await withClient(db.url, (c) => c.query('TRUNCATE items'));
    let running = 0;
    let maxRunning = 0;
    const h = open(db.url, { slot: 'async_slot', autoAck: true, highWaterMark: 5, lowWaterMark: 1 }, async (e) => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 1));
      running -= 1;
      if (e.message.tag === 'insert' && e.message.new[0]?.kind === 'text' && e.message.new[0].value === '7') throw new Error('boom');
    });
    await waitUntil(() => h.stream.status === 'up', 15_000, 'stream up');
    await withClient(db.url, (c) => c.query('INSERT INTO items SELECT g, null FROM generate_series(1, 150) g'));
    await insert(db.url, 1000);
    await waitUntil(() => insertedIds(h.events).length === 151, 20_000, 'all inserts');
    expect(insertedIds(h.events)).toEqual([...Array.from({ length: 150 }, (_, i) => i + 1), 1000]);
    expect(maxRunning).toBe(1);
    expect(h.stream.status).toBe('up');
    await waitUntil(() => h.stream.ackedLsn === h.events.at(-1)!.ackLsn, 5000, 'last commit acknowledged');
  });

  it('drops its temporary slot when stopped', async () => {
    const h = open(db.url, { slot: 'temp_slot' });
    await waitUntil(() => h.stream.status === 'up', 15_000, 'stream up');
    expect((await slotInfo(db.url, 'temp_slot'))?.active).toBe(true);
    await h.stream.stop();
    expect(h.stream.status).toBe('stopped');
    await waitUntil(async () => (await slotInfo(db.url, 'temp_slot')) === null, 5000, 'temporary slot gone');
  });

  it('resumes a persistent slot from the acknowledged position when recreated', async () => {
    await withClient(db.url, (c) => c.query('TRUNCATE items'));
    // Acknowledge the commits of rows 21 and 22 only: 23 was delivered but never acknowledged.
    const first = open(db.url, { slot: 'resume_slot', temporary: false }, (e, h) => {
      if (e.message.tag === 'commit' && insertedIds(h.events).at(-1)! <= 22) h.stream.ack(e.ackLsn!);
    });
    await waitUntil(() => first.stream.status === 'up', 15_000, 'stream up');
    await insert(db.url, 21, 22, 23);
    await waitUntil(() => insertedIds(first.events).length === 3, 10_000, 'three inserts');
    const acked = first.stream.ackedLsn;
    await first.stream.stop();
    expect((await slotInfo(db.url, 'resume_slot'))!.confirmed).toBe(acked);

    await insert(db.url, 24);
    const second = open(db.url, { slot: 'resume_slot', temporary: false, autoAck: true });
    await waitUntil(() => insertedIds(second.events).length === 2, 15_000, 'redelivery');
    await new Promise((r) => setTimeout(r, 300));
    expect(insertedIds(second.events)).toEqual([23, 24]);
  });
});

describe('replication stream across server trouble (dedicated PG 18)', () => {
  let server: DedicatedPostgres;
  let url: string;

  beforeAll(async () => {
    server = await startDedicatedPostgres();
    url = server.url;
    // Low enough that a client which only answered the periodic updates would be cut off.
    await withClient(url, async (c) => {
      await c.query(`ALTER SYSTEM SET wal_sender_timeout = '1s'`);
      await c.query('SELECT pg_reload_conf()');
    });
    await prepareDatabase(url);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  const walsenderPid = () =>
    withClient(url, async (c) => {
      const res = await c.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_replication WHERE application_name = 'realtime_replication_connection'`,
      );
      return res.rows.map((r) => r.pid);
    });

  it('answers keepalives so an idle stream outlives wal_sender_timeout', async () => {
    expect((await withClient(url, (c) => c.query('SHOW wal_sender_timeout'))).rows[0].wal_sender_timeout).toBe('1s');
    // Periodic updates far apart: only the keepalive replies can keep this connection alive.
    const h = open(url, { slot: 'keepalive_slot', autoAck: true, statusIntervalMs: 60_000, receiveTimeoutMs: 120_000 });
    await waitUntil(() => h.stream.status === 'up', 15_000, 'stream up');
    const before = await walsenderPid();
    expect(before).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 4000));
    expect(h.statuses).toEqual(['up']);
    expect(await walsenderPid()).toEqual(before);
    await insert(url, 100);
    await waitUntil(() => insertedIds(h.events).includes(100), 5000, 'insert after idle');
  });

  it('reconnects after a restart and a crash, without redelivering acknowledged rows', async () => {
    const h = open(url, { slot: 'restart_slot', temporary: false, autoAck: true });
    await waitUntil(() => h.stream.status === 'up', 15_000, 'stream up');
    await insert(url, 200);
    await waitUntil(() => insertedIds(h.events).includes(200), 5000, 'first insert');
    await waitUntil(async () => (await slotInfo(url, 'restart_slot'))!.confirmed >= h.stream.ackedLsn, 5000, 'ack confirmed');

    await server.restart();
    await waitUntil(() => h.statuses.filter((s) => s === 'up').length === 2, 30_000, 'up after restart');
    await insert(url, 201);
    await waitUntil(() => insertedIds(h.events).includes(201), 10_000, 'insert after restart');

    await server.crash();
    await server.startServer();
    await waitUntil(() => h.statuses.filter((s) => s === 'up').length === 3, 30_000, 'up after crash');
    await insert(url, 202);
    await waitUntil(() => insertedIds(h.events).includes(202), 10_000, 'insert after crash');

    expect(insertedIds(h.events)).toEqual([200, 201, 202]);
    expect(h.statuses).toEqual(['up', 'down', 'up', 'down', 'up']);
  }, 90_000);

  it('keeps retrying while the server is down and comes up when it returns', async () => {
    const h = open(url, { slot: 'outage_slot', autoAck: true });
    await waitUntil(() => h.stream.status === 'up', 15_000, 'stream up');
    await server.stopServer();
    await waitUntil(() => h.stream.status === 'down', 10_000, 'down');
    await new Promise((r) => setTimeout(r, 1500));
    await server.startServer();
    await waitUntil(() => h.stream.status === 'up', 30_000, 'up again');
    await insert(url, 300);
    await waitUntil(() => insertedIds(h.events).includes(300), 10_000, 'insert after outage');
    expect(formatLsn(h.stream.ackedLsn)).not.toBe('0/0');
  }, 90_000);
});
