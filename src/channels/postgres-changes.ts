import { randomUUID } from 'node:crypto';
import { changePayloadParts, parseBinding, parseLegacyTopic, type Binding } from '../replication/changes/index.js';
import type { ChangesEngine, LiveSubscriber } from '../replication/changes-engine.js';
import { ChangeQueue, type OutgoingChange } from '../replication/changes-subscribers.js';
import { changesEngine } from '../tenants/changes.js';
import type { Channel } from './channel.js';

/** How long before a subscription that failed for a passing reason is tried again (upstream: 5-10 s). */
const RETRY_MS = 5000;

/**
 * A channel's Postgres Changes: its bindings subscribed to the tenant's changes engine, the `system` messages
 * upstream sends ("Subscribed to PostgreSQL" or the reason it could not), and delivery of the events to the socket.
 */
export class ChannelChanges implements LiveSubscriber {
  readonly instance = randomUUID();
  readonly topic: string;
  bindings: readonly Binding[] = [];
  claims: Record<string, unknown>;
  private engine: ChangesEngine | null = null;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;
  /** The replication problem this subscriber was told about: it hears each one once, not once per retry. */
  private toldProblem: string | null = null;
  private readonly envelopes = new Map<string, { key: string; head: string; tail: string }>();
  private readonly queued = new ChangeQueue();

  constructor(
    private readonly channel: Channel,
    readonly legacy: boolean,
  ) {
    this.topic = channel.subTopic;
    this.claims = channel.claims;
  }

  /** Parses the bindings; a binding that cannot be parsed ends the attempt with upstream's message (final). */
  start(entries: readonly { raw: Record<string, unknown>; id: number }[]): void {
    const bindings: Binding[] = [];
    if (this.legacy) {
      const parsed = parseLegacyTopic(this.topic);
      if (!parsed.ok) return this.notify('error', parsed.message);
      bindings.push(parsed.binding);
    } else {
      for (const entry of entries) {
        const parsed = parseBinding(entry.raw, entry.id);
        if (!parsed.ok) return this.notify('error', parsed.message);
        bindings.push(parsed.binding);
      }
    }
    if (bindings.length === 0) return;
    this.bindings = bindings;
    void this.subscribe();
  }

  private async subscribe(): Promise<void> {
    const conn = this.channel.conn;
    try {
      // A database that cannot replicate (wal_level): say so, once, and look again quietly until it can.
      const unavailable = await conn.tenant.replicationCheck.run();
      if (this.closed) return;
      if (unavailable) {
        if (this.toldProblem !== unavailable.message) this.notify('error', unavailable.message);
        this.toldProblem = unavailable.message;
        return this.retryLater();
      }
      const engine = changesEngine(conn.tenant, conn.ctx.config);
      const problem = await engine.validate(this.bindings, this.claims);
      if (this.closed) return;
      if (problem) return this.notify('error', problem);
      await engine.subscribe(this);
      this.engine = engine;
      if (this.closed) return void engine.unsubscribe(this);
      this.notify('ok', 'Subscribed to PostgreSQL');
    } catch (err) {
      if (this.closed) return;
      conn.log.warn({ err, error_code: 'UnableToSubscribeToChanges', topic: this.channel.topic }, 'postgres_changes subscription failed; retrying');
      this.notify('error', `{:error, "${(err as Error).message}"}`);
      this.retryLater();
    }
  }

  private retryLater(): void {
    this.retry = setTimeout(() => void this.subscribe(), RETRY_MS);
    this.retry.unref();
  }

  get serializer(): string {
    return this.channel.conn.vsn;
  }

  enterFanout(topic: string): void {
    const conn = this.channel.conn;
    if (!conn.closed) conn.ws?.subscribe(topic);
  }

  exitFanout(topic: string): void {
    const conn = this.channel.conn;
    // A closed socket has left its topics already (and may no longer be touched).
    if (!conn.closed) conn.ws?.unsubscribe(topic);
  }

  publish(topic: string, items: readonly OutgoingChange[]): void {
    const conn = this.channel.conn;
    const fanout = conn.ctx.fanout;
    if (!fanout) return;
    let bytes = 0;
    for (const item of items) bytes += fanout.publishText(topic, this.frameFor(item));
    conn.countOutput(bytes);
  }

  keepsUp(): boolean {
    return this.channel.conn.keepsUp();
  }

  deliverMany(items: readonly OutgoingChange[]): void {
    this.queued.add(items);
  }

  flush(): void {
    const items = this.queued.take();
    if (!items) return;
    const conn = this.channel.conn;
    // Outside a uWS callback sends are not corked: cork so the queued frames leave in one write.
    let bytes = 0;
    conn.cork(() => {
      for (const item of items) bytes += conn.sendUncounted(this.frameFor(item));
    });
    // One counter update for the whole batch: prom-client's inc is not free at hundreds of thousands of frames/s.
    conn.countOutput(bytes);
  }

  /**
   * The item's frame for this socket's serializer and topic, encoded by the first subscriber that needs it: as
   * text the first time (uWS converts it on send), as UTF-8 bytes once a second socket wants it. The frame is
   * joined in one go from the serializer's envelope and the event's parts, so it is a flat string, not a rope
   * that every conversion would first have to flatten.
   */
  private frameFor(item: OutgoingChange): string | Uint8Array {
    // Fan-out frames carry no join_ref; the legacy API names the event after the change type.
    const event = this.legacy ? item.type : 'postgres_changes';
    const envelope = this.envelopeFor(event);
    const frames = (item.frames ??= []);
    for (const f of frames) {
      if (f.key !== envelope.key) continue;
      if (typeof f.frame === 'string') f.frame = Buffer.from(f.frame);
      return f.frame;
    }
    const frame =
      item.idsJson === null
        ? envelope.head + item.data + envelope.tail
        : [envelope.head, ...changePayloadParts(item.idsJson, item.data), envelope.tail].join('');
    frames.push({ key: envelope.key, frame });
    return frame;
  }

  /** What this socket's serializer puts around a payload, split out of a frame encoded around a marker. */
  private envelopeFor(event: string): { key: string; head: string; tail: string } {
    let envelope = this.envelopes.get(event);
    if (!envelope) {
      const conn = this.channel.conn;
      // JSON.stringify escapes U+0000 in the topic and event, so the marker only occurs where the payload goes.
      const [head, tail] = conn.encode(null, null, this.channel.topic, event, '\u0000').split('\u0000') as [string, string];
      envelope = { key: `${conn.vsn}|${event}|${this.channel.topic}`, head, tail };
      this.envelopes.set(event, envelope);
    }
    return envelope;
  }

  notify(status: 'ok' | 'error', message: string): void {
    this.channel.pushSystem(status, message, 'postgres_changes');
  }

  refreshClaims(claims: Record<string, unknown>): void {
    this.claims = claims;
    if (this.engine) {
      void this.engine.updateClaims(this, claims).catch((err: unknown) => {
        this.channel.conn.log.warn({ err, error_code: 'UnableToUpdateChangesClaims', topic: this.channel.topic }, 'persisting refreshed claims failed');
      });
    }
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    // Closed because the server is going away: the subscriber stays on record, so the next run holds the changes
    // committed meanwhile for its client's rejoin.
    if (this.engine) void this.engine.unsubscribe(this, { keepRecord: this.channel.conn.ctx.shuttingDown });
  }
}
