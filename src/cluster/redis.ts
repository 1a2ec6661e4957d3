import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';

/** The longest wait between two reconnect attempts (5 s plus the most jitter adds). */
export const MAX_RECONNECT_DELAY_MS = 6250;

/** Reconnect delays: 100 ms doubling to 5 s, with jitter so a fleet does not reconnect in step after a Redis restart. */
export function reconnectDelayMs(attempt: number): number {
  const base = Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** Where this node's Redis is: a single server (REDIS_URL) or Redis Cluster seeds (REDIS_CLUSTER_NODES). */
export type RedisTarget = { url: string } | { clusterNodes: { host: string; port: number }[] };

/** The Redis this configuration clusters through, or null when the node runs alone. */
export function redisTarget(config: Config): RedisTarget | null {
  if (config.redisClusterNodes.length > 0) return { clusterNodes: config.redisClusterNodes };
  if (config.redisUrl !== null) return { url: config.redisUrl };
  return null;
}

type Client = Redis | Cluster;

/**
 * The one place cluster parts get Redis from: a command connection (publishes, heartbeats, counters; not
 * auto-pipelined: the pub/sub driver batches its publishes per loop turn itself) and a subscriber connection
 * (pub/sub), both reconnecting with backoff for ever. Commands never queue while Redis is away (enableOfflineQueue
 * off): the hot path drops cross-node traffic instead of piling it up, and every periodic task simply tries again on
 * its next tick. With Redis Cluster both roles are one ioredis Cluster, which keeps
 * sharded subscriber connections of its own per primary.
 *
 * The subscriber connection is shared: each part subscribes its own channels (under its own tag), reads only those
 * off the `messageBuffer` / `smessageBuffer` events, and subscribes them again in an `onReady` listener, since a new
 * connection has none (ioredis' autoResubscribe is off, so what was subscribed during an outage is not lost track of).
 *
 * Key layout: `<prefix>{<tag>}...`. The hash tag keeps what must meet in one command on one Redis Cluster slot:
 * `{cluster}` for membership, `{t:<tenant>}` for a tenant's channels and counters (so a tenant's traffic stays on
 * one shard).
 */
export class RedisConnections {
  readonly command: Client;
  readonly subscriber: Client;
  /** Redis Cluster: pub/sub goes through SPUBLISH / SSUBSCRIBE. */
  readonly sharded: boolean;
  private readonly readyListeners: (() => void)[] = [];
  private closed = false;
  private downSince: number | null = null;

  constructor(
    target: RedisTarget,
    readonly prefix: string,
    private readonly log: Logger,
  ) {
    const base: RedisOptions = {
      enableOfflineQueue: false,
      autoResubscribe: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 5000,
      retryStrategy: (times) => (this.closed ? null : reconnectDelayMs(times)),
    };
    if ('url' in target) {
      this.sharded = false;
      // Not auto-pipelined (a Pipeline and its promises per batch): RedisPubSub corks its publishes of a turn itself.
      this.command = new Redis(target.url, { ...base, connectionName: 'performer-command' });
      this.subscriber = new Redis(target.url, { ...base, connectionName: 'performer-subscriber' });
    } else {
      this.sharded = true;
      const options: ClusterOptions = {
        enableOfflineQueue: false,
        shardedSubscribers: true,
        clusterRetryStrategy: (times) => (this.closed ? null : reconnectDelayMs(times)),
        redisOptions: { ...base },
      };
      this.command = new Cluster(target.clusterNodes, options);
      this.subscriber = this.command;
    }
    for (const client of new Set([this.command, this.subscriber])) this.watch(client);
  }

  /** A key of this cluster's namespace: `<prefix>{<tag>}<rest>`. */
  key(tag: string, rest: string): string {
    return `${this.prefix}{${tag}}${rest}`;
  }

  /** Both connections are up. */
  get ready(): boolean {
    return this.command.status === 'ready' && this.subscriber.status === 'ready';
  }

  /** Resolves once both connections are up, or after `timeoutMs` (false then): a start never hangs on Redis. */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!this.ready) return;
        done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const clients = [...new Set([this.command, this.subscriber])];
      const done = (value: boolean) => {
        clearTimeout(timer);
        for (const c of clients) c.off('ready', check);
        resolve(value);
      };
      for (const c of clients) c.on('ready', check);
    });
  }

  /** Called each time the subscriber connection is (again) ready: interest and membership are announced afresh. */
  onReady(listener: () => void): void {
    this.readyListeners.push(listener);
    if (this.subscriber.status === 'ready') listener();
  }

  /** PUBLISH on one Redis, SPUBLISH (the shard of the channel's slot) on Redis Cluster; resolves to the receivers. */
  publish(channel: string, payload: string | Buffer): Promise<unknown> {
    return this.sharded ? this.command.spublish(channel, payload) : this.command.publish(channel, payload);
  }

  /** Milliseconds of one PING on the command connection; rejects while Redis is away. */
  async roundTrip(): Promise<number> {
    const start = performance.now();
    await this.command.ping();
    return performance.now() - start;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...new Set([this.command, this.subscriber])].map((c) => c.quit().catch(() => c.disconnect())));
  }

  private watch(client: Client): void {
    // Logged once per outage, not once per reconnect attempt.
    client.on('error', (err: Error) => {
      if (this.downSince !== null || this.closed) return;
      this.downSince = Date.now();
      this.log.warn({ err: { message: err.message }, error_code: 'RedisUnavailable' }, 'Redis unreachable: serving local clients only, reconnecting');
    });
    client.on('ready', () => {
      if (this.downSince !== null) this.log.info({ down_ms: Date.now() - this.downSince }, 'Redis reachable again');
      this.downSince = null;
      if (client === this.subscriber) for (const listener of this.readyListeners) listener();
    });
  }
}
