import type pg from 'pg';
import type { Binding } from './changes/index.js';

/**
 * One postgres_changes event as handed to subscribers. Every subscriber that gets the same payload gets the same
 * object, so a frame is encoded once per (serializer, topic, event) however many sockets it goes to: `frames`
 * caches them for the duration of the delivery.
 */
export interface OutgoingChange {
  /** INSERT, UPDATE or DELETE: the event name of the legacy topic form. */
  readonly type: string;
  /** The `data` object as JSON text. */
  readonly data: string;
  /** The `ids` array as JSON text; null for the legacy topic form, whose payload is the bare data object. */
  readonly idsJson: string | null;
  frames?: { key: string; frame: string | Uint8Array }[];
}

/** Events queued for a subscriber until its next flush, in order. */
export class ChangeQueue {
  private items: OutgoingChange[] = [];

  add(items: readonly OutgoingChange[]): void {
    for (const item of items) this.items.push(item);
  }

  /** Everything queued (emptying the queue), or null when nothing is. */
  take(): OutgoingChange[] | null {
    if (this.items.length === 0) return null;
    const items = this.items;
    this.items = [];
    return items;
  }
}

/**
 * A Postgres Changes subscriber: one joined channel with its bindings and claims. `deliverMany` receives the
 * events of one transaction in order (the channel encodes them for its socket, in one write); a pending subscriber
 * (persisted before a restart, not rejoined yet) buffers them instead.
 */
export interface ChangesSubscriber {
  readonly instance: string;
  /** The channel's sub-topic. */
  readonly topic: string;
  /** Legacy topic form: event = change type, payload = bare data. */
  readonly legacy: boolean;
  readonly bindings: readonly Binding[];
  claims: Record<string, unknown>;
  /** How many subscribers this target stands for (a group of identical ones); 1 when absent. */
  readonly weight?: number;
  /** Queues the events of one transaction, in order. */
  deliverMany(items: readonly OutgoingChange[]): void;
  /** Writes what was queued (in one socket write). */
  flush(): void;
}

/** A subscriber persisted by an earlier run of this node and not rejoined yet: its changes are held for it. */
export class PendingSubscriber implements ChangesSubscriber {
  readonly held: OutgoingChange[] = [];
  /** The live subscriber that claimed this one: a dispatch already under way when it rejoined still reaches it. */
  private heir: ChangesSubscriber | null = null;
  constructor(
    readonly instance: string,
    readonly topic: string,
    readonly legacy: boolean,
    readonly bindings: readonly Binding[],
    public claims: Record<string, unknown>,
    readonly sub: string | null,
  ) {}

  deliverMany(items: readonly OutgoingChange[]): void {
    if (this.heir) this.heir.deliverMany(items);
    else for (const item of items) this.held.push(item);
  }

  flush(): void {
    this.heir?.flush();
  }

  /** Gives what was held to the rejoined subscriber, and forwards anything that still arrives here. */
  handOver(heir: ChangesSubscriber): number {
    const n = this.held.length;
    if (n > 0) heir.deliverMany(this.held.splice(0));
    this.heir = heir;
    return n;
  }

  /** The same topic, the same bindings and the same user: the rejoin this subscriber waits for. */
  claimableBy(topic: string, bindings: readonly Binding[], sub: string | null): boolean {
    return topic === this.topic && sub === this.sub && sameIds(bindings, this.bindings);
  }
}

function sameIds(a: readonly Binding[], b: readonly Binding[]): boolean {
  const x = a.map((v) => v.id).sort((p, q) => p - q);
  const y = b.map((v) => v.id).sort((p, q) => p - q);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

interface StoredRow {
  instance: string;
  topic: string;
  bindings: { legacy?: boolean; list: Binding[] };
  claims: Record<string, unknown>;
  sub: string | null;
}

/** Persistence of subscribers in the tenant database (realtime.performer_changes_subscribers). */
export class SubscriberStore {
  constructor(
    private readonly pool: () => Promise<pg.Pool>,
    private readonly node: string,
  ) {}

  async save(s: ChangesSubscriber): Promise<void> {
    const pool = await this.pool();
    const sub = typeof s.claims.sub === 'string' ? s.claims.sub : null;
    await pool.query(
      `INSERT INTO realtime.performer_changes_subscribers (instance, topic, bindings, claims, sub, node)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (instance) DO UPDATE SET claims = EXCLUDED.claims, sub = EXCLUDED.sub`,
      [s.instance, s.topic, JSON.stringify({ legacy: s.legacy, list: s.bindings }), JSON.stringify(s.claims), sub, this.node],
    );
  }

  async remove(instance: string): Promise<void> {
    const pool = await this.pool();
    await pool.query('DELETE FROM realtime.performer_changes_subscribers WHERE instance = $1', [instance]);
  }

  /** Everything persisted: subscribers of an earlier run that may rejoin. */
  async loadPending(): Promise<PendingSubscriber[]> {
    const pool = await this.pool();
    const { rows } = await pool.query<StoredRow>('SELECT instance::text, topic, bindings, claims, sub FROM realtime.performer_changes_subscribers');
    return rows.map((r) => new PendingSubscriber(r.instance, r.topic, r.bindings.legacy === true, r.bindings.list, r.claims, r.sub));
  }
}
