import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import type { PubSub, PubSubHandler } from '../../src/cluster/pubsub.js';
import { RedisPubSub } from '../../src/cluster/redis-pubsub.js';
import { RedisConnections } from '../../src/cluster/redis.js';
import { ClusterMetrics } from '../../src/observability/cluster-metrics.js';
import { createLogger } from '../../src/observability/logger.js';
import { topicKey } from '../../src/shared/topic-keys.js';
import { SHARED_REDIS_URL, uniquePrefix } from '../support/redis.js';
import { describePubSubContract } from './pubsub-contract.js';

const log = createLogger('silent');
const opened: RedisConnections[] = [];

/** One node: its own connections to the shared Redis, all nodes of a test under one fresh prefix. */
async function node(handler: PubSubHandler, prefix: string, metrics = new ClusterMetrics(new Registry())) {
  const redis = new RedisConnections({ url: SHARED_REDIS_URL }, prefix, log);
  opened.push(redis);
  await redis.whenReady(5000);
  const origin = Buffer.from(Array.from({ length: 8 }, () => Math.floor(Math.random() * 256)));
  return new RedisPubSub(handler, redis, origin, metrics, log);
}

async function settle(nodes: readonly PubSub[]): Promise<void> {
  const redisNodes = nodes as readonly RedisPubSub[];
  await Promise.all(redisNodes.map((n) => n.flushed()));
  await Promise.all(redisNodes.map((n) => n.drained()));
}

afterAll(async () => {
  await Promise.all(opened.map((r) => r.close()));
});

describePubSubContract('redis', {
  maxNodes: 3,
  start: async (handlers) => {
    const prefix = uniquePrefix('contract');
    return Promise.all(handlers.map((h) => node(h, prefix)));
  },
  settle,
});

describe('redis pub/sub: traffic between nodes', () => {
  it('crosses Redis once per node with subscribers, whatever the number of keys subscribed there', async () => {
    const prefix = uniquePrefix('once');
    const metrics = [0, 1, 2].map(() => new ClusterMetrics(new Registry()));
    const got: number[] = [0, 0, 0];
    const nodes = await Promise.all([0, 1, 2].map((i) => node({ deliver: () => (got[i] = (got[i] as number) + 1) }, prefix, metrics[i])));
    const key = topicKey('t1', 'room', false);
    nodes[1]!.subscribe(key);
    nodes[2]!.subscribe(key);
    nodes[2]!.subscribe(key); // a second local subscriber adds no Redis subscription
    await settle(nodes);
    for (let i = 0; i < 10; i++) nodes[0]!.publish({ tenantId: 't1', key, subTopic: 'room', env: { type: 'json', event: 'e', payloadJson: '{}' } }, null);
    await settle(nodes);
    expect(got).toEqual([10, 10, 10]);
    const value = async (m: ClusterMetrics) => (await m.redisReceivers.get()).values[0]?.value ?? 0;
    expect(await value(metrics[0]!)).toBe(20); // 2 nodes with subscribers, per broadcast
    expect((await metrics[1]!.relayed.get()).values.find((v) => v.labels.direction === 'in')?.value).toBe(10);
    nodes[2]!.unsubscribe(key);
    await settle(nodes);
    nodes[0]!.publish({ tenantId: 't1', key, subTopic: 'room', env: { type: 'json', event: 'e', payloadJson: '{}' } }, null);
    await settle(nodes);
    expect(got).toEqual([11, 11, 11]); // node 2 still had one subscriber
    await Promise.all(nodes.map((n) => n.close()));
  });
});

describe('redis pub/sub: interest confirmation', () => {
  it('has a join wait for the SUBSCRIBE of a new key, and for nothing once it is confirmed or for a key it already had', async () => {
    const prefix = uniquePrefix('ready');
    const a = await node({ deliver: () => undefined }, prefix);
    const key = topicKey('t1', 'room', false);
    a.subscribe(key);
    const waiting = a.interestReady(key);
    expect(waiting).not.toBeNull();
    await waiting;
    expect(a.interestReady(key)).toBeNull();
    a.subscribe(key);
    expect(a.interestReady(key)).toBeNull();
    const redis = new RedisConnections({ url: SHARED_REDIS_URL }, prefix, log);
    opened.push(redis);
    await redis.whenReady(5000);
    expect(await redis.command.pubsub('NUMSUB', redis.key('t:t1', key))).toEqual([redis.key('t:t1', key), 1]);
    await a.close();
  });
});

describe('redis pub/sub: a shared subscriber connection', () => {
  it('leaves the channels of other cluster parts alone: not delivered, not counted as undecodable', async () => {
    const prefix = uniquePrefix('shared');
    const metrics = new ClusterMetrics(new Registry());
    const got: string[] = [];
    const a = await node({ deliver: (m) => got.push(m.subTopic) }, prefix, metrics);
    const other = opened.at(-1)!;
    const foreign = other.key('presence', ':deltas');
    await other.subscriber.subscribe(foreign);
    const publisher = new RedisConnections({ url: SHARED_REDIS_URL }, prefix, log);
    opened.push(publisher);
    await publisher.whenReady(5000);
    expect(await publisher.command.publish(foreign, Buffer.from([1, 2, 3]))).toBe(1);
    await a.drained();
    expect(got).toEqual([]);
    expect((await metrics.dropped.get()).values).toEqual([]);
    await a.close();
  });
});
