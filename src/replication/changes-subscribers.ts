import type pg from 'pg';
import type { Binding } from './changes/index.js';
import { formatLsn, parseLsn, type Lsn } from './pgoutput/index.js';
import type { OutgoingChange } from '../shared/messages.js';

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
 * events of one transaction in order (the channel encodes them for its socket, in one write).
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

/**
 * A subscriber persisted by an earlier run of this node for this tenant, not rejoined yet: the commits since the
 * stream started are held for it (see HeldLog). A rejoin it matches continues it and is owed those commits, which
 * are then matched, RLS-checked and shaped for the rejoiner's own bindings and claims like any other change.
 */
export class PendingSubscriber {
  constructor(
    readonly instance: string,
    readonly topic: string,
    readonly legacy: boolean,
    readonly bindings: readonly Binding[],
    readonly claims: Record<string, unknown>,
    /** The first commit position it is owed, as put on record (null for records of runs before it was kept). */
    readonly start: Lsn | null = null,
  ) {}

  /**
   * The rejoin this subscriber waits for: the same topic and bindings, and the same user (role and sub claims, an
   * absent claim matching only an absent one). The match only decides who continues it, so that the right user
   * gets the held commits once; it grants nothing, since they are checked against the rejoiner's claims.
   */
  claimableBy(rejoin: Pick<ChangesSubscriber, 'topic' | 'legacy' | 'bindings' | 'claims'>): boolean {
    return (
      rejoin.topic === this.topic &&
      rejoin.legacy === this.legacy &&
      sameIds(rejoin.bindings, this.bindings) &&
      userOf(rejoin.claims) === userOf(this.claims)
    );
  }
}

/** The role and sub claims as one comparable text, each with whether it is there at all. */
function userOf(claims: Record<string, unknown>): string {
  const role = claims.role === undefined ? [] : [claims.role];
  const sub = claims.sub === undefined ? [] : [claims.sub];
  return JSON.stringify([role, sub]);
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
  start: string | null;
}

/**
 * Where a saved record's commits start: the WAL insert position read while saving it (a new subscription), a known
 * position (a subscriber continued from a record, or moved from another owner), or, for a claims update, what the
 * record says already.
 */
export type RecordStart = 'now' | 'keep' | Lsn;

/**
 * Persistence of subscribers in the tenant database (realtime.performer_changes_subscribers), per tenant: several
 * tenants may share one database, and each sees only its own.
 */
export class SubscriberStore {
  constructor(
    private readonly pool: () => Promise<pg.Pool>,
    private readonly node: string,
    private readonly tenant: string,
    /** In a cluster, the owner's fence row and number: a record is written only while no newer owner claimed. */
    private readonly fence: { key: string; fence: number } | null = null,
  ) {}

  /**
   * Puts a subscriber on record (or updates its claims) with where its commits start, and returns the WAL insert
   * position read while doing so (with `start` 'now', the start it was given): every transaction that commits after
   * the subscription was confirmed has its commit record at or past it.
   */
  async save(s: ChangesSubscriber, start: RecordStart = 'keep'): Promise<Lsn> {
    const pool = await this.pool();
    const sub = typeof s.claims.sub === 'string' ? s.claims.sub : null;
    const given = typeof start === 'bigint' ? formatLsn(start) : null;
    // The fence row is share-locked: a newer owner's claim waits for this write (and then loads it), or this write
    // waits for the claim and sees the newer number (and writes nothing).
    const { rows } = await pool.query<{ at: string; start: string }>(
      `WITH f AS (SELECT fence FROM realtime.performer_stream_fences WHERE tenant = $10 FOR SHARE)
       INSERT INTO realtime.performer_changes_subscribers (instance, topic, bindings, claims, sub, node, tenant, start_lsn)
       SELECT $1, $2, $3, $4, $5, $6, $7, COALESCE($8::pg_lsn, pg_catalog.pg_current_wal_insert_lsn())
        WHERE $10::text IS NULL OR COALESCE((SELECT max(fence) FROM f), 0) <= $11::bigint
       ON CONFLICT (instance) DO UPDATE SET claims = EXCLUDED.claims, sub = EXCLUDED.sub,
         start_lsn = CASE WHEN $9 THEN realtime.performer_changes_subscribers.start_lsn ELSE EXCLUDED.start_lsn END
       RETURNING pg_catalog.pg_current_wal_insert_lsn()::text AS at, start_lsn::text AS start`,
      [s.instance, s.topic, JSON.stringify({ legacy: s.legacy, list: s.bindings }), JSON.stringify(s.claims), sub, this.node, this.tenant, given, start === 'keep', this.fence?.key ?? null, this.fence?.fence ?? 0],
    );
    const row = rows[0];
    if (!row) throw new Error('a newer owner of the tenant runs its streams');
    return parseLsn(start === 'now' ? row.start : row.at);
  }

  async remove(instance: string): Promise<void> {
    const pool = await this.pool();
    await pool.query('DELETE FROM realtime.performer_changes_subscribers WHERE instance = $1 AND tenant = $2', [instance, this.tenant]);
  }

  /** This tenant's persisted subscribers: those of an earlier run that may rejoin. */
  async loadPending(): Promise<PendingSubscriber[]> {
    const pool = await this.pool();
    const { rows } = await pool.query<StoredRow>(
      'SELECT instance::text, topic, bindings, claims, start_lsn::text AS start FROM realtime.performer_changes_subscribers WHERE tenant = $1 ORDER BY created_at, instance',
      [this.tenant],
    );
    return rows.map((r) => new PendingSubscriber(r.instance, r.topic, r.bindings.legacy === true, r.bindings.list, r.claims, r.start === null ? null : parseLsn(r.start)));
  }
}
