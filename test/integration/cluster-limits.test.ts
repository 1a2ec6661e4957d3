/**
 * Cluster-wide limits (issue 15): three nodes in one process on the shared Redis, their load counters synced by hand
 * (CLUSTER_LIMITS_SYNC_MS is an hour here), so each step says exactly what every node knows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../support/channels.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { failedHandshake, RawClient } from '../support/raw-client.js';
import { SHARED_REDIS_URL, uniquePrefix } from '../support/redis.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createTenant, type TestTenant } from '../support/tenants.js';

let db: TestDatabase;
const servers: TestServer[] = [];
const tenants: TestTenant[] = [];

beforeAll(async () => {
  db = await createTestDatabase('cluster_limits');
  const prefix = uniquePrefix('limits');
  for (const name of ['lim-a', 'lim-b', 'lim-c']) {
    servers.push(
      await startTestServer(
        {
          NODE_NAME: name,
          REDIS_URL: SHARED_REDIS_URL,
          REDIS_KEY_PREFIX: prefix,
          CLUSTER_HEARTBEAT_MS: '100',
          CLUSTER_MEMBER_TTL_MS: '2000',
          CLUSTER_LIMITS_SYNC_MS: '3600000',
          TENANT_CACHE_EXPIRATION_IN_MS: '200',
          // Rates that do not move during the test: a 60 s tick keeps every count in the tick in progress.
          RATE_COUNTER_TICK_MS: '60000',
          RATE_COUNTER_WINDOW_MS: '60000',
        },
        { ...db, drop: async () => undefined },
      ),
    );
  }
  for (const s of servers) await until(() => s.server.ctx.cluster.membership.members().length === 3, 10_000, 'three members');
}, 120_000);

afterAll(async () => {
  for (const s of servers) await s.stop();
  await Promise.all(tenants.map((t) => t.db.drop()));
  await db?.drop();
});

async function tenantWith(id: string, limits: Record<string, number>): Promise<TestTenant> {
  const tenant = await createTenant(servers[0]!, id, limits);
  tenants.push(tenant);
  for (const s of servers) await until(() => s.server.ctx.registry.record(id) !== null, 10_000, `${id} known everywhere`);
  return tenant;
}

const url = (s: TestServer, tenant: TestTenant) => `ws://127.0.0.1:${s.port}/socket/websocket?apikey=${tenant.anonKey}&vsn=2.0.0`;
const connect = (s: TestServer, tenant: TestTenant) => RawClient.connect(url(s, tenant), { host: `${tenant.id}.localhost:${s.port}` });

async function join(c: RawClient, topic: string, ref: string, config: Record<string, unknown> = {}): Promise<unknown> {
  c.send([ref, ref, topic, 'phx_join', { config }]);
  return (await c.reply(ref))[4];
}

/** Every node writes its figures, then every node reads the others': afterwards each knows the cluster's totals. */
async function syncAll(): Promise<void> {
  for (let round = 0; round < 2; round++) for (const s of servers) await s.server.ctx.cluster.syncLoad();
}

describe('cluster-wide limits', () => {
  it('max_concurrent_users counts the users of every node: refused at the handshake and at join at the right count', async () => {
    const tenant = await tenantWith('cl-users', { max_concurrent_users: 3 });
    const [a, b, c] = servers as [TestServer, TestServer, TestServer];
    const early = await connect(c, tenant); // connected before the limit filled, no channel yet
    const users = [await connect(a, tenant), await connect(b, tenant), await connect(c, tenant)];
    for (const [i, user] of users.entries()) {
      expect(await join(user, 'realtime:room', '1')).toMatchObject({ status: 'ok' });
      await syncAll();
      // Until the third joined, every node still admits: the count is the cluster's, not a node's.
      if (i < 2) for (const s of servers) (await connect(s, tenant)).close();
    }
    for (const s of servers) {
      expect(await failedHandshake(url(s, tenant), { host: `${tenant.id}.localhost:${s.port}` })).toEqual({ status: 429, body: { error: 'Too many connected users' } });
    }
    expect(await join(early, 'realtime:room', '1')).toEqual({ status: 'error', response: { reason: 'ConnectionRateLimitReached: Too many connected users' } });

    // One leaves on node a: once the nodes have synced, node b admits again.
    users[0]!.close();
    await until(() => servers[0]!.server.ctx.registry.peek(tenant.id)?.users.size === 0, 5000, 'the user to be gone');
    await syncAll();
    const again = await connect(b, tenant);
    expect(await join(again, 'realtime:room', '1')).toMatchObject({ status: 'ok' });
    for (const x of [early, again, ...users]) x.close();
  });

  it('max_events_per_second holds for the sum of the nodes: each under the limit alone, shut down together', async () => {
    // 1 event/s over a 60 s tick: 60 events in the cluster trip it. Each message counts twice (sent, delivered to
    // its sender): each node counts 40.
    const tenant = await tenantWith('cl-events', { max_events_per_second: 1 });
    const [a, b] = servers as [TestServer, TestServer];
    const onA = await connect(a, tenant);
    const onB = await connect(b, tenant);
    expect(await join(onA, 'realtime:x', '1', { broadcast: { self: true, ack: true } })).toMatchObject({ status: 'ok' });
    expect(await join(onB, 'realtime:y', '1', { broadcast: { self: true, ack: true } })).toMatchObject({ status: 'ok' });
    for (const [client, topic] of [[onA, 'realtime:x'], [onB, 'realtime:y']] as const) {
      for (let i = 0; i < 20; i++) {
        client.send(['1', `m${i}`, topic, 'broadcast', { type: 'broadcast', event: 'e', payload: { i } }]);
        await client.reply(`m${i}`);
      }
    }
    await until(() => onA.frames.filter((f) => String(f).includes('"broadcast"')).length >= 20, 5000, 'the 20 deliveries on a');
    // Alone, node a is at 40/60 of its limit: one more message would go through.
    await syncAll();
    onA.send(['1', 'over', 'realtime:x', 'broadcast', { type: 'broadcast', event: 'e', payload: { over: true } }]);
    const system = (await onA.nextText((m) => (m as unknown[])[3] === 'system')) as unknown[];
    expect(system[4]).toEqual({ extension: 'system', status: 'error', message: 'Too many messages per second', channel: 'x' });
    onA.close();
    onB.close();
  });
});
