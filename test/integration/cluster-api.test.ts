import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../support/channels.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { SHARED_REDIS_URL, uniquePrefix } from '../support/redis.js';
import { startTestServer, TEST_API_SECRET, type TestServer } from '../support/server.js';
import { api } from '../support/tenants.js';

interface ClusterBody {
  nodes: { name: string; region: string; started_at: string; last_seen: string; connections: number; tenants: string[] }[];
}

describe('GET /api/cluster', () => {
  let db: TestDatabase;
  const servers: TestServer[] = [];
  const keepDb = (d: TestDatabase): TestDatabase => ({ ...d, drop: async () => undefined });
  beforeAll(async () => {
    db = await createTestDatabase('cluster_api');
  });
  afterAll(async () => {
    for (const s of servers) await s.stop();
    await db?.drop();
  });
  const start = async (env: Record<string, string>) => {
    const s = await startTestServer(env, keepDb(db));
    servers.push(s);
    return s;
  };

  it('lists the node itself when it runs alone, to management tokens only', async () => {
    const t = await start({ NODE_NAME: 'solo-1', NODE_REGION: 'eu-west-2' });
    const ok = await api(t, 'GET', '/api/cluster');
    expect(ok.status).toBe(200);
    const body = ok.body as ClusterBody;
    expect(body.nodes).toHaveLength(1);
    expect(Object.keys(body.nodes[0]!).sort()).toEqual(['connections', 'last_seen', 'name', 'region', 'started_at', 'tenants']);
    expect(body.nodes[0]).toMatchObject({ name: 'solo-1', region: 'eu-west-2', connections: 0, tenants: [] });

    // No token, a tenant's keys, a token signed with the tenant secret, a bad signature: 403 with an empty body.
    const refused = [t.anonKey, t.serviceKey, await t.sign({ role: 'service_role', exp: Math.floor(Date.now() / 1000) + 60 }), 'not-a-jwt'];
    for (const token of refused) {
      const res = await api(t, 'GET', '/api/cluster', undefined, token);
      expect([res.status, res.text]).toEqual([403, '']);
    }
    const bare = await fetch(`${t.url}/api/cluster`);
    expect([bare.status, await bare.text()]).toEqual([403, '']);
    // The management token is what authorizes, not the caller's luck: the same check signs with TEST_API_SECRET.
    expect(t.managementSecret).toBe(TEST_API_SECRET);
  });

  it('lists every live member of a cluster, with its connections, and drops one that stops', async () => {
    const prefix = uniquePrefix('cluster-api');
    const env = (name: string) => ({ NODE_NAME: name, REDIS_URL: SHARED_REDIS_URL, REDIS_KEY_PREFIX: prefix, CLUSTER_HEARTBEAT_MS: '100', CLUSTER_MEMBER_TTL_MS: '1000' });
    const a = await start(env('node-a'));
    const b = await start(env('node-b'));
    const names = async (t: TestServer) => ((await api(t, 'GET', '/api/cluster')).body as ClusterBody).nodes.map((n) => n.name);
    await until(async () => (await names(a)).length === 2, 5000, 'a to see b');
    expect(await names(a)).toEqual(['node-a', 'node-b']);
    expect(await names(b)).toEqual(['node-b', 'node-a']);

    const client = b.client();
    const channel = client.channel('room');
    await new Promise<void>((resolve) => channel.subscribe((s) => s === 'SUBSCRIBED' && resolve()));
    await until(async () => ((await api(a, 'GET', '/api/cluster')).body as ClusterBody).nodes.find((n) => n.name === 'node-b')?.connections === 1, 5000, 'b to report its connection');
    await client.removeAllChannels();

    await b.stop();
    await until(async () => (await names(a)).length === 1, 5000, 'a to see b leave');
    expect(await names(a)).toEqual(['node-a']);
  });
});
