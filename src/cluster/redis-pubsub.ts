import { Redis } from 'ioredis';
import type { ClusterMetrics } from '../observability/cluster-metrics.js';
import type { Logger } from '../observability/logger.js';
import type { ConnectionId, PubSubMessage } from '../shared/messages.js';
import type { PubSub, PubSubHandler } from './pubsub.js';
import type { RedisConnections } from './redis.js';
import { decodeWire, encodeWire, isFromOrigin, WireDecodeError } from './wire.js';

/** The longest a join waits for its Redis subscription to be confirmed (a slow Redis must not stall joins). */
const INTEREST_WAIT_MS = 1000;

function startsWith(buf: Buffer, head: Buffer): boolean {
  return buf.length >= head.length && buf.compare(head, 0, head.length, 0, head.length) === 0;
}

/** First byte of a drain probe (drained()). */
const DRAIN_MARK = Buffer.from([0xff]);

/** Channels per SUBSCRIBE command when interest is announced again after a reconnect. */
const RESUBSCRIBE_CHUNK = 1000;

/**
 * Pub/sub across nodes through Redis. Local delivery is synchronous and first, as with the local driver; the message
 * then crosses Redis once, on the channel of its topic key, which a node subscribes only while it has local
 * subscribers of that key. Redis hands it once to each such node, whose dispatcher encodes it once per serializer:
 * traffic between nodes grows with the nodes that have subscribers, never with sockets.
 *
 * With Redis Cluster the channels are sharded (SPUBLISH / SSUBSCRIBE) and carry the tenant as hash tag, so a tenant's
 * traffic stays on one shard. When Redis is away, publishes reach local subscribers only (the cross-node copy is
 * dropped and counted, never queued); on reconnect the whole interest is subscribed again.
 *
 * Order: one node's publishes reach every other node in publish order (one command connection, one subscriber
 * connection each); with Redis Cluster, in order per topic key only (ioredis may carry the sharded subscriptions of
 * one shard on more than one connection).
 */
export class RedisPubSub implements PubSub {
  /** Topic keys with local subscribers, counted (subscribe/unsubscribe come in pairs per key). */
  private readonly interest = new Map<string, number>();
  private readonly pending = new Set<Promise<unknown>>();
  /** Publishes not yet written to Redis: channel, bytes, channel, bytes... (flushOut). */
  private outbox: (string | Buffer)[] = [];
  private flushScheduled = false;
  /** Publishes queued or sent to Redis and not yet answered, and who waits for them to be (flushed()). */
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  /** Redis Cluster: drain probes (drained()), by token, and the channels they use (one per shard). */
  private readonly drainWaiters = new Map<string, () => void>();
  private drainChannels: Promise<string[]> | null = null;
  /** Keys whose SUBSCRIBE is on its way, until Redis answers it. */
  private readonly subscribing = new Map<string, Promise<void>>();
  private closed = false;

  constructor(
    private readonly handler: PubSubHandler,
    private readonly redis: RedisConnections,
    /** This node instance's id: its own messages come back when it subscribes their channel, and are skipped. */
    private readonly origin: Buffer,
    private readonly metrics: ClusterMetrics,
    private readonly log: Logger,
  ) {
    const event = redis.sharded ? 'smessageBuffer' : 'messageBuffer';
    // The subscriber connection is shared with other cluster parts (presence, ownership): only this driver's channels.
    const ours = Buffer.from(redis.key('t:', '').slice(0, -1));
    const drains = Buffer.from(redis.key('drain-', '').slice(0, -1));
    redis.subscriber.on(event, (channel: Buffer, message: Buffer) => {
      if (startsWith(channel, ours)) this.received(message);
      else if (startsWith(channel, drains)) this.drainReceived(message);
    });
    redis.onReady(() => this.resubscribeAll());
  }

  publish(msg: PubSubMessage, exclude: ConnectionId | null): void {
    if (this.closed) return;
    if (this.redis.command.status !== 'ready') {
      this.metrics.dropped.inc({ reason: 'redis_unavailable' });
      this.handler.deliver(msg, exclude);
      return;
    }
    // The copy for other nodes is queued and written with the others of this loop turn in one write (flushOut, an
    // immediate): Redis then hands a receiving node the turn's messages in one read, and that node's fan-out writes
    // them to each socket in one write, as a single node does with the messages it reads at once (written one by
    // one, they reached the other node one by one, costing a socket write per message and subscriber there). For a
    // publish made while handling socket input (client frames, Postgres) the write still leaves before the local
    // fan-out: uWS writes that out when it drains its topics, just before the loop next polls.
    this.outbox.push(this.channel(msg.tenantId, msg.key), encodeWire(this.origin, msg, exclude));
    this.inflight++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushOut);
    }
    this.handler.deliver(msg, exclude);
  }

  /**
   * Writes the queued publishes (channel, bytes pairs) in order, corked into one write on a single Redis (with Redis
   * Cluster each goes to its shard's connection as ioredis routes it).
   */
  private readonly flushOut = (): void => {
    this.flushScheduled = false;
    const out = this.outbox;
    if (out.length === 0) return;
    this.outbox = [];
    const command = this.redis.command;
    const count = out.length / 2;
    if (this.closed || command.status !== 'ready') {
      this.metrics.dropped.inc({ reason: 'redis_unavailable' }, count);
      this.settle(count);
      return;
    }
    this.metrics.relayedOut.inc(count);
    const stream = command instanceof Redis ? command.stream : null;
    stream?.cork();
    for (let i = 0; i < out.length; i += 2) {
      const channel = out[i] as string;
      const bytes = out[i + 1] as Buffer;
      this.redis.publish(channel, bytes).then(this.published, this.publishFailed);
    }
    stream?.uncork();
  };

  private readonly published = (receivers: unknown): void => {
    this.metrics.redisReceivers.inc(Number(receivers));
    this.settle(1);
  };

  private readonly publishFailed = (): void => {
    this.metrics.dropped.inc({ reason: 'redis_unavailable' });
    this.settle(1);
  };

  private settle(count: number): void {
    this.inflight -= count;
    if (this.inflight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  publishLocal(msg: PubSubMessage, exclude: ConnectionId | null): void {
    if (!this.closed) this.handler.deliver(msg, exclude);
  }

  changesRoom(): Promise<void> | null {
    return this.handler.changesRoom?.() ?? null;
  }

  changesDrained(): Promise<void> | null {
    return this.handler.changesDrained?.() ?? null;
  }

  subscribe(key: string): void {
    const count = this.interest.get(key) ?? 0;
    this.interest.set(key, count + 1);
    if (count > 0) return;
    const sent = this.send('subscribe', [this.channelOfKey(key)]);
    if (sent === null) return;
    this.subscribing.set(key, sent);
    void sent.finally(() => {
      if (this.subscribing.get(key) === sent) this.subscribing.delete(key);
    });
  }

  interestReady(key: string): Promise<void> | null {
    const sent = this.subscribing.get(key);
    if (sent === undefined) return null;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, INTEREST_WAIT_MS);
      void sent.finally(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  unsubscribe(key: string): void {
    const count = this.interest.get(key);
    if (count === undefined) return;
    if (count > 1) {
      this.interest.set(key, count - 1);
      return;
    }
    this.interest.delete(key);
    this.subscribing.delete(key);
    this.send('unsubscribe', [this.channelOfKey(key)]);
  }

  /** Topic keys this node has subscribers of (what it is subscribed to in Redis while connected). */
  keys(): string[] {
    return [...this.interest.keys()];
  }

  /**
   * Resolves once every SUBSCRIBE / UNSUBSCRIBE sent so far is answered and everything this node published has
   * reached Redis (which hands a PUBLISH to subscribers before it replies). Tests and benches wait on it.
   */
  async flushed(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    if (this.inflight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Resolves once what Redis pushed to this node before the call has been handed to the dispatcher: a PING on the
   * subscriber connection, whose answer comes after the messages before it; with Redis Cluster, a probe message
   * through each shard (each shard's messages come in order on one sharded subscriber connection).
   */
  async drained(): Promise<void> {
    if (!this.redis.sharded) {
      await this.redis.subscriber.ping().catch(() => undefined);
      return;
    }
    const channels = await (this.drainChannels ??= this.shardDrainChannels());
    await Promise.all(
      channels.map(async (channel) => {
        const token = `${Math.random()}`;
        const received = new Promise<void>((resolve) => this.drainWaiters.set(token, resolve));
        await this.redis.command.spublish(channel, Buffer.concat([DRAIN_MARK, Buffer.from(token)]));
        await received;
      }),
    );
  }

  /** One channel per shard, each subscribed by this node: tags `drain-<i>` tried until every primary has one. */
  private async shardDrainChannels(): Promise<string[]> {
    const command = this.redis.command;
    const ranges = ((await command.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][]).map(([from, to, primary]) => ({ from, to, primary: primary[2] }));
    const byPrimary = new Map<string, string>();
    const primaries = new Set(ranges.map((r) => r.primary));
    for (let i = 0; byPrimary.size < primaries.size && i < 10_000; i++) {
      const channel = this.redis.key(`drain-${i}`, `:drain:${this.origin.toString('hex')}`);
      const slot = Number(await command.call('CLUSTER', 'KEYSLOT', channel));
      const owner = ranges.find((r) => slot >= r.from && slot <= r.to)?.primary;
      if (owner !== undefined && !byPrimary.has(owner)) byPrimary.set(owner, channel);
    }
    const channels = [...byPrimary.values()];
    for (const channel of channels) await this.redis.subscriber.ssubscribe(channel);
    return channels;
  }

  async close(): Promise<void> {
    // Publishes of this turn still go out: they were made before the close.
    this.flushOut();
    this.closed = true;
    this.interest.clear();
  }

  /** `<prefix>{t:<tenant>}<key>`: the tenant as hash tag, so its traffic stays on one Redis Cluster shard. */
  private channel(tenantId: string, key: string): string {
    return this.redis.key(`t:${tenantId}`, key);
  }

  private channelOfKey(key: string): string {
    const bar = key.indexOf('|');
    return this.channel(bar === -1 ? key : key.slice(0, bar), key);
  }

  /** Sends the change; resolves once Redis answered (or refused) it. Null when not sent: Redis is away. */
  private send(op: 'subscribe' | 'unsubscribe', channels: string[]): Promise<void> | null {
    if (this.closed || this.redis.subscriber.status !== 'ready') return null; // announced whole on the next ready
    const sub = this.redis.subscriber;
    const sharded = this.redis.sharded;
    const call =
      op === 'subscribe' ? (sharded ? sub.ssubscribe(...channels) : sub.subscribe(...channels)) : sharded ? sub.sunsubscribe(...channels) : sub.unsubscribe(...channels);
    const tracked: Promise<void> = call.then(
      () => undefined,
      (err: unknown) => this.log.warn({ err, error_code: 'RedisSubscribeFailed', op }, 'Redis subscription change failed; retried on reconnect'),
    );
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
    return tracked;
  }

  /** A (new) subscriber connection: it has no subscriptions, so the whole interest is announced again. */
  private resubscribeAll(): void {
    const channels = [...this.interest.keys()].map((key) => this.channelOfKey(key));
    // SSUBSCRIBE takes channels of one slot only: one command each (auto-pipelined by ioredis).
    const chunk = this.redis.sharded ? 1 : RESUBSCRIBE_CHUNK;
    for (let i = 0; i < channels.length; i += chunk) this.send('subscribe', channels.slice(i, i + chunk));
  }

  private drainReceived(bytes: Buffer): void {
    const token = bytes.subarray(DRAIN_MARK.length).toString();
    this.drainWaiters.get(token)?.();
    this.drainWaiters.delete(token);
  }

  private received(bytes: Buffer): void {
    if (this.closed || isFromOrigin(bytes, this.origin)) return;
    let decoded;
    try {
      decoded = decodeWire(bytes);
    } catch (err) {
      if (!(err instanceof WireDecodeError)) throw err;
      this.metrics.dropped.inc({ reason: 'undecodable' });
      return;
    }
    this.metrics.relayedIn.inc();
    this.handler.deliver(decoded.msg, decoded.exclude);
  }
}
