import { describe, expect, it } from 'vitest';
import { createPubSub, pubsubDriverName } from '../../src/cluster/drivers.js';
import { LocalPubSub } from '../../src/cluster/local.js';
import { loadConfig } from '../../src/config/index.js';
import { ClusterMetrics } from '../../src/observability/cluster-metrics.js';
import { createLogger } from '../../src/observability/logger.js';
import { Registry } from 'prom-client';
import { describePubSubContract } from './pubsub-contract.js';

const deps = () => ({ redis: null, origin: Buffer.alloc(8), metrics: new ClusterMetrics(new Registry()), log: createLogger('silent') });

describePubSubContract('local', {
  maxNodes: 1,
  start: async (handlers) => handlers.map((h) => createPubSub(loadConfig({}), h, deps())),
  settle: async () => undefined,
});

describe('pub/sub driver choice', () => {
  it('runs alone without Redis, and on Redis with REDIS_URL or REDIS_CLUSTER_NODES', () => {
    expect(pubsubDriverName(loadConfig({}))).toBe('local');
    expect(pubsubDriverName(loadConfig({ REDIS_URL: 'redis://cache:6379' }))).toBe('redis');
    expect(pubsubDriverName(loadConfig({ REDIS_CLUSTER_NODES: 'a:7000,b:7001' }))).toBe('redis');
    expect(createPubSub(loadConfig({}), { deliver: () => undefined }, deps())).toBeInstanceOf(LocalPubSub);
    expect(() => createPubSub(loadConfig({ REDIS_URL: 'redis://cache:6379' }), { deliver: () => undefined }, deps())).toThrow(/REDIS_URL/);
  });
});
