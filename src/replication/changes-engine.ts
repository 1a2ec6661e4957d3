import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import type { Binding } from './changes/index.js';
import { ChangesCatalog } from './changes-catalog.js';
import { ChangesDispatcher, CommitQueue, type ChangesMetrics, type RowChange } from './changes-dispatch.js';
import { SubscriberGroups, type FanoutMember } from './changes-groups.js';
import { PendingSubscriber, SubscriberStore, type ChangesSubscriber } from './changes-subscribers.js';
import type { Lsn, PgTimestamp } from './pgoutput/index.js';
import { CarriedMessages } from './changes-messages.js';
import type { DatabaseBroadcast } from './db-broadcast.js';
import { changesSlotName } from './slot-names.js';
import { ReplicationStream } from './stream.js';
import { settledWithin, untilUp } from './stream-wire.js';
import type { ReplicationEvent } from './stream-types.js';

/** Rows of waiting transactions past which the stream waits for the dispatch under way. */
const MAX_BATCH_ROWS = 10_000;
/** Rows dispatched together at most (a larger transaction still goes whole). */
const DISPATCH_ROWS = 1000;

/** Queued frames (all subscribers) that make a write happen before the end of the loop turn. */
const FLUSH_EVERY_ITEMS = 256;

export interface ChangesEngineOptions {
  tenantId: string;
  databaseUrl: string;
  publication: string;
  node: string;
  log: Logger;
  pool: () => Promise<pg.Pool>;
  /** How long changes are held for subscribers of an earlier run that have not rejoined yet. */
  graceMs: number;
  /** Drop the slot after this long without subscribers. */
  idleDropMs: number;
  /** Lag guard: when the slot is this many bytes behind, subscribers are told and the slot is recreated. */
  maxLagBytes: number;
  lagCheckMs: number;
  backoff: { initialMs: number; maxMs: number };
  /** The tenant's events limiter: false drops a transaction's changes, as upstream drops them. */
  allow?: () => boolean;
  onDeliveries?: (n: number) => void;
  metrics?: ChangesMetrics;
  onStopped?: () => void;
  /** The tenant's database-broadcast pipeline: while this stream runs it reads realtime.messages for it too. */
  messages?: () => DatabaseBroadcast | null;
}

/** What a subscriber hears besides changes: the `system` messages of the postgres_changes extension. */
export interface SubscriberNotices {
  notify(status: 'ok' | 'error', message: string): void;
}

export type LiveSubscriber = FanoutMember & SubscriberNotices;

/**
 * Postgres Changes for one tenant: one logical replication stream over the publication, from a persistent slot
 * whose position is confirmed only after a transaction's changes were handed to every matching subscriber, so a
 * restart resumes where it stopped. Subscribers persisted by an earlier run have their changes held for a grace
 * period until they rejoin (same topic, bindings and user); until then the position is not confirmed past them.
 */
export class ChangesEngine {
  readonly catalog: ChangesCatalog;
  readonly slot: string;
  private readonly dispatcher: ChangesDispatcher;
  private readonly store: SubscriberStore;
  private readonly live = new Set<LiveSubscriber>();
  /** The live subscribers by identical events: what the dispatcher serves. */
  private readonly groups = new SubscriberGroups<LiveSubscriber>();
  private pending: PendingSubscriber[] = [];
  private stream: ReplicationStream | null = null;
  /** realtime.messages this stream reads for the database-broadcast pipeline, if it does. */
  private carried: CarriedMessages | null = null;
  private txn: RowChange[] | null = null;
  /** Committed transactions waiting for the dispatch under way. */
  private readonly waiting = new CommitQueue(DISPATCH_ROWS);
  private dispatching: Promise<void> | null = null;
  private commitTime: PgTimestamp = 0n;
  private xid = 0;
  /** The newest commit handled while changes were held: confirmed once nothing is held any more. */
  private heldAckLsn: Lsn | null = null;
  private flushSoon: NodeJS.Immediate | null = null;
  private readonly unflushed = new Set<ChangesSubscriber>();
  private statusDue = false;
  private unflushedItems = 0;
  /** Subscribers being put on record: confirmation waits for them. */
  private unsaved = 0;
  private idleSince = Date.now();
  private readonly timers: NodeJS.Timeout[] = [];
  private started: Promise<void> | null = null;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly opts: ChangesEngineOptions) {
    this.log = opts.log.child({ extension: 'postgres_changes' });
    this.slot = changesSlotName(opts.tenantId, opts.databaseUrl);
    this.catalog = new ChangesCatalog(opts.pool);
    this.dispatcher = new ChangesDispatcher(this.catalog, opts.pool, this.log, opts.metrics);
    this.store = new SubscriberStore(opts.pool, opts.node);
  }

  get status(): string {
    return this.stream?.status ?? 'down';
  }

  get subscriberCount(): number {
    return this.live.size + this.pending.length;
  }

  /** Loads the subscribers an earlier run persisted, then streams. Idempotent. */
  start(): Promise<void> {
    this.started ??= (async () => {
      this.pending = await this.store.loadPending();
      if (this.pending.length > 0) {
        this.log.info({ pending: this.pending.length, grace_ms: this.opts.graceMs }, 'holding changes for subscribers of an earlier run');
        this.every(this.opts.graceMs, () => this.expirePending(), true);
      }
      await this.startStream();
      this.every(this.opts.lagCheckMs, () => void this.checkLag());
      this.every(Math.min(this.opts.idleDropMs, 60_000), () => void this.checkIdle());
    })();
    return this.started;
  }

  /**
   * Checks a channel's bindings against the publication and the tables' columns as its role sees them.
   * Returns the upstream `system` error text of the first binding that cannot be subscribed.
   */
  validate(bindings: readonly Binding[], claims: Record<string, unknown>): Promise<string | null> {
    return this.catalog.validateBindings(this.opts.publication, bindings, claims);
  }

  /** Starts delivering to a subscriber: first what was held for it if it is a rejoin, then live changes. */
  async subscribe(sub: LiveSubscriber): Promise<void> {
    await this.start();
    if (this.stream?.status !== 'up') await untilUp(this.stream, 10_000);
    const sub_ = typeof sub.claims.sub === 'string' ? sub.claims.sub : null;
    // Claim and go live in one synchronous step: a commit dispatched in between would otherwise reach neither.
    const i = this.pending.findIndex((p) => p.claimableBy(sub.topic, sub.bindings, sub_));
    const claimed = i >= 0 ? this.pending.splice(i, 1)[0]! : null;
    if (claimed) {
      const held = claimed.handOver(sub);
      this.written(sub);
      this.log.info({ topic: sub.topic, held }, 'rejoined subscriber got its held changes');
    }
    this.live.add(sub);
    this.groups.join(sub);
    this.idleSince = Date.now();
    // Positions are not confirmed until the subscriber is on record: a crash before that would leave a restart
    // nobody to hold its changes for.
    this.unsaved += 1;
    try {
      await this.store.save(sub);
      if (claimed) await this.store.remove(claimed.instance).catch((err: unknown) => this.log.warn({ err }, 'removing a claimed subscriber failed'));
    } finally {
      this.unsaved -= 1;
      this.releaseHeldIfDone();
    }
  }

  async unsubscribe(sub: LiveSubscriber): Promise<void> {
    if (!this.live.delete(sub)) return;
    this.groups.leave(sub);
    if (this.live.size === 0) this.idleSince = Date.now();
    await this.store.remove(sub.instance).catch((err: unknown) => this.log.warn({ err }, 'removing a subscriber failed'));
  }

  /** New claims (access_token): persisted, and used by the next visibility checks. */
  async updateClaims(sub: LiveSubscriber, claims: Record<string, unknown>): Promise<void> {
    sub.claims = claims;
    if (this.live.has(sub)) this.groups.rejoin(sub);
    await this.store.save(sub);
  }

  private async startStream(): Promise<void> {
    const carried = await CarriedMessages.lookup({ pipeline: () => this.opts.messages?.() ?? null, pool: this.opts.pool, publication: this.opts.publication, log: this.log });
    const stream: ReplicationStream = new ReplicationStream({
      connection: this.opts.databaseUrl,
      publications: carried ? carried.publications(this.opts.publication) : [this.opts.publication],
      slot: this.slot,
      temporary: false,
      handler: (event) => this.onEvent(event),
      log: this.log,
      applicationName: 'performer_postgres_changes',
      backoff: this.opts.backoff,
      prepare: carried ? async () => carried.preparePublication(await this.opts.pool()) : undefined,
      onStreamStart: (startLsn) => carried?.started(stream, startLsn),
    });
    this.stream = stream;
    this.carried = carried;
    stream.start();
  }

  /** Before the stream stops: realtime.messages go back to the database-broadcast pipeline. */
  private async handMessagesBack(): Promise<void> {
    // The stream keeps carrying them until the pipeline's own stream has taken over.
    await this.carried?.handBack(this.stream);
    this.carried = null;
  }

  /** Synchronous for every message but a commit with changes to hand out: the queue then runs them inline. */
  private onEvent(event: ReplicationEvent): void | Promise<void> {
    const m = event.message;
    switch (m.tag) {
      case 'begin':
        this.txn = [];
        this.commitTime = m.commitTime;
        this.xid = m.xid;
        this.carried?.begin(m.finalLsn, m.commitTime);
        return;
      case 'relation':
        this.dispatcher.relationChanged(m);
        return;
      case 'insert':
      case 'update':
      case 'delete': {
        const relation = this.stream?.relations.get(m.relationId);
        if (!relation || !this.txn) return;
        if (this.carried?.take(relation, m.tag, m.tag === 'delete' ? null : m.new)) return;
        const type = m.tag === 'insert' ? 'INSERT' : m.tag === 'update' ? 'UPDATE' : 'DELETE';
        this.txn.push({
          relation,
          type,
          newTuple: m.tag === 'delete' ? null : m.new,
          old: m.tag === 'insert' ? null : m.old,
        });
        return;
      }
      case 'commit': {
        this.carried?.commit();
        let changes = this.txn ?? [];
        this.txn = null;
        if (changes.length > 0 && this.subscriberCount === 0) changes = [];
        if (changes.length > 0 && this.opts.allow && !this.opts.allow()) {
          this.log.warn({ error_code: 'ChangesRateLimited', changes: changes.length }, 'tenant over its events limit; changes dropped');
          changes = [];
        }
        // Nothing to hand out and nothing ahead of it: confirm at once. Otherwise it joins the next batch, so its
        // position is confirmed only after the changes committed before it.
        if (changes.length === 0 && this.dispatching === null) {
          if (event.ackLsn !== null) this.confirm(event.ackLsn);
          return;
        }
        this.waiting.push({ changes, commitTime: this.commitTime, xid: this.xid, ackLsn: event.ackLsn });
        this.dispatching ??= this.dispatchBatches();
        // A large batch holds back the stream (the queue keeps the next messages) until the dispatch under way ends.
        if (this.waiting.rows >= MAX_BATCH_ROWS) return this.dispatching;
        return;
      }
      default:
        return;
    }
  }

  /**
   * Dispatches what committed, in batches: the transactions that committed while one dispatch ran (waiting on
   * RLS queries, say) go out together in the next, with one visibility check per (table, claims) for all of them.
   */
  private async dispatchBatches(): Promise<void> {
    // Yield once, so the commits of the rest of this read join the first batch.
    await null;
    try {
      while (!this.waiting.empty) {
        const txns = this.waiting.take();
        const { deliveries, touched, queued } = await this.dispatcher.dispatch(txns, [...this.groups.list(), ...this.pending]).catch((err: unknown) => {
          this.log.error({ err, error_code: 'UnableToDispatchChanges' }, 'dispatching changes kept failing; these changes are not delivered');
          return { deliveries: 0, touched: [], queued: 0 };
        });
        if (deliveries > 0) this.opts.onDeliveries?.(deliveries);
        for (const sub of touched) this.written(sub);
        // One loop turn can read megabytes of backlog: past a bound, frames leave now rather than pile up in the heap.
        this.unflushedItems += queued;
        if (this.unflushedItems >= FLUSH_EVERY_ITEMS) this.flushFrames();
        let ackLsn: Lsn | null = null;
        for (const t of txns) if (t.ackLsn !== null) ackLsn = t.ackLsn;
        if (ackLsn !== null) this.confirm(ackLsn);
      }
    } finally {
      this.dispatching = null;
    }
  }

  /** A subscriber has frames queued: they leave at the end of this loop turn, before the status update. */
  private written(sub: ChangesSubscriber): void {
    this.unflushed.add(sub);
    this.scheduleFlush();
  }

  private flushFrames(): void {
    for (const sub of this.unflushed) sub.flush();
    this.unflushed.clear();
    this.unflushedItems = 0;
  }

  /** Confirms a handled position, unless changes are held for subscribers that may still rejoin. */
  private confirm(lsn: Lsn): void {
    if (this.pending.length > 0 || this.unsaved > 0) {
      this.heldAckLsn = lsn;
      return;
    }
    this.stream?.ack(lsn);
    this.statusDue = true;
    this.scheduleFlush();
  }

  /**
   * Once per loop turn: the frames of every commit handled in it leave in one write per socket, then one status
   * update confirms them all. A crash can only fall in the short gap between the two, so a restart neither loses
   * nor, but for that gap, repeats what subscribers got.
   */
  private scheduleFlush(): void {
    this.flushSoon ??= setImmediate(() => {
      this.flushSoon = null;
      this.flushFrames();
      if (this.statusDue) {
        this.statusDue = false;
        this.stream?.flush();
      }
    });
  }

  private releaseHeldIfDone(): void {
    if (this.pending.length > 0 || this.unsaved > 0 || this.heldAckLsn === null) return;
    const lsn = this.heldAckLsn;
    this.heldAckLsn = null;
    this.confirm(lsn);
  }

  private async expirePending(): Promise<void> {
    if (this.pending.length === 0) return;
    const expired = this.pending;
    this.pending = [];
    this.log.info({ expired: expired.length }, 'grace period over: changes held for subscribers that did not rejoin are dropped');
    for (const p of expired) await this.store.remove(p.instance).catch(() => undefined);
    this.releaseHeldIfDone();
  }

  private async checkLag(): Promise<void> {
    if (this.stopped || this.stream?.status !== 'up') return;
    try {
      const pool = await this.opts.pool();
      const { rows } = await pool.query<{ lag: string | null }>(
        `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag FROM pg_replication_slots WHERE slot_name = $1`,
        [this.slot],
      );
      const lag = Number(rows[0]?.lag ?? 0);
      if (lag <= this.opts.maxLagBytes) return;
      this.log.error({ error_code: 'ReplicationLagExceeded', lag_bytes: lag, max: this.opts.maxLagBytes }, 'changes slot too far behind; recreating it');
      for (const sub of this.live) {
        sub.notify('error', `Replication lag of ${lag} bytes exceeded the limit of ${this.opts.maxLagBytes} bytes; changes were skipped and the replication slot was recreated`);
      }
      await this.handMessagesBack();
      await this.stream?.stop();
      await this.dropSlot(pool);
      this.pending = [];
      this.heldAckLsn = null;
      this.waiting.clear();
      await this.startStream();
    } catch (err) {
      this.log.warn({ err }, 'replication lag check failed');
    }
  }

  private async checkIdle(): Promise<void> {
    if (this.stopped || this.subscriberCount > 0) return;
    if (Date.now() - this.idleSince < this.opts.idleDropMs) return;
    this.log.info({ slot: this.slot }, 'no postgres_changes subscribers; stopping and dropping the slot');
    await this.stop(true);
  }

  private async dropSlot(pool: pg.Pool): Promise<void> {
    await pool.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [this.slot]);
  }

  private every(ms: number, fn: () => void, once = false): void {
    const timer = once ? setTimeout(fn, ms) : setInterval(fn, ms);
    timer.unref();
    this.timers.push(timer);
  }

  /**
   * Stops streaming; with dropSlot, the slot goes too (idle), otherwise it keeps its position (shutdown). With
   * handBack, realtime.messages go back to the database-broadcast pipeline first (not when the tenant stops).
   */
  async stop(dropSlot = false, handBack = dropSlot): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    // What was read is handed out and confirmed before the final status update, so a restart does not repeat it.
    if (this.dispatching) await settledWithin(this.dispatching, 5000);
    if (this.flushSoon) clearImmediate(this.flushSoon);
    this.flushSoon = null;
    // Frames already handed out still go to their sockets.
    this.flushFrames();
    if (handBack) await this.handMessagesBack();
    // stop() sends the final acknowledged position itself.
    await this.stream?.stop();
    this.stream = null;
    if (dropSlot) await this.dropSlot(await this.opts.pool()).catch((err: unknown) => this.log.warn({ err }, 'dropping the changes slot failed'));
    this.opts.onStopped?.();
  }
}
