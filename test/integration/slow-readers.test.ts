import type { Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../support/channels.js';
import { RawClient } from '../support/raw-client.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * A client that stops reading must never be given a silent subset: it gets a gap-free prefix of its messages, then a
 * `system` message saying why, then a close, while the other subscribers get everything without waiting for it.
 */

// Small, so that a paused socket passes it soon after the kernel's socket buffers are full.
const MAX_BUFFERED = 256 * 1024;
const ROWS = 20_000;
const BODY = 'x'.repeat(1000);
const SLOW_MESSAGE = 'Client too slow: messages backed up past the limit; disconnecting';

let t: TestServer;
let db: pg.Client;

beforeAll(async () => {
  t = await startTestServer({
    WEBSOCKET_MAX_BUFFERED_BYTES: String(MAX_BUFFERED),
    TENANT_MAX_EVENTS_PER_SECOND: '100000000',
    TENANT_MAX_BYTES_PER_SECOND: '100000000000',
  });
  db = new pg.Client({ connectionString: t.db.url });
  await db.connect();
  await db.query(`
    CREATE TABLE public.fat (id bigint PRIMARY KEY, body text);
    GRANT SELECT ON public.fat TO anon;
    ALTER PUBLICATION supabase_realtime ADD TABLE public.fat;
  `);
});
afterAll(async () => {
  await db?.end();
  await t?.stop();
});

function connect(): Promise<RawClient> {
  return RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=2.0.0`);
}

/** The TCP socket under a `ws` client: pausing it stops reading, so the server's writes back up. */
function tcp(c: RawClient): Socket {
  return (c.ws as unknown as { _socket: Socket })._socket;
}

async function subscribeChanges(c: RawClient, topic: string): Promise<void> {
  c.send(['1', '1', `realtime:${topic}`, 'phx_join', { config: { postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'fat' }] } }]);
  expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
  const ok = (await c.nextText((m) => (m as unknown[])[3] === 'system', 15_000)) as unknown[];
  expect(ok[4]).toMatchObject({ extension: 'postgres_changes', status: 'ok', message: 'Subscribed to PostgreSQL' });
}

async function joinBroadcast(c: RawClient, topic: string): Promise<void> {
  c.send(['1', '1', `realtime:${topic}`, 'phx_join', { config: { broadcast: { self: false } } }]);
  expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
}

/** What a client received, parsed once on arrival: data message numbers, then the system messages after them. */
interface Seen {
  /** Row ids of postgres_changes, or `seq` of broadcasts, in arrival order. */
  data: number[];
  /** `system` payloads of extension "system", with how many data messages had arrived before each. */
  system: { payload: unknown; after: number }[];
}

function watch(c: RawClient): Seen {
  const seen: Seen = { data: [], system: [] };
  c.ws.on('message', (raw: Buffer, isBinary: boolean) => {
    if (isBinary) return;
    const m = JSON.parse(raw.toString('utf8')) as [unknown, unknown, string, string, Record<string, unknown>];
    if (m[3] === 'postgres_changes') seen.data.push(Number((m[4] as { data: { record: { id: number } } }).data.record.id));
    else if (m[3] === 'broadcast') seen.data.push((m[4] as { payload: { seq: number } }).payload.seq);
    else if (m[3] === 'system' && m[4].extension === 'system') seen.system.push({ payload: m[4], after: seen.data.length });
  });
  return seen;
}

const range = (n: number, from = 1): number[] => Array.from({ length: n }, (_, i) => from + i);

/**
 * Resumes a client that stopped reading and checks what it saw: a gap-free prefix of its messages (everything, if
 * the server caught it only after the last), then an upstream-shaped `system` error after the last of them, then a
 * close with 1008. A heartbeat sent on resuming tells "closed" from "still open" without waiting for silence: its
 * reply comes after everything written before it, unless the server closed the socket.
 */
async function resumeAndExpectToldAndClosed(c: RawClient, seen: Seen, expected: number[], channel: string): Promise<void> {
  tcp(c).resume();
  c.send(['hb', 'hb', 'phoenix', 'heartbeat', {}]);
  const outcome = await Promise.race([c.closed.then(() => 'closed'), c.reply('hb', 60_000).then(() => 'still open', () => 'no reply')]);
  expect(seen.data).toEqual(expected.slice(0, seen.data.length));
  expect(outcome).toBe('closed');
  expect(await c.closed).toBe(1008);
  expect(seen.system).toEqual([{ payload: { extension: 'system', status: 'error', message: SLOW_MESSAGE, channel }, after: seen.data.length }]);
}

/**
 * Commits `total` rows from id `from` in transactions of `batch`, each after the fast subscribers (who had rows
 * 1..from-1) got the previous one: they keep up by construction (they share this process's event loop with the
 * server, so an unpaced burst would back them up too), while a paused socket falls ever further behind.
 */
async function insertPaced(total: number, batch: number, fast: Seen[], from = 1): Promise<void> {
  for (let start = from; start < from + total; start += batch) {
    const end = Math.min(from + total - 1, start + batch - 1);
    await db.query(`INSERT INTO public.fat (id, body) SELECT g, $3 FROM generate_series($1::bigint, $2::bigint) g`, [start, end, BODY]);
    await until(() => fast.every((f) => f.data.length >= end), 30_000, `fast subscribers got rows up to ${end}`);
  }
}

describe('a subscriber that stops reading', () => {
  it('postgres_changes: a lone subscriber and a member of a shared group are told and closed, the others get every row', async () => {
    // "solo" is alone in its group (written to directly); "shared" has two identical subscribers (one uWS publish).
    const solo = await connect();
    const sharedSlow = await connect();
    const sharedFast = await connect();
    const other = await connect();
    const seen = [solo, sharedSlow, sharedFast, other].map(watch);
    await subscribeChanges(solo, 'solo');
    await subscribeChanges(sharedSlow, 'shared');
    await subscribeChanges(sharedFast, 'shared');
    await subscribeChanges(other, 'other');
    tcp(solo).pause();
    tcp(sharedSlow).pause();
    await insertPaced(ROWS, 100, [seen[2]!, seen[3]!]);
    // The slow readers did not hold up the others, who got every row in order.
    expect(seen[2]!.data).toEqual(range(ROWS));
    expect(seen[3]!.data).toEqual(range(ROWS));
    await resumeAndExpectToldAndClosed(solo, seen[0]!, range(ROWS), 'solo');
    await resumeAndExpectToldAndClosed(sharedSlow, seen[1]!, range(ROWS), 'shared');
    // Far more was sent than the bound and the kernel buffers hold: the paused readers cannot have had it all.
    expect(seen[0]!.data.length).toBeLessThan(ROWS);
    expect(seen[1]!.data.length).toBeLessThan(ROWS);
    // The fast member of the shared group keeps its subscription after its slow peer left.
    await insertPaced(3, 3, [seen[2]!], ROWS + 1);
    expect(seen[2]!.data.slice(-3)).toEqual(range(3, ROWS + 1));
    expect(seen[2]!.system).toEqual([]);
    expect(seen[3]!.system).toEqual([]);
    sharedFast.close();
    other.close();
  }, 180_000);

  it('broadcast: the slow receiver is told and closed instead of silently skipped; the others get every message', async () => {
    const slow = await connect();
    const fast = await connect();
    const sender = await connect();
    const [slowSeen, fastSeen] = [slow, fast].map(watch);
    await joinBroadcast(slow, 'room');
    await joinBroadcast(fast, 'room');
    await joinBroadcast(sender, 'room');
    tcp(slow).pause();
    const n = 2000;
    const blob = 'y'.repeat(8000);
    for (let seq = 1; seq <= n; seq += 20) {
      for (let i = seq; i < seq + 20; i++) sender.send(['1', null, 'realtime:room', 'broadcast', { type: 'broadcast', event: 'e', payload: { seq: i, blob } }]);
      await until(() => fastSeen!.data.length >= seq + 19, 30_000, `fast receiver got broadcasts up to ${seq + 19}`);
    }
    expect(fastSeen!.data).toEqual(range(n));
    await resumeAndExpectToldAndClosed(slow, slowSeen!, range(n), 'room');
    expect(fastSeen!.system).toEqual([]);
    fast.close();
    sender.close();
  }, 120_000);
});

describe('a socket told it is too slow that keeps sending but never reads', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({
      WEBSOCKET_MAX_BUFFERED_BYTES: String(MAX_BUFFERED),
      WEBSOCKET_IDLE_TIMEOUT_SECONDS: '8',
      TENANT_MAX_EVENTS_PER_SECOND: '100000000',
      TENANT_MAX_BYTES_PER_SECOND: '100000000000',
    });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('is closed after the idle timeout instead of holding its buffer while its heartbeats keep it alive', async () => {
    const url = `ws://127.0.0.1:${s.port}/socket/websocket?apikey=${s.anonKey}&vsn=2.0.0`;
    const slow = await RawClient.connect(url);
    const sender = await RawClient.connect(url);
    for (const c of [slow, sender]) {
      c.send(['1', '1', 'realtime:room', 'phx_join', { config: { broadcast: { self: false } } }]);
      expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
    }
    const tenant = s.server.ctx.registry.peek('realtime-dev')!;
    expect(tenant.sockets.size).toBe(2);
    tcp(slow).pause();
    // Heartbeats reach the server (only reading is paused), so uWS's idle timeout alone would never close it.
    const beats = setInterval(() => {
      for (const c of [slow, sender]) c.send(['hb', 'hb', 'phoenix', 'heartbeat', {}]);
    }, 1000);
    try {
      const blob = 'y'.repeat(8000);
      for (let seq = 1; seq <= 2000; seq++) sender.send(['1', null, 'realtime:room', 'broadcast', { type: 'broadcast', event: 'e', payload: { seq, blob } }]);
      // Told (its channel closed at once) ...
      await until(() => tenant.channelsByKey.get('realtime-dev|public|room')?.size === 1, 10_000, 'the slow channel closed');
      const told = [...tenant.sockets].find((x) => x.channelCount() === 0)!;
      const other = [...tenant.sockets].find((x) => x !== told)!;
      // ... and, as it never reads what it was told, its socket goes after the idle timeout.
      await until(() => !tenant.sockets.has(told), 30_000, 'the slow socket closed');
      expect(tenant.sockets.has(other)).toBe(true);
    } finally {
      clearInterval(beats);
    }
    sender.close();
    slow.ws.terminate();
  }, 60_000);
});
