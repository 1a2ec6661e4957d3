import { randomUUID } from 'node:crypto';
import { parseBinding, parseLegacyTopic, type Binding } from '../replication/changes/index.js';
import type { ChangesEngine, LiveSubscriber } from '../replication/changes-engine.js';
import { ChangeQueue } from '../replication/changes-subscribers.js';
import type { OutgoingChange } from '../shared/messages.js';
import { changesEngine } from '../tenants/changes.js';
import type { ChangesRoutes } from '../tenants/changes-routes.js';
import type { ChannelPort } from './ports.js';
import { ChangeFrames } from './frames.js';

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
  private routes: ChangesRoutes | null = null;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;
  /** The replication problem this subscriber was told about: it hears each one once, not once per retry. */
  private toldProblem: string | null = null;
  /** This socket's frames, made when it is first written to on its own (most subscribers never are). */
  private frames: ChangeFrames | null = null;
  private readonly queued = new ChangeQueue();

  constructor(
    private readonly channel: ChannelPort,
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
      const routes = conn.ctx.clusterState?.routes;
      if (routes) {
        // In a cluster the tenant's owner serves it, wherever that is (tenants/changes-routes.ts).
        const refused = await routes.subscribe(conn.tenant, this);
        if (refused) return this.notify('error', refused);
        this.routes = routes;
        if (this.closed) return routes.unsubscribe(this, false);
        this.notify('ok', 'Subscribed to PostgreSQL');
        return;
      }
      const engine = changesEngine(conn.tenant, conn.ctx.config, conn.ctx.pubsub);
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

  enterFanout(key: string): void {
    this.channel.conn.ctx.fanout.joinChanges(this.channel.conn, key);
  }

  exitFanout(key: string): void {
    this.channel.conn.ctx.fanout.leaveChanges(this.channel.conn, key);
  }

  deliverMany(items: readonly OutgoingChange[]): void {
    this.queued.add(items);
  }

  /** What this subscriber was owed on its own (before it joined its group) goes out in one write. */
  flush(): void {
    const items = this.queued.take();
    if (!items) return;
    const { conn, topic } = this.channel;
    this.frames ??= new ChangeFrames(conn.vsn, topic, this.legacy);
    conn.ctx.dispatcher.sendChanges(conn, this.frames, items);
  }

  notify(status: 'ok' | 'error', message: string): void {
    this.channel.pushSystem(status, message, 'postgres_changes');
  }

  refreshClaims(claims: Record<string, unknown>): void {
    this.claims = claims;
    if (this.routes) {
      void this.routes.updateClaims(this, claims).catch((err: unknown) => {
        this.channel.conn.log.warn({ err, error_code: 'UnableToUpdateChangesClaims', topic: this.channel.topic }, 'persisting refreshed claims failed');
      });
    }
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
    this.routes?.unsubscribe(this, this.channel.conn.ctx.shuttingDown);
  }
}
