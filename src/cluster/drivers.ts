import type { Config } from '../config/index.js';
import type { ClusterMetrics } from '../observability/cluster-metrics.js';
import type { Logger } from '../observability/logger.js';
import { LocalPubSub } from './local.js';
import type { PubSub, PubSubHandler } from './pubsub.js';
import { RedisPubSub } from './redis-pubsub.js';
import { redisTarget, type RedisConnections } from './redis.js';

/** What a driver may need besides the handler: the node's Redis (null when alone) and identity. */
export interface DriverDeps {
  redis: RedisConnections | null;
  /** This node instance's id (ClusterNode.instance). */
  origin: Buffer;
  metrics: ClusterMetrics;
  log: Logger;
}

/** The pub/sub drivers by name (soketi's adapters, centrifuge's brokers): each passes test/cluster's contract. */
const DRIVERS = {
  local: (handler: PubSubHandler) => new LocalPubSub(handler),
  redis: (handler: PubSubHandler, deps: DriverDeps) => {
    if (deps.redis === null) throw new Error('the redis pub/sub driver needs REDIS_URL or REDIS_CLUSTER_NODES');
    return new RedisPubSub(handler, deps.redis, deps.origin, deps.metrics, deps.log);
  },
} satisfies Record<string, (handler: PubSubHandler, deps: DriverDeps) => PubSub>;

export type PubSubDriverName = keyof typeof DRIVERS;

/** The driver this configuration runs on: Redis when one is configured, else every node alone. */
export function pubsubDriverName(config: Config): PubSubDriverName {
  return redisTarget(config) === null ? 'local' : 'redis';
}

/** The configured pub/sub, delivering what reaches this node to `handler` (the channels dispatcher). */
export function createPubSub(config: Config, handler: PubSubHandler, deps: DriverDeps): PubSub {
  return DRIVERS[pubsubDriverName(config)](handler, deps);
}
