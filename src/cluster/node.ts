import { randomBytes } from 'node:crypto';
import type { Config } from '../config/index.js';
import type { ClusterMetrics } from '../observability/cluster-metrics.js';
import type { Logger } from '../observability/logger.js';
import { LoadSync, type LoadedTenant } from './load-sync.js';
import { Membership, type SelfReport } from './membership.js';
import { RedisConnections, redisTarget } from './redis.js';
import { ORIGIN_BYTES } from './wire.js';

/** What the rest of the server sees of this node's place in the cluster. */
export interface ClusterNode {
  /** Null when the node runs alone (no REDIS_URL / REDIS_CLUSTER_NODES). */
  readonly redis: RedisConnections | null;
  /** Random per process: names this node instance on the wire and in membership. */
  readonly instance: Buffer;
  readonly membership: Membership;
  /** Announces this node, starts the heartbeats and the limit counters' sync. */
  start(): Promise<void>;
  /** One round of the cluster-wide limit counters now (write this node's, read the others'); tests keep in step with it. */
  syncLoad(): Promise<void>;
  /** Leaves the membership and closes Redis (after pub/sub closed). */
  stop(): Promise<void>;
}

export interface ClusterNodeOptions {
  report: SelfReport;
  /** The tenants running on this node, for the cluster-wide limit counters. */
  tenants: () => readonly LoadedTenant[];
}

/** This node's cluster parts: Redis connections, membership and the load sync when clustered, membership of one otherwise. */
export function createClusterNode(config: Config, log: Logger, metrics: ClusterMetrics, options: ClusterNodeOptions): ClusterNode {
  const target = redisTarget(config);
  const clusterLog = log.child({ node: config.nodeName });
  const redis = target === null ? null : new RedisConnections(target, config.redisKeyPrefix, clusterLog);
  const instance = randomBytes(ORIGIN_BYTES);
  const membership = new Membership(
    redis,
    { name: config.nodeName, region: config.nodeRegion, instance: instance.toString('hex'), heartbeatMs: config.clusterHeartbeatMs, ttlMs: config.clusterMemberTtlMs },
    options.report,
    metrics,
    clusterLog,
  );
  const loadSync = redis === null ? null : new LoadSync(redis, membership, options.tenants, config.clusterLimitsSyncMs, clusterLog);
  if (redis !== null) metrics.redisUp = () => (redis.ready ? 1 : 0);
  return {
    redis,
    instance,
    membership,
    async start() {
      // Up to a few seconds for Redis, so a node starting with the cluster joins it before serving; past that it
      // serves alone and joins when Redis answers.
      if (redis !== null && !(await redis.whenReady(5000))) clusterLog.warn({ error_code: 'RedisUnavailable' }, 'Redis not reachable at start: serving local clients until it is');
      await membership.start();
      loadSync?.start();
    },
    syncLoad: () => loadSync?.sync() ?? Promise.resolve(),
    async stop() {
      loadSync?.stop();
      await membership.stop();
      await redis?.close();
    },
  };
}
