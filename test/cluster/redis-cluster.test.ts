/**
 * The Redis pub/sub driver on a real Redis Cluster (REDIS_CLUSTER_NODES): sharded pub/sub (SPUBLISH / SSUBSCRIBE)
 * with the tenant as hash tag, through the same contract suite as on a single Redis.
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PubSub, PubSubHandler } from '../../src/cluster/pubsub.js';
import { RedisPubSub } from '../../src/cluster/redis-pubsub.js';
import { RedisConnections } from '../../src/cluster/redis.js';
import { ClusterMetrics } from '../../src/observability/cluster-metrics.js';
import { createLogger } from '../../src/observability/logger.js';
import { topicKey } from '../../src/shared/topic-keys.js';
import { PrivateRedisCluster, uniquePrefix } from '../support/redis.js';
import { describePubSubContract } from './pubsub-contract.js';

const log = createLogger('silent');
const opened: RedisConnections[] = [];
let cluster: PrivateRedisCluster;

beforeAll(async () => {
  cluster = await PrivateRedisCluster.start();
}, 60_000);

afterAll(async () => {
  await Promise.all(opened.map((r) => r.close()));
  await cluster?.stop();
});

async function node(handler: PubSubHandler, prefix: string): Promise<RedisPubSub> {
  const redis = new RedisConnections({ clusterNodes: cluster.nodes }, prefix, log);
  opened.push(redis);
  if (!(await redis.whenReady(10_000))) throw new Error('Redis Cluster not ready');
  const origin = Buffer.from(Array.from({ length: 8 }, () => Math.floor(Math.random() * 256)));
  return new RedisPubSub(handler, redis, origin, new ClusterMetrics(new Registry()), log);
}

async function settle(nodes: readonly PubSub[]): Promise<void> {
  const redisNodes = nodes as readonly RedisPubSub[];
  await Promise.all(redisNodes.map((n) => n.flushed()));
  await Promise.all(redisNodes.map((n) => n.drained()));
}

describePubSubContract('redis cluster (sharded pub/sub)', {
  maxNodes: 3,
  orderAcrossKeys: false,
  start: async (handlers) => {
    const prefix = uniquePrefix('sharded');
    return Promise.all(handlers.map((h) => node(h, prefix)));
  },
  settle,
});

describe('sharded channels', () => {
  it('keeps every channel of a tenant on one slot, and spreads tenants over the shards', async () => {
    const redis = new RedisConnections({ clusterNodes: cluster.nodes }, 'performer:', log);
    opened.push(redis);
    await redis.whenReady(10_000);
    const slotOf = async (channel: string) => Number(await redis.command.call('CLUSTER', 'KEYSLOT', channel));
    const channel = (tenant: string, room: string) => redis.key(`t:${tenant}`, topicKey(tenant, room, false));
    const slots = await Promise.all(['room-1', 'room-2', 'x'.repeat(200)].map((room) => slotOf(channel('acme', room))));
    expect(new Set(slots).size).toBe(1);
    const tenantSlots = await Promise.all(Array.from({ length: 20 }, (_, i) => slotOf(channel(`tenant-${i}`, 'room'))));
    expect(new Set(tenantSlots).size).toBeGreaterThan(10);
  });
});
