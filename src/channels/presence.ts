/**
 * Presence on one joined channel: the `presence` event (track/untrack) with its limits and replies, the
 * presence_state push after join, and the removal of the channel's entries when it closes.
 *
 * A channel "receives" presence (presence_state, presence_diff) when presence is enabled for it: by the client's
 * `config.presence.enabled`, the tenant's `presence_enabled`, or its first track; and only while it may read
 * presence (private channels, see Channel.canReadPresence). Receiving = subscribed to the presence topic key.
 */
import { randomUUID } from 'node:crypto';
import { PresenceChanges, type PresenceMeta } from '../presence/crdt.js';
import { presenceTopic } from '../presence/tenant-presence.js';
import { presenceTopicKey } from '../shared/topic-keys.js';
import { payloadLimitBytes } from '../tenants/limits.js';
import type { ChannelPort, CloseReason } from './ports.js';
import type { PhoenixMessage } from './protocol/index.js';

/** Replies and shutdown texts exactly as upstream words them. */
export const PresenceError = {
  notAMap: 'Presence track payload must be a map',
  clientRateLimited: 'Client presence rate limit exceeded',
  tenantRateLimited: 'Too many presence messages per second',
  trackTooLarge: 'Track message size exceeded',
} as const;

type Step = void | Promise<void>;

// Most joined channels never use presence: its keys and names are made on first use, not per join (they are
// composed strings, hundreds of bytes per channel when made eagerly).
export class ChannelPresence {
  private keyValue: string | null;
  private pidValue: string | null = null;
  private topicValue: string | null = null;
  private fanoutKeyValue: string | null = null;
  private receiving = false;
  /** Arrival times of the presence messages inside the client window, oldest first. */
  private readonly calls: number[] = [];
  /** Set while a permission check is pending: later presence messages wait for it, so they keep their order. */
  private pending: Promise<void> | null = null;

  constructor(
    private readonly channel: ChannelPort,
    key: string | null,
    private readonly enabledAtJoin: boolean,
  ) {
    this.keyValue = key;
  }

  /** The presence key of this channel's track: `config.presence.key`, else a random UUID. */
  get key(): string {
    return (this.keyValue ??= randomUUID());
  }

  /** Owner of this channel's entries in the replica; unique per live channel on this node. */
  get pid(): string {
    return (this.pidValue ??= `${this.channel.conn.id}:${this.channel.joinRef ?? ''}`);
  }

  /** The room in the tenant's replica. */
  get topic(): string {
    return (this.topicValue ??= presenceTopic(this.channel.isPrivate, this.channel.subTopic));
  }

  private get fanoutKey(): string {
    return (this.fanoutKeyValue ??= presenceTopicKey(this.channel.conn.tenant.id, this.channel.subTopic, this.channel.isPrivate));
  }

  /** After the join reply: presence_state, when presence is enabled for the channel and readable. */
  afterJoin(): void {
    if (!this.enabledAtJoin) return;
    this.serially(() => {
      const read = this.channel.canReadPresence();
      if (read instanceof Promise) return read.then((ok) => this.startWithState(ok));
      this.startWithState(read);
    });
  }

  /** A `presence` push: `{"type":"presence","event":"track"|"untrack","payload":{...}}`. */
  handle(msg: PhoenixMessage): void {
    const { channel } = this;
    const { conn } = channel;
    const settings = conn.tenant.settings;
    const max = settings.maxClientPresenceEventsPerWindow ?? conn.ctx.config.clientPresenceMaxCalls;
    const windowMs = settings.clientPresenceWindowMs ?? conn.ctx.config.clientPresenceWindowMs;
    // Counted on arrival, whatever the message turns out to be: the limiter protects the server from the client.
    if (!this.allowCall(Date.now(), max, windowMs)) return channel.shutdown(PresenceError.clientRateLimited);
    const body = isMap(msg.payload) ? msg.payload : {};
    const event = typeof body.event === 'string' ? body.event.toLowerCase() : null;
    const ref = msg.ref;
    if (event === 'track') {
      const meta = body.payload === undefined ? {} : body.payload;
      this.serially(() => this.track(ref, meta));
    } else if (event === 'untrack') {
      this.serially(() => this.untrack(ref));
    } else {
      this.serially(() => this.reply(ref, 'error', {}));
    }
  }

  /** The channel is closing: stop receiving and remove its entries (the others get a leave diff at once). */
  close(reason: CloseReason): void {
    const { conn } = this.channel;
    // A closed socket has left every uWS topic already.
    if (this.receiving && reason !== 'socket_closed') conn.ctx.fanout.unsubscribe(conn, this.fanoutKey);
    this.receiving = false;
    // No pid yet: this channel never tracked anything.
    if (this.pidValue === null) return;
    const gone = conn.tenant.presence.untrackAll(this.pidValue);
    if (gone.length > 0) conn.tenant.presence.publish(conn.ctx.pubsub, new PresenceChanges().addLeaves(gone));
  }

  // ---- steps ------------------------------------------------------------------------------------------------------

  private track(ref: string | null, meta: unknown): Step {
    const read = this.channel.canReadPresence();
    const write = this.channel.canWritePresence();
    if (read instanceof Promise || write instanceof Promise) {
      return Promise.all([read, write]).then(([r, w]) => this.applyTrack(ref, meta, r, w));
    }
    this.applyTrack(ref, meta, read, write);
  }

  private applyTrack(ref: string | null, meta: unknown, canRead: boolean, canWrite: boolean): void {
    const { channel } = this;
    const { conn } = channel;
    const tenant = conn.tenant;
    if (!canWrite) return this.reply(ref, 'error', {});
    if (!isMap(meta)) return this.reply(ref, 'error', { reason: PresenceError.notAMap });
    if (tenant.presenceEvents.rate > tenant.settings.limits.maxPresenceEventsPerSecond) {
      return channel.shutdown(PresenceError.tenantRateLimited);
    }
    const size = Buffer.byteLength(JSON.stringify(meta));
    conn.ctx.metrics.payloadSize.observe({ tenant: tenant.id, message_type: 'presence' }, size);
    if (size > payloadLimitBytes(tenant.settings.limits.maxPayloadSizeInKb)) {
      return channel.shutdown(PresenceError.trackTooLarge);
    }
    // A track turns presence on for a channel that did not ask for it (no presence_state then, as upstream).
    if (canRead) this.startReceiving();
    const result = tenant.presence.track(this.topic, this.pid, this.key, meta as PresenceMeta);
    this.reply(ref, 'ok', {});
    if (result.changed) tenant.presence.publish(conn.ctx.pubsub, new PresenceChanges().addTrack(result));
  }

  private untrack(ref: string | null): void {
    const { conn } = this.channel;
    const gone = conn.tenant.presence.untrack(this.topic, this.pid, this.key);
    this.reply(ref, 'ok', {});
    if (gone !== null) conn.tenant.presence.publish(conn.ctx.pubsub, new PresenceChanges().leave(gone));
  }

  private startWithState(canRead: boolean): void {
    const { channel } = this;
    const tenant = channel.conn.tenant;
    if (!canRead || this.receiving) return;
    if (tenant.presenceEvents.rate > tenant.settings.limits.maxPresenceEventsPerSecond) {
      return channel.shutdown(PresenceError.tenantRateLimited);
    }
    // Subscribing and listing in the same tick: no diff can fall between the state and the first diff received.
    this.startReceiving();
    channel.push('presence_state', tenant.presence.stateJson(this.topic));
    tenant.presenceEvents.add(1);
    channel.conn.ctx.metrics.channelPresenceEvents.inc({ tenant: tenant.id });
  }

  private startReceiving(): void {
    if (this.receiving) return;
    const { conn } = this.channel;
    this.receiving = true;
    conn.ctx.fanout.subscribe(conn, this.fanoutKey);
  }

  /** Replies carry the channel's join_ref, whatever the push carried: clients drop frames of other join refs. */
  private reply(ref: string | null, status: 'ok' | 'error', response: unknown): void {
    this.channel.conn.reply(this.channel.joinRef, ref, this.channel.topic, status, response);
  }

  /** Sliding-window limiter: at most `max` calls in any `windowMs`. */
  private allowCall(now: number, max: number, windowMs: number): boolean {
    while (this.calls.length > 0 && this.calls[0] <= now - windowMs) this.calls.shift();
    if (this.calls.length >= max) return false;
    this.calls.push(now);
    return true;
  }

  /**
   * Runs a step now, or after the pending one. Steps are synchronous for public channels; a permission check that
   * goes to the database (private channels) makes one asynchronous, and the following steps queue behind it.
   */
  private serially(step: () => Step): void {
    const run = (): Step => (this.channel.closed ? undefined : step());
    const result = this.pending === null ? run() : this.pending.then(run);
    if (!(result instanceof Promise)) return;
    const tail: Promise<void> = result
      .catch((err: unknown) => {
        this.channel.conn.log.error({ err, topic: this.channel.topic, error_code: 'UnknownPresenceError' }, 'presence step failed');
      })
      .then(() => {
        if (this.pending === tail) this.pending = null;
      });
    this.pending = tail;
  }
}

function isMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
