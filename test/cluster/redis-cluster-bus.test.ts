/**
 * The state layers' bus on a real Redis Cluster (three primaries): sharded pub/sub, each channel on the one shard of
 * its slot, in order per channel; and presence replicated over it, a snapshot larger than one message included.
 */
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterMembers } from '../../src/cluster/bus.js';
import { RedisBus } from '../../src/cluster/redis-bus.js';
import { RedisConnections } from '../../src/cluster/redis.js';
import { createLogger } from '../../src/observability/logger.js';
import { PresenceSync } from '../../src/presence/cluster-sync.js';
import { newReplicaId, TenantPresence } from '../../src/presence/tenant-presence.js';
import { PrivateRedisCluster, uniquePrefix } from '../support/redis.js';

const log = createLogger('silent');
const opened: { close(): Promise<void> }[] = [];
let cluster: PrivateRedisCluster;

beforeAll(async () => {
  cluster = await PrivateRedisCluster.start();
}, 60_000);

afterAll(async () => {
  for (const o of opened.reverse()) await o.close();
  await cluster?.stop();
});

async function connections(prefix: string): Promise<RedisConnections> {
  const redis = new RedisConnections({ clusterNodes: cluster.nodes }, prefix, log);
  opened.push(redis);
  if (!(await redis.whenReady(10_000))) throw new Error('Redis Cluster not ready');
  return redis;
}

async function bus(prefix: string): Promise<RedisBus> {
  const b = new RedisBus(await connections(prefix), log);
  opened.push(b);
  return b;
}

const until = async (cond: () => boolean, what: string, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** Channels of this test's prefix each primary carries, sharded and classic. */
async function channelsByPrimary(redis: RedisConnections, prefix: string): Promise<{ sharded: string[][]; classic: string[][] }> {
  const primaries = (redis.command as Cluster).nodes('master');
  const sharded = await Promise.all(primaries.map(async (p) => ((await p.call('PUBSUB', 'SHARDCHANNELS', `${prefix}*`)) as string[]).sort()));
  const classic = await Promise.all(primaries.map(async (p) => (await p.call('PUBSUB', 'CHANNELS', `${prefix}*`)) as string[]));
  return { sharded, classic };
}

describe('the cluster bus on Redis Cluster', () => {
  it('uses sharded channels, each on the one primary of its slot, keeping one channel in order', async () => {
    const prefix = uniquePrefix('bus');
    const [a, b] = [await bus(prefix), await bus(prefix)];
    const got = new Map<string, string[]>();
    const channels = [a.nodeChannel('node-a'), ...Array.from({ length: 6 }, (_, i) => a.tenantChannel(`tenant-${i}`, 'presence'))];
    for (const ch of channels) {
      got.set(ch, []);
      await a.listen(ch, (payload) => got.get(ch)!.push(payload));
    }
    // ioredis connects to each primary on first use; with the offline queue off (as Performer runs it) commands sent
    // meanwhile are retried out of order, and a shard's subscriber may come up after its SSUBSCRIBE was answered.
    // Order holds once connected: warm-up messages go out until every channel has had one.
    await until(() => {
      for (const [ch, list] of got) if (list.length === 0) b.publish(ch, 'warm-up');
      return [...got.values()].every((list) => list.length > 0);
    }, 'a warm-up message on every channel');
    await b.settled();
    await new Promise((r) => setTimeout(r, 200));
    for (const list of got.values()) list.length = 0;
    for (let i = 0; i < 100; i++) for (const ch of channels) b.publish(ch, `${i}`);
    await b.settled();
    await until(() => [...got.values()].every((list) => list.length === 100), 'every message on every channel');
    for (const list of got.values()) expect(list).toEqual(Array.from({ length: 100 }, (_, i) => `${i}`));

    const redis = await connections(prefix);
    const { sharded, classic } = await channelsByPrimary(redis, prefix);
    expect(classic.flat()).toEqual([]);
    // Each channel is subscribed on exactly one primary, the one serving its slot; the tenants spread over several.
    expect(sharded.flat().sort()).toEqual([...channels].sort());
    expect(sharded.filter((list) => list.length > 0).length).toBeGreaterThan(1);
    const slots = (await redis.command.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    const primaries = (redis.command as Cluster).nodes('master');
    for (const [i, primary] of primaries.entries()) {
      for (const ch of sharded[i]!) {
        const slot = Number(await redis.command.call('CLUSTER', 'KEYSLOT', ch));
        const range = slots.find(([from, to]) => slot >= from && slot <= to)!;
        expect(range[2][1]).toBe(primary.options.port);
      }
    }

    await a.unlisten(channels[1]!);
    expect((await channelsByPrimary(redis, prefix)).sharded.flat()).not.toContain(channels[1]);
  });

  it('carries presence between nodes on per-tenant channels, a snapshot in pieces bringing a late node up to date', async () => {
    const prefix = uniquePrefix('presence');
    const names = ['node-a', 'node-b'];
    const members = (self: string): ClusterMembers => ({ self, live: () => names, isLive: (n) => names.includes(n), onChange: () => () => undefined });
    const node = async (name: string) => {
      const presence = new TenantPresence('acme', newReplicaId(name));
      const b = await bus(prefix);
      const sync = new PresenceSync({
        bus: b,
        members: members(name),
        channel: (tenant) => b.tenantChannel(tenant, 'presence'),
        running: () => [presence],
        publisher: { publishLocal: () => undefined },
        batchMs: 20,
        log,
        snapshotPieceBytes: 16 * 1024,
      });
      await sync.start();
      opened.push({ close: () => sync.stop() });
      return { presence, sync };
    };
    const a = await node('node-a');
    for (let i = 0; i < 3000; i++) a.presence.track('public|lobby', `p${i}`, `user-${i}`, { name: `user number ${i}` });
    // Shipped as a delta before b runs the tenant: b learns it from a snapshot, in pieces.
    await until(() => !a.presence.replica.hasPendingDelta, "a's delta to go out");
    expect(JSON.stringify(a.presence.snapshot()).length).toBeGreaterThan(4 * 16 * 1024);
    const b = await node('node-b');
    await until(() => b.presence.size === 3000, 'b to hold every presence', 20_000);
    expect(b.presence.replica.list('public|lobby')).toEqual(a.presence.replica.list('public|lobby'));
    b.presence.track('public|lobby', 'q', 'from-b', {});
    await until(() => a.presence.size === 3001, "b's presence on a");
  });
});
