import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../support/channels.js';
import { RawClient } from '../support/raw-client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createTenant, type TestTenant } from '../support/tenants.js';

/**
 * The tenant's events limiter never costs a committed row: postgres_changes have a limiter of their own (upstream's
 * db_events), so broadcast traffic cannot trip it, and while it is tripped changes are held, not dropped.
 */

let t: TestServer;
const created: TestTenant[] = [];
const dbs: pg.Client[] = [];

beforeAll(async () => {
  // Short rate-counter ticks so limits trip and clear within a test.
  t = await startTestServer({ RATE_COUNTER_TICK_MS: '100', RATE_COUNTER_WINDOW_MS: '1000' });
});
afterAll(async () => {
  await Promise.all(dbs.map((c) => c.end()));
  await t?.stop();
  await Promise.all(created.map((x) => x.db.drop()));
});

async function tenantWithTable(id: string, maxEventsPerSecond: number): Promise<{ tenant: TestTenant; db: pg.Client }> {
  const tenant = await createTenant(t, id, { max_events_per_second: maxEventsPerSecond, max_joins_per_second: 1_000_000 });
  created.push(tenant);
  const db = new pg.Client({ connectionString: tenant.db.url });
  await db.connect();
  dbs.push(db);
  // The tenant's migrations run when it starts (its first connection): wait for the publication.
  const probe = await connect(tenant);
  probe.close();
  await until(async () => (await db.query(`SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime'`)).rowCount === 1, 30_000, 'tenant migrated');
  await db.query(`
    CREATE TABLE public.rows (id bigint PRIMARY KEY);
    GRANT SELECT ON public.rows TO anon;
    ALTER PUBLICATION supabase_realtime ADD TABLE public.rows;
  `);
  return { tenant, db };
}

function connect(tenant: TestTenant): Promise<RawClient> {
  return RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${tenant.anonKey}&vsn=2.0.0`, { host: `${tenant.id}.localhost:${t.port}` });
}

/** A raw subscriber to INSERTs on public.rows: the ids it receives, parsed on arrival. */
async function subscribeRows(tenant: TestTenant): Promise<{ client: RawClient; ids: number[] }> {
  const client = await connect(tenant);
  const ids: number[] = [];
  client.ws.on('message', (raw: Buffer) => {
    const m = JSON.parse(raw.toString('utf8')) as unknown[];
    if (m[3] === 'postgres_changes') ids.push(Number((m[4] as { data: { record: { id: number } } }).data.record.id));
  });
  client.send(['1', '1', 'realtime:rows', 'phx_join', { config: { postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'rows' }] } }]);
  expect((await client.reply('1'))[4]).toMatchObject({ status: 'ok' });
  const system = (await client.nextText((m) => (m as unknown[])[3] === 'system', 15_000)) as unknown[];
  expect(system[4]).toMatchObject({ extension: 'postgres_changes', status: 'ok', message: 'Subscribed to PostgreSQL' });
  return { client, ids };
}

const range = (n: number, from = 1): number[] => Array.from({ length: n }, (_, i) => from + i);

/**
 * Every row of 1..n and a sentinel after them arrive, in order and once each: a duplicate or a gap before the
 * sentinel would show, since rows reach a subscriber in commit order. The sentinel commits once the broadcast
 * limiter is clear, so that it arrives even where changes share that limiter and are dropped while it is tripped.
 */
async function expectEveryRowOnce(tenantId: string, db: pg.Client, ids: number[], n: number): Promise<void> {
  const runtime = t.server.ctx.registry.peek(tenantId)!;
  await until(() => runtime.events.rate < runtime.settings.limits.maxEventsPerSecond, 10_000, 'the events limiter cleared');
  await db.query('INSERT INTO public.rows VALUES ($1)', [n + 1]);
  await until(() => ids.includes(n + 1), 30_000, 'the sentinel row');
  expect(ids).toEqual(range(n + 1));
}

describe('postgres_changes under the tenant events limit', () => {
  it('broadcast traffic on an unrelated channel trips the events limiter without costing a committed row', async () => {
    const { tenant, db } = await tenantWithTable('noisy', 20);
    const runtime = t.server.ctx.registry.peek('noisy')!;
    const { client, ids } = await subscribeRows(tenant);
    // Anonymous broadcast traffic far over the limit, on another channel. Each burst trips the limiter, which shuts
    // the channel down ("Too many messages per second"); the sender joins again and carries on.
    const sender = await connect(tenant);
    let flooding = true;
    let shutdowns = 0;
    sender.ws.on('message', (raw: Buffer) => {
      const m = JSON.parse(raw.toString('utf8')) as unknown[];
      if (m[3] === 'system' && (m[4] as { message?: string }).message === 'Too many messages per second') shutdowns += 1;
    });
    const flood = (async () => {
      for (let round = 1; flooding; round++) {
        const ref = `j${round}`;
        sender.send([ref, ref, 'realtime:noise', 'phx_join', { config: { broadcast: { self: true } } }]);
        await sender.reply(ref);
        for (let i = 0; i < 20; i++) sender.send([ref, null, 'realtime:noise', 'broadcast', { type: 'broadcast', event: 'n', payload: { i } }]);
      }
    })();
    const n = 30;
    for (let id = 1; id <= n; id++) {
      // Each row commits while the broadcast limiter is tripped.
      await until(() => runtime.events.rate >= 20, 10_000, 'the events limiter tripped');
      await db.query('INSERT INTO public.rows VALUES ($1)', [id]);
    }
    flooding = false;
    await flood;
    expect(shutdowns).toBeGreaterThan(0);
    await expectEveryRowOnce('noisy', db, ids, n);
    client.close();
    sender.close();
  });

  it('changes over the limit themselves are held and paced, never dropped', async () => {
    const { tenant, db } = await tenantWithTable('paced', 50);
    const runtime = t.server.ctx.registry.peek('paced')!;
    const { client, ids } = await subscribeRows(tenant);
    const n = 250;
    let peak = 0;
    const watch = setInterval(() => (peak = Math.max(peak, runtime.dbEvents.rate)), 10);
    for (let start = 1; start <= n; start += 25) {
      await db.query('INSERT INTO public.rows SELECT g FROM generate_series($1::bigint, $2::bigint) g', [start, start + 24]);
    }
    await expectEveryRowOnce('paced', db, ids, n);
    clearInterval(watch);
    // The limiter did trip: the rows went out at its pace instead of being dropped.
    expect(peak).toBeGreaterThanOrEqual(50);
    client.close();
  }, 120_000);
});
