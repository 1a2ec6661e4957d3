import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import type { ClusterBus, ClusterMembers } from './bus.js';
import type { Membership } from './membership.js';
import type { RedisConnections } from './redis.js';

/** How long before a refused SUBSCRIBE is sent again. */
const SUBSCRIBE_RETRY_MS = 200;

/**
 * The state layers' bus (presence deltas, ownership announcements, Postgres Changes between owner and subscriber
 * nodes) on a subscriber connection of its own: the pub/sub driver's connection decodes everything it receives as
 * broadcast wire frames. Publishes go through the node's command connection, so one node's messages on a channel
 * reach each other node in order.
 *
 * Its channels are keyed by what they serve (a node's inbox, a tenant's presence), so with Redis Cluster they are
 * sharded (SPUBLISH / SSUBSCRIBE): each message crosses the one shard of its channel's slot, where classic pub/sub
 * would be carried to every node of the Redis Cluster.
 */
export class RedisBus implements ClusterBus {
  private readonly subscriber: Redis | Cluster;
  private readonly handlers = new Map<string, (payload: string) => void>();
  private closed = false;
  /**
   * Publishes not answered yet. On one Redis the last reply would tell of all before it; with Redis Cluster the
   * shards answer independently.
   */
  private readonly inflight = new Set<Promise<unknown>>();
  /** A publish was dropped (Redis away) since settled() was last asked. */
  private lost = false;

  constructor(
    private readonly redis: RedisConnections,
    private readonly log: Logger,
  ) {
    this.subscriber = redis.command.duplicate();
    this.subscriber.on('error', (err: Error) => log.debug({ err: { message: err.message } }, 'cluster bus connection error'));
    this.subscriber.on(redis.sharded ? 'smessage' : 'message', (channel: string, payload: string) => this.handlers.get(channel)?.(payload));
    // A new connection has no subscriptions: every channel is listened to again (SSUBSCRIBE: one slot per command).
    this.subscriber.on('ready', () => {
      for (const channel of this.handlers.keys()) void this.subscribe(channel);
    });
  }

  /**
   * Subscribes a channel that has a handler; settles once Redis confirmed it, or at once while the connection is
   * down (the 'ready' listener subscribes it then). A refusal is tried again: with Redis Cluster a shard's subscriber
   * connection may not be up yet when the cluster is.
   */
  private subscribe(channel: string): Promise<void> {
    if (this.closed || !this.handlers.has(channel) || this.subscriber.status !== 'ready') return Promise.resolve();
    const call = this.redis.sharded ? this.subscriber.ssubscribe(channel) : this.subscriber.subscribe(channel);
    return call.then(
      () => undefined,
      async (err: unknown) => {
        this.log.debug({ err, channel }, 'cluster bus subscription refused; trying again');
        await new Promise((r) => setTimeout(r, SUBSCRIBE_RETRY_MS).unref());
        return this.subscribe(channel);
      },
    );
  }

  /** `<prefix>{n:<node>}:bus`: a node's inbox, on the shard of its own slot. */
  nodeChannel(node: string): string {
    return this.redis.key(`n:${node}`, ':bus');
  }

  /** `<prefix>{t:<tenant>}:bus:<name>`: one tenant's channel, on the shard of the tenant's other channels. */
  tenantChannel(tenant: string, name: string): string {
    return this.redis.key(`t:${tenant}`, `:bus:${name}`);
  }

  publish(channel: string, payload: string): void {
    if (this.closed || this.redis.command.status !== 'ready') {
      this.lost = true;
      return;
    }
    const sent = this.redis.publish(channel, payload);
    sent.catch((err: unknown) => this.log.debug({ err }, 'cluster bus publish failed'));
    this.inflight.add(sent);
    const done = () => void this.inflight.delete(sent);
    sent.then(done, done);
  }

  /** Settles once everything published so far reached Redis; rejects if something was lost; null when nothing waits. */
  settled(): Promise<void> | null {
    if (this.lost) {
      this.lost = false;
      return Promise.reject(new Error('a cluster message was dropped while Redis was away'));
    }
    if (this.inflight.size === 0) return null;
    return Promise.all([...this.inflight]).then(() => undefined);
  }

  async listen(channel: string, handler: (payload: string) => void): Promise<void> {
    this.handlers.set(channel, handler);
    await this.subscribe(channel);
  }

  async unlisten(channel: string): Promise<void> {
    this.handlers.delete(channel);
    if (this.subscriber.status !== 'ready') return;
    await (this.redis.sharded ? this.subscriber.sunsubscribe(channel) : this.subscriber.unsubscribe(channel));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }
}

/** The membership as the state layers see it. */
export function membersView(membership: Membership): ClusterMembers {
  return {
    self: membership.name,
    live: () => membership.members().map((m) => m.name),
    isLive: (name) => membership.isLive(name),
    onChange(listener) {
      let active = true;
      membership.onJoined((m) => active && listener({ joined: [m.name], left: [] }));
      membership.onLeft((m) => active && listener({ joined: [], left: [m.name] }));
      return () => {
        active = false;
      };
    },
  };
}
