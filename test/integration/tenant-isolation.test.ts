import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/raw-client.js';
import { startDedicatedPostgres, type DedicatedPostgres } from '../support/postgres.js';
import { sleep, startTestServer, type TestServer } from '../support/server.js';
import { api, createTenant, extensionFor, type TestTenant } from '../support/tenants.js';
import { until } from '../support/channels.js';

let t: TestServer;
let dedicated: DedicatedPostgres;
const created: TestTenant[] = [];

beforeAll(async () => {
  t = await startTestServer({
    TENANT_DB_PROBE_MS: '200',
    TENANT_BACKOFF_MIN_MS: '100',
    TENANT_BACKOFF_MAX_MS: '1000',
    RATE_COUNTER_TICK_MS: '100',
    RATE_COUNTER_WINDOW_MS: '1000',
  });
  dedicated = await startDedicatedPostgres();
});
afterAll(async () => {
  await t?.stop();
  await Promise.all(created.map((x) => x.db.drop()));
  await dedicated?.stop();
});

function connect(tenant: { id: string; anonKey: string }): Promise<RawClient> {
  return RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${tenant.anonKey}&vsn=2.0.0`, { host: `${tenant.id}.localhost:${t.port}` });
}

async function joined(tenant: { id: string; anonKey: string }, topic: string): Promise<RawClient> {
  const c = await connect(tenant);
  c.send(['1', '1', topic, 'phx_join', { config: {} }]);
  const reply = (await c.reply('1', 10_000))[4];
  expect(reply).toMatchObject({ status: 'ok' });
  return c;
}

describe('fault isolation between tenants', () => {
  it('keeps delivering a healthy tenant\'s broadcasts while others lose their database, flood joins and throw', async () => {
    const healthy = await createTenant(t, 'healthy', { max_events_per_second: 100000 });
    const flooder = await createTenant(t, 'flooder', { max_joins_per_second: 5 });
    const thrower = await createTenant(t, 'thrower');
    created.push(healthy, flooder, thrower);
    // A tenant whose database lives on a Postgres this test stops and restarts.
    const brittleSecret = 'brittle-secret-with-at-least-32-characters!';
    const res = await api(t, 'POST', '/api/tenants', {
      tenant: { external_id: 'brittle', jwt_secret: brittleSecret, extensions: [extensionFor(dedicated.url)] },
    });
    expect(res.status).toBe(201);
    const brittle = { id: 'brittle', anonKey: await t.sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 3600 }, brittleSecret) };

    const receiver = await joined(healthy, 'realtime:steady');
    const sender = await joined(healthy, 'realtime:steady');
    const brittleSocket = await joined(brittle, 'realtime:b');
    const throwerSocket = await joined(thrower, 'realtime:t');

    let sent = 0;
    let sending = true;
    const pump = (async () => {
      while (sending) {
        sender.send(['1', null, 'realtime:steady', 'broadcast', { type: 'broadcast', event: 'n', payload: { n: sent++ } }]);
        await sleep(10);
      }
    })();

    // 1. The brittle tenant's database goes away: it degrades, its new joins fail, and it recovers afterwards.
    await until(() => t.server.ctx.registry.supervisor('brittle')?.state === 'ready');
    await dedicated.stopServer();
    await until(() => t.server.ctx.registry.supervisor('brittle')?.state === 'degraded' && t.server.ctx.registry.peek('brittle')?.dbState !== 'ready');
    const late = await connect(brittle);
    late.send(['1', '1', 'realtime:late', 'phx_join', { config: {} }]);
    expect((await late.reply('1', 10_000))[4]).toEqual({
      status: 'error',
      response: { reason: 'UnableToConnectToProject: Realtime was unable to connect to the project database' },
    });

    // 2. The flooder hammers joins until its limiter trips and disconnects it.
    const flood = await connect(flooder);
    for (let i = 0; i < 200; i++) flood.send([`${i}`, `${i}`, `realtime:f${i}`, 'phx_join', { config: {} }]);
    expect(await flood.closed).toBe(1001);

    // 3. The thrower's handler throws: the tenant degrades, its socket survives, and it recovers once fixed.
    const runtime = t.server.ctx.registry.peek('thrower');
    if (!runtime) throw new Error('thrower not running');
    const originalAdd = runtime.events.add.bind(runtime.events);
    runtime.events.add = () => {
      throw new Error('injected handler bug');
    };
    throwerSocket.send(['1', null, 'realtime:t', 'broadcast', { type: 'broadcast', event: 'x', payload: {} }]);
    await until(() => t.server.ctx.registry.supervisor('thrower')?.state === 'degraded');
    runtime.events.add = originalAdd;
    throwerSocket.send([null, 'hb', 'phoenix', 'heartbeat', {}]);
    expect((await throwerSocket.reply('hb'))[4]).toEqual({ status: 'ok', response: {} });
    await until(() => t.server.ctx.registry.supervisor('thrower')?.state === 'ready');

    // The brittle tenant comes back when its database does.
    await dedicated.startServer();
    await until(() => t.server.ctx.registry.supervisor('brittle')?.state === 'ready', 20_000);
    const back = await joined(brittle, 'realtime:back');
    back.close();
    // Its already-joined public channel kept its socket throughout.
    expect(brittleSocket.closeCode).toBeNull();

    sending = false;
    await pump;
    const received = () => receiver.frames.filter((f) => typeof f === 'string' && f.includes('"broadcast"')).length;
    await until(() => received() === sent, 5000);
    const numbers = receiver.frames.map((f) => (JSON.parse(f as string) as [unknown, unknown, string, string, { payload: { n: number } }])[4].payload.n);
    expect(numbers).toEqual([...Array(sent).keys()]);
    expect(sent).toBeGreaterThan(100);
    for (const c of [receiver, sender, brittleSocket, throwerSocket, late]) c.close();
  }, 60_000);
});

describe('tenant lifecycle on a node', () => {
  it('starts a tenant on first use and stops it after a period without sockets', async () => {
    const idle = await startTestServer({ TENANT_IDLE_STOP_MS: '1000' });
    try {
      const tenant = await createTenant(idle, 'sleepy');
      created.push(tenant);
      const registry = idle.server.ctx.registry;
      const c = await RawClient.connect(`ws://127.0.0.1:${idle.port}/socket/websocket?apikey=${tenant.anonKey}&vsn=2.0.0`, {
        host: `sleepy.localhost:${idle.port}`,
      });
      c.send(['1', '1', 'realtime:z', 'phx_join', { config: {} }]);
      await c.reply('1');
      // Its children may still be starting on a loaded machine (degraded until the stream is up): this test is about
      // the idle stop, so it waits for readiness rather than assuming it at the join reply.
      await until(() => registry.supervisor('sleepy')?.state === 'ready', 10_000);
      await sleep(2500);
      expect(registry.peek('sleepy')).not.toBeNull();
      c.close();
      await until(() => registry.peek('sleepy') === null, 10_000);
      // And it starts again on the next connection.
      const again = await RawClient.connect(`ws://127.0.0.1:${idle.port}/socket/websocket?apikey=${tenant.anonKey}&vsn=2.0.0`, {
        host: `sleepy.localhost:${idle.port}`,
      });
      again.send(['1', '1', 'realtime:z', 'phx_join', { config: {} }]);
      expect((await again.reply('1'))[4]).toMatchObject({ status: 'ok' });
      again.close();
    } finally {
      await idle.stop();
    }
  }, 30_000);
});

describe('postgres_changes isolation', () => {
  it("keeps one tenant's change stream flowing while another tenant's database is down", async () => {
    const fast = await createTenant(t, 'fastdb', { max_events_per_second: 100000 });
    created.push(fast);
    const setup = async (url: string) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`CREATE TABLE IF NOT EXISTS public.ticks (id int PRIMARY KEY); GRANT SELECT ON public.ticks TO anon;
                     DO $$ BEGIN ALTER PUBLICATION supabase_realtime ADD TABLE public.ticks; EXCEPTION WHEN duplicate_object THEN NULL; END $$;`);
      return c;
    };
    const fastDb = await setup(fast.db.url);
    const slowSecret = 'slowdb-secret-with-at-least-32-characters!!';
    const slowDb = await setup(dedicated.url);
    const res = await api(t, 'PUT', '/api/tenants/slowdb', { tenant: { jwt_secret: slowSecret, extensions: [extensionFor(dedicated.url)] } });
    expect(res.status).toBe(201);
    const slow = { id: 'slowdb', anonKey: await t.sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 3600 }, slowSecret) };

    const subscribe = async (tenant: { id: string; anonKey: string }) => {
      const c = await connect(tenant);
      c.send(['1', '1', 'realtime:ticks', 'phx_join', { config: { postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'ticks' }] } }]);
      expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
      expect(((await c.nextText((m) => (m as unknown[])[3] === 'system', 15_000)) as unknown[])[4]).toMatchObject({ status: 'ok' });
      return c;
    };
    const fastSub = await subscribe(fast);
    const slowSub = await subscribe(slow);
    await slowDb.end();
    await dedicated.stopServer();

    const received = () => fastSub.frames.filter((f) => typeof f === 'string' && f.includes('postgres_changes')).length;
    for (let i = 1; i <= 20; i++) await fastDb.query('INSERT INTO public.ticks VALUES ($1)', [i]);
    await until(() => received() === 20, 10_000);

    await dedicated.startServer();
    fastSub.close();
    slowSub.close();
    await fastDb.end();
  }, 60_000);
});
