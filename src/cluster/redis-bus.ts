import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import type { ClusterBus, ClusterMembers } from './bus.js';
import type { Membership } from './membership.js';
import type { RedisConnections } from './redis.js';

/**
 * The state layers' bus (presence deltas, ownership announcements, Postgres Changes between owner and subscriber
 * nodes) on a subscriber connection of its own: the pub/sub driver's connection decodes everything it receives as
 * broadcast wire frames. Publishes go through the node's command connection, so one node's messages reach each
 * other node in order. Classic pub/sub, which Redis Cluster also carries to every node.
 */
export class RedisBus implements ClusterBus {
  private readonly subscriber: Redis | Cluster;
  private readonly handlers = new Map<string, (payload: string) => void>();
  private closed = false;
  /** The reply of the last publish: Redis answers in order, so once it came, every earlier publish had reached it. */
  private lastPublish: Promise<unknown> | null = null;
  /** A publish was dropped (Redis away) since settled() was last asked. */
  private lost = false;

  constructor(
    private readonly redis: RedisConnections,
    private readonly log: Logger,
  ) {
    this.subscriber = redis.command.duplicate();
    this.subscriber.on('error', (err: Error) => log.debug({ err: { message: err.message } }, 'cluster bus connection error'));
    this.subscriber.on('message', (channel: string, payload: string) => this.handlers.get(channel)?.(payload));
    // A new connection has no subscriptions: every channel is listened to again.
    this.subscriber.on('ready', () => {
      if (this.handlers.size > 0) void this.subscriber.subscribe(...this.handlers.keys()).catch(() => undefined);
    });
  }

  /** `<prefix>{cluster}:<name>`. */
  channel(name: string): string {
    return this.redis.key('cluster', `:${name}`);
  }

  publish(channel: string, payload: string): void {
    if (this.closed || this.redis.command.status !== 'ready') {
      this.lost = true;
      return;
    }
    const sent = this.redis.command.publish(channel, payload);
    sent.catch((err: unknown) => this.log.debug({ err }, 'cluster bus publish failed'));
    this.lastPublish = sent;
  }

  /** Settles once everything published so far reached Redis; rejects if something was lost; null when nothing waits. */
  settled(): Promise<void> | null {
    if (this.lost) {
      this.lost = false;
      return Promise.reject(new Error('a cluster message was dropped while Redis was away'));
    }
    const last = this.lastPublish;
    if (last === null) return null;
    return last.then(() => {
      if (this.lastPublish === last) this.lastPublish = null;
    });
  }

  async listen(channel: string, handler: (payload: string) => void): Promise<void> {
    this.handlers.set(channel, handler);
    if (this.subscriber.status === 'ready') await this.subscriber.subscribe(channel);
  }

  async unlisten(channel: string): Promise<void> {
    this.handlers.delete(channel);
    if (this.subscriber.status === 'ready') await this.subscriber.unsubscribe(channel);
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
