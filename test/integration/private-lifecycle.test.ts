import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateTenantDatabase } from '../../src/tenants/migrate.js';
import { startDedicatedPostgres, type DedicatedPostgres } from '../support/postgres.js';
import { RawClient } from '../support/raw-client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { api, extensionFor } from '../support/tenants.js';
import { until } from '../support/channels.js';

let t: TestServer;
let dedicated: DedicatedPostgres;
const SECRET = 'restart-tenant-secret-with-32-characters!!';
const alice = randomUUID();

beforeAll(async () => {
  t = await startTestServer({ TENANT_BACKOFF_MIN_MS: '100', TENANT_BACKOFF_MAX_MS: '1000', TENANT_DB_PROBE_MS: '300' });
  dedicated = await startDedicatedPostgres();
  const setup = new pg.Client({ connectionString: dedicated.url });
  await setup.connect();
  await migrateTenantDatabase(setup);
  await setup.query(`
    CREATE POLICY "members read" ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() LIKE 'room%' AND (auth.jwt() ->> 'member') = 'yes');
    CREATE POLICY "members write presence" ON realtime.messages FOR INSERT TO authenticated
      WITH CHECK (realtime.topic() = 'room-rw' AND extension = 'presence');
  `);
  await setup.end();
  const res = await api(t, 'POST', '/api/tenants', { tenant: { external_id: 'restarty', jwt_secret: SECRET, extensions: [extensionFor(dedicated.url)] } });
  expect(res.status).toBe(201);
});
afterAll(async () => {
  await t?.stop();
  await dedicated?.stop();
});

const token = (claims: Record<string, unknown>) => t.sign({ role: 'authenticated', sub: alice, exp: Math.floor(Date.now() / 1000) + 3600, ...claims }, SECRET);

async function connect(vsn = '2.0.0'): Promise<RawClient> {
  return RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${await token({ member: 'yes' })}&vsn=${vsn}`, {
    host: `restarty.localhost:${t.port}`,
  });
}

async function send(topic: string, payload: object): Promise<void> {
  const c = new pg.Client({ connectionString: dedicated.url });
  await c.connect();
  await c.query(`SELECT realtime.send($1::jsonb, 'm', $2, true)`, [JSON.stringify(payload), topic]);
  await c.end();
}

describe('private channels over time', () => {
  it('keeps channels joined across a Postgres restart, and the next database broadcast still arrives', async () => {
    // vsn 1.0.0: database broadcasts arrive as JSON text (V2 sockets get binary kind-4 frames).
    const c = await connect('1.0.0');
    c.send('{"topic":"realtime:room-a","event":"phx_join","payload":{"config":{"private":true}},"ref":"1","join_ref":"1"}');
    expect(await c.nextText()).toMatchObject({ event: 'phx_reply', payload: { status: 'ok' } });
    const broadcast = (n: number) => (m: unknown) => (m as { event: string; payload: { payload: { n: number } } }).event === 'broadcast' && (m as { payload: { payload: { n: number } } }).payload.payload.n === n;
    await until(() => t.server.ctx.registry.peek('restarty')?.replication?.status === 'up');
    await send('room-a', { n: 1 });
    expect(await c.nextText(broadcast(1))).toMatchObject({ payload: { event: 'm', type: 'broadcast', payload: { n: 1 } } });

    await dedicated.restart();
    // The stream reconnects on its own; a message committed after that reaches the same, still joined channel.
    let delivered = false;
    for (let attempt = 0; attempt < 40 && !delivered; attempt++) {
      await send('room-a', { n: 2 }).catch(() => undefined);
      delivered = await c.nextText(broadcast(2), 500).then(() => true, () => false);
    }
    expect(delivered).toBe(true);
    expect(c.closeCode).toBeNull();
    c.close();
  }, 60_000);

  it('shuts the channel down when a refreshed token loses read permission', async () => {
    // The restart above may have left the tenant's database in its one-second "recently failed" backoff, where a
    // join is refused with UnableToConnectToProject: start once it is reachable again.
    await until(() => t.server.ctx.registry.peek('restarty')?.dbState === 'ready');
    const c = await connect();
    c.send(['1', '1', 'realtime:room-b', 'phx_join', { config: { private: true }, access_token: await token({ member: 'yes' }) }]);
    const joined = await c.reply('1');
    expect(joined[4], JSON.stringify(joined)).toMatchObject({ status: 'ok' });
    c.send(['1', '2', 'realtime:room-b', 'access_token', { access_token: await token({ member: 'no' }) }]);
    const system = (await c.nextText((m) => (m as unknown[])[3] === 'system', 5000)) as unknown[];
    expect(system[4]).toEqual({
      extension: 'system',
      status: 'error',
      message: 'You no longer have permission to read from this Channel topic: room-b',
      channel: 'room-b',
    });
    expect(await c.nextText((m) => (m as unknown[])[3] === 'phx_close')).toEqual(['1', '1', 'realtime:room-b', 'phx_close', {}]);
    c.close();
  });

  it('lets presence write only where the policy allows it', async () => {
    const rw = await connect();
    rw.send(['1', '1', 'realtime:room-rw', 'phx_join', { config: { private: true, presence: { key: 'alice', enabled: true } } }]);
    expect((await rw.reply('1'))[4]).toMatchObject({ status: 'ok' });
    rw.send(['1', '2', 'realtime:room-rw', 'presence', { type: 'presence', event: 'track', payload: { online: true } }]);
    expect((await rw.reply('2'))[4]).toEqual({ status: 'ok', response: {} });
    const diff = (await rw.nextText((m) => (m as unknown[])[3] === 'presence_diff')) as unknown[];
    expect(Object.keys((diff[4] as { joins: object }).joins)).toEqual(['alice']);

    const ro = await connect();
    ro.send(['1', '1', 'realtime:room-ro', 'phx_join', { config: { private: true, presence: { key: 'bob', enabled: true } } }]);
    expect((await ro.reply('1'))[4]).toMatchObject({ status: 'ok' });
    ro.send(['1', '2', 'realtime:room-ro', 'presence', { type: 'presence', event: 'track', payload: { online: true } }]);
    expect((await ro.reply('2'))[4]).toEqual({ status: 'error', response: {} });
    rw.close();
    ro.close();
  });
});
