import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Seconds: a Redis PING on a LAN is well under a millisecond; a slow or distant Redis shows in the upper buckets. */
const ROUND_TRIP_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/**
 * The cluster's families (issue 15): membership, Redis health, cross-node traffic, tenant ownership. Present on a
 * node that runs alone too (members = 1, nothing relayed), so dashboards need no second shape.
 */
export class ClusterMetrics {
  /** Set by the membership: live members as this node sees them, read at scrape time. */
  memberCount: () => number = () => 1;
  /** Set by the Redis connections: 1 while both connections are up, 0 while away, absent (1) when running alone. */
  redisUp: () => number = () => 1;

  readonly members: Gauge;
  readonly redisConnected: Gauge;
  readonly redisRoundTrip: Histogram;
  /** Messages this node published to Redis (`out`) and received from other nodes (`in`). */
  readonly relayed: Counter;
  readonly relayedOut: Counter.Internal;
  readonly relayedIn: Counter.Internal;
  /** Sum of Redis' PUBLISH replies: node subscriptions that received this node's messages (one per node with interest). */
  readonly redisReceivers: Counter;
  /** Cross-node messages lost: Redis away when published, or bytes that did not decode. */
  readonly dropped: Counter;
  /** Tenant replication ownership acquired, released or lost by this node (incremented by the ownership code). */
  readonly ownershipChanges: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    const members: Gauge = new Gauge({
      name: 'performer_cluster_members',
      help: 'Live cluster members as this node sees them (1 when running alone)',
      registers,
      collect: () => members.set(this.memberCount()),
    });
    this.members = members;
    const redisConnected: Gauge = new Gauge({
      name: 'performer_cluster_redis_connected',
      help: 'Whether this node reaches Redis (1) or serves its local clients only (0)',
      registers,
      collect: () => redisConnected.set(this.redisUp()),
    });
    this.redisConnected = redisConnected;
    this.redisRoundTrip = new Histogram({
      name: 'performer_cluster_redis_round_trip_seconds',
      help: 'Seconds of a Redis PING from this node, measured at each heartbeat',
      buckets: ROUND_TRIP_BUCKETS,
      registers,
    });
    this.relayed = new Counter({
      name: 'performer_cluster_messages_relayed_total',
      help: 'Messages sent to other nodes through Redis (direction="out") and received from them (direction="in")',
      labelNames: ['direction'],
      registers,
    });
    this.relayedOut = this.relayed.labels({ direction: 'out' });
    this.relayedIn = this.relayed.labels({ direction: 'in' });
    this.redisReceivers = new Counter({
      name: 'performer_cluster_redis_receivers_total',
      help: "Node subscriptions Redis delivered this node's messages to (the sum of PUBLISH replies; the publisher itself included when it has subscribers)",
      registers,
    });
    this.dropped = new Counter({
      name: 'performer_cluster_messages_dropped_total',
      help: 'Cross-node messages lost, by reason (redis_unavailable, undecodable)',
      labelNames: ['reason'],
      registers,
    });
    this.ownershipChanges = new Counter({
      name: 'performer_cluster_ownership_changes_total',
      help: 'Tenant replication ownership changes on this node, by tenant and event (acquired, released, lost)',
      labelNames: ['tenant', 'event'],
      registers,
    });
  }
}
