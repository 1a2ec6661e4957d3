import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import type { LocalPublisher } from '../shared/messages.js';
import type { Binding } from './changes/index.js';
import { ChangesCatalog } from './changes-catalog.js';
import { ChangesRateGate } from './changes-rate.js';
import { ChangesDispatcher, CommitQueue, type ChangesMetrics, type PendingCommit, type RowChange } from './changes-dispatch.js';
import { SubscriberGroups, type FanoutMember } from './changes-groups.js';
import { SubscriberStarts } from './changes-starts.js';
import { SubscriberStore, type ChangesSubscriber } from './changes-subscribers.js';
import type { Lsn, PgTimestamp } from './pgoutput/index.js';
import { CarriedMessages } from './changes-messages.js';
import type { DatabaseBroadcast } from './db-broadcast.js';
import { TrackedSlot, type SlotUsage } from './changes-slot.js';
import { ReplicationStream } from './stream.js';
import { settledWithin, untilUp } from './stream-wire.js';
import type { ReplicationEvent, StreamFence } from './stream-types.js';

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
  /** Warn when the slot's lag or retained WAL passes this many bytes (and each time it doubles). */
  slotWarnBytes: number;
  /** RLS visibility of a batch checked for all viewers in one call (default); false: one transaction per viewer. */
  rlsBatch?: boolean;
  backoff: { initialMs: number; maxMs: number };
  /** Where the groups' events are published (the channels dispatcher and fan-out take them to the sockets). */
  pubsub: LocalPublisher;
  /** The tenant's changes limiter (upstream's db_events): while false, changes are held, never dropped. */
  allow?: () => boolean;
  onDeliveries?: (n: number) => void;
  metrics?: ChangesMetrics;
  onStopped?: () => void;
  /** The tenant's database-broadcast pipeline: while this stream runs it reads realtime.messages for it too. */
  messages?: () => DatabaseBroadcast | null;
  /** In a cluster: this node's ownership of the tenant; nothing is handed out or confirmed once it may have lapsed. */
  fence?: StreamFence;
  /**
   * In a cluster: settles once every event sent to other nodes so far has reached Redis (rejects if one was lost).
   * A position is confirmed only then, so an owner killed between handing out and sending loses nothing.
   */
  published?: () => Promise<void> | null;
}

/** What a subscriber hears besides changes: the `system` messages of the postgres_changes extension. */
export interface SubscriberNotices {
  notify(status: 'ok' | 'error', message: string): void;
}

export type LiveSubscriber = FanoutMember & SubscriberNotices;

/**
 * Postgres Changes for one tenant: one logical replication stream over the publication, from a persistent slot
 * whose position is confirmed only after a transaction's changes were handed to every matching subscriber, so a
 * restart resumes where it stopped. A new subscriber gets exactly the transactions that commit after it was put on
 * record (see changes-starts). For subscribers persisted by an earlier run the commits are held for a grace
 * period; a rejoin (same topic, bindings and user) gets them, checked against its own claims, and the position is
 * not confirmed past them until then.
 */
export class ChangesEngine {
  readonly catalog: ChangesCatalog;
  private readonly dispatcher: ChangesDispatcher;
  private readonly store: SubscriberStore;
  private readonly live = new Set<LiveSubscriber>();
  /** The live subscribers by identical events: what the dispatcher serves. */
  private readonly groups: SubscriberGroups<LiveSubscriber>;
  /** Subscribers of an earlier run and subscribers on their way in: what each is owed before it goes live. */
  private readonly starts = new SubscriberStarts<LiveSubscriber>();
  /** The commit record of the last transaction the stream delivered in this run. */
  private lastCommitLsn: Lsn = 0n;
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
  /** Holds (never drops) what committed while the tenant is over its changes rate. */
  private readonly rate: ChangesRateGate;
  private flushSoon: NodeJS.Immediate | null = null;
  private readonly unflushed = new Set<ChangesSubscriber>();
  private statusDue = false;
  /** With `published`: the position to confirm once the frames handed out before it have left this node. */
  private pendingAck: Lsn | null = null;
  private acking: Promise<void> | null = null;
  private unflushedItems = 0;
  private idleSince = Date.now();
  private readonly timers: NodeJS.Timeout[] = [];
  private started: Promise<void> | null = null;
  private stopped = false;
  private readonly log: Logger;
  /** Named at start, from the database's identity (see prepareChangesSlot). */
  private readonly tracked: TrackedSlot;

  constructor(private readonly opts: ChangesEngineOptions) {
    this.log = opts.log.child({ extension: 'postgres_changes' });
    this.tracked = new TrackedSlot(opts.tenantId, opts.slotWarnBytes, this.log);
    this.catalog = new ChangesCatalog(opts.pool);
    this.dispatcher = new ChangesDispatcher(this.catalog, opts.pool, this.log, opts.metrics, { rlsBatch: opts.rlsBatch });
    this.store = new SubscriberStore(opts.pool, opts.node, opts.tenantId);
    this.groups = new SubscriberGroups(opts.tenantId, opts.pubsub);
    this.rate = new ChangesRateGate(opts.allow, this.log);
  }

  get status(): string {
    return this.stream?.status ?? 'down';
  }

  get tenantId(): string {
    return this.opts.tenantId;
  }

  /** The slot's name once start() named it. */
  get slot(): string | null {
    return this.tracked.name;
  }

  /** The slot's lag and retained WAL at the last check (every lagCheckMs). */
  get slotUsage(): SlotUsage | null {
    return this.tracked.usage;
  }

  get subscriberCount(): number {
    return this.live.size + this.starts.pendingCount;
  }

  /** Loads the subscribers an earlier run persisted, then streams. Idempotent. */
  start(): Promise<void> {
    this.started ??= (async () => {
      await this.tracked.prepare(await this.opts.pool());
      const pending = await this.store.loadPending();
      this.starts.hold(pending);
      if (pending.length > 0) {
        this.log.info({ pending: pending.length, grace_ms: this.opts.graceMs }, 'holding changes for subscribers of an earlier run');
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

  /**
   * Starts delivering to a subscriber: the transactions that commit after it is on record, or, for a rejoin of a
   * subscriber of an earlier run, first what was held for that one (past `after`, the commit it got last, when it
   * says). Resolves once it is on record.
   */
  async subscribe(sub: LiveSubscriber, opts: { after?: Lsn | null } = {}): Promise<void> {
    await this.start();
    if (this.stream?.status !== 'up') await untilUp(this.stream, 10_000);
    if (this.live.has(sub)) return;
    // Synchronous: every commit taken for dispatch from here on is kept for it until it goes live.
    const claimed = this.starts.register(sub);
    this.live.add(sub);
    this.idleSince = Date.now();
    let at: Lsn;
    try {
      // Positions are not confirmed until it is on record: a crash before that would leave a restart nobody to
      // hold its changes for.
      at = await this.store.save(sub);
    } catch (err) {
      this.live.delete(sub);
      this.leaveStarts(sub);
      throw err;
    }
    if (!this.live.has(sub)) {
      // It left while being recorded.
      await this.store.remove(sub.instance).catch((err: unknown) => this.log.warn({ err }, 'removing a subscriber failed'));
      return;
    }
    this.starts.recorded(sub, at, opts.after ?? null);
    this.releaseHeldIfDone();
    this.dispatching ??= this.dispatchBatches();
    if (claimed && claimed.instance !== sub.instance) {
      this.log.info({ topic: sub.topic }, 'a rejoined subscriber continues one of an earlier run');
      await this.store.remove(claimed.instance).catch((err: unknown) => this.log.warn({ err }, 'removing a claimed subscriber failed'));
    }
  }

  /** With keepRecord (shutdown), the subscriber stays on record for the next run to hold its changes. */
  async unsubscribe(sub: LiveSubscriber, { keepRecord = false } = {}): Promise<void> {
    if (!this.live.delete(sub)) return;
    this.leaveStarts(sub);
    this.groups.leave(sub);
    if (this.live.size === 0) this.idleSince = Date.now();
    if (keepRecord) return;
    await this.store.remove(sub.instance).catch((err: unknown) => this.log.warn({ err }, 'removing a subscriber failed'));
  }

  /**
   * A subscriber of an earlier run (or of another owner of the tenant) left for good before rejoining: nothing is held
   * for it any more, and a rejoin of the same user is a new subscription.
   */
  async forgetPending(instance: string): Promise<void> {
    if (this.starts.drop(instance) === null) return;
    this.releaseHeldIfDone();
    await this.store.remove(instance).catch((err: unknown) => this.log.warn({ err }, 'removing a subscriber failed'));
  }

  /** New claims (access_token): persisted, and used by the next visibility checks. */
  async updateClaims(sub: LiveSubscriber, claims: Record<string, unknown>): Promise<void> {
    sub.claims = claims;
    if (this.groups.has(sub)) this.groups.rejoin(sub);
    await this.store.save(sub);
  }

  private leaveStarts(sub: LiveSubscriber): void {
    if (!this.starts.isJoining(sub)) return;
    const expired = this.starts.leave(sub);
    if (expired) void this.store.remove(expired.instance).catch(() => undefined);
    this.releaseHeldIfDone();
  }

  private async startStream(): Promise<void> {
    const slot = this.tracked.requireName();
    const carried = await CarriedMessages.lookup({ pipeline: () => this.opts.messages?.() ?? null, pool: this.opts.pool, publication: this.opts.publication, log: this.log });
    const stream: ReplicationStream = new ReplicationStream({
      connection: this.opts.databaseUrl,
      publications: carried ? carried.publications(this.opts.publication) : [this.opts.publication],
      slot,
      temporary: false,
      handler: (event) => this.onEvent(event),
      log: this.log,
      applicationName: 'performer_postgres_changes',
      backoff: this.opts.backoff,
      prepare: carried ? async () => carried.preparePublication(await this.opts.pool()) : undefined,
      onStreamStart: (startLsn) => carried?.started(stream, startLsn),
      fence: this.opts.fence,
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
        // A reconnected stream starts again at the confirmed position: what this run took already is not taken twice.
        if (m.commitLsn <= this.lastCommitLsn) changes = [];
        else this.lastCommitLsn = m.commitLsn;
        if (changes.length > 0 && this.subscriberCount === 0) changes = [];
        // Nothing to hand out and nothing ahead of it: confirm at once. Otherwise it joins the next batch, so its
        // position is confirmed only after the changes committed before it.
        if (changes.length === 0 && this.dispatching === null) {
          if (event.ackLsn !== null) this.confirm(event.ackLsn);
          return;
        }
        this.waiting.push({ changes, commitTime: this.commitTime, xid: this.xid, commitLsn: m.commitLsn, ackLsn: event.ackLsn });
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
   * Between batches, joiners whose start has come go live.
   */
  private async dispatchBatches(): Promise<void> {
    // Yield once, so the commits of the rest of this read join the first batch.
    await null;
    try {
      for (;;) {
        // Held while over the changes rate; stopped while held: the waiting transactions were not confirmed, so they
        // come again after a restart.
        if (!this.waiting.empty && !(await this.rate.pass(this.waiting.rows, () => this.stopped))) break;
        // Not the owner any more (or not sure of it): the next owner resumes from the confirmed position.
        if (!this.owns()) break;
        await this.admitJoiners();
        if (this.waiting.empty) break;
        const txns = this.waiting.take();
        this.starts.taken(txns);
        await this.deliver(txns, this.groups.list());
        let ackLsn: Lsn | null = null;
        for (const t of txns) if (t.ackLsn !== null) ackLsn = t.ackLsn;
        if (ackLsn !== null) this.confirm(ackLsn);
      }
    } finally {
      this.dispatching = null;
    }
  }

  /**
   * Joiners go live once every commit before their start has been taken: first what they are owed, checked
   * against their own claims, then they join the groups every later batch is dispatched to.
   */
  private async admitJoiners(): Promise<void> {
    for (;;) {
      const ready = this.starts.ready(this.waiting.nextCommitLsn ?? this.lastCommitLsn + 1n);
      if (ready.length === 0) return;
      for (const { sub, owed } of ready) {
        if (owed.length > 0) await this.deliver(owed, [sub]);
      }
      // A group hands out its queued frames to whoever is a member when it flushes: they leave before anyone joins.
      this.flushFrames();
      for (const { sub, owed } of ready) {
        if (this.starts.admitted(sub, owed) && this.live.has(sub)) this.groups.join(sub);
      }
      this.releaseHeldIfDone();
    }
  }

  /** Hands a batch to the given subscribers (queued; the frames leave at the end of the loop turn). */
  private async deliver(txns: readonly PendingCommit[], targets: readonly ChangesSubscriber[]): Promise<void> {
    const { deliveries, touched, queued } = await this.dispatcher.dispatch(txns, targets).catch((err: unknown) => {
      this.log.error({ err, error_code: 'UnableToDispatchChanges' }, 'dispatching changes kept failing; these changes are not delivered');
      return { deliveries: 0, touched: [], queued: 0 };
    });
    if (deliveries > 0) this.opts.onDeliveries?.(deliveries);
    for (const sub of touched) this.written(sub);
    // One loop turn can read megabytes of backlog: past a bound, frames leave now rather than pile up in the heap.
    this.unflushedItems += queued;
    if (this.unflushedItems >= FLUSH_EVERY_ITEMS) this.flushFrames();
  }

  /** A subscriber has frames queued: they leave at the end of this loop turn, before the status update. */
  private written(sub: ChangesSubscriber): void {
    this.unflushed.add(sub);
    this.scheduleFlush();
  }

  /** Ownership is sure again (Redis came back): what waited is handed out. */
  resume(): void {
    if (!this.stopped && !this.waiting.empty && this.owns()) this.dispatching ??= this.dispatchBatches();
  }

  /** Whether this node may hand out and confirm (always, outside a cluster). */
  private owns(): boolean {
    return this.opts.fence?.valid() ?? true;
  }

  private flushFrames(): void {
    // Frames of commits a newer owner will hand out again from the confirmed position must not leave here too.
    if (!this.owns()) {
      this.unflushed.clear();
      this.unflushedItems = 0;
      return;
    }
    for (const sub of this.unflushed) sub.flush();
    this.unflushed.clear();
    this.unflushedItems = 0;
  }

  /** Confirms a handled position, unless changes are held for subscribers that may still rejoin or are joining. */
  private confirm(lsn: Lsn): void {
    if (this.starts.holding) {
      this.heldAckLsn = lsn;
      return;
    }
    if (this.opts.published) this.pendingAck = lsn;
    else this.stream?.ack(lsn);
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
        this.sendAck();
      }
    });
  }

  /** The status update; in a cluster, once what was sent to other nodes before it has reached Redis. */
  private sendAck(): void {
    const lsn = this.pendingAck;
    this.pendingAck = null;
    const send = (): void => {
      if (lsn !== null && this.owns()) this.stream?.ack(lsn);
      this.stream?.flush();
    };
    const published = lsn === null ? null : (this.opts.published?.() ?? null);
    if (published === null) return send();
    const acking: Promise<void> = published.then(send, (err: unknown) => {
      // Not confirmed: whoever owns the tenant next hands these out again from the confirmed position.
      this.log.warn({ err }, 'events for other nodes did not reach Redis; their position is not confirmed');
    });
    this.acking = acking;
    void acking.finally(() => {
      if (this.acking === acking) this.acking = null;
    });
  }

  private releaseHeldIfDone(): void {
    if (this.starts.holding || this.heldAckLsn === null) return;
    const lsn = this.heldAckLsn;
    this.heldAckLsn = null;
    this.confirm(lsn);
  }

  private async expirePending(): Promise<void> {
    const expired = this.starts.expire();
    if (expired.length === 0) return;
    this.log.info({ expired: expired.length }, 'grace period over: changes held for subscribers that did not rejoin are dropped');
    this.releaseHeldIfDone();
    for (const p of expired) await this.store.remove(p.instance).catch(() => undefined);
  }

  /** Measures the slot (metrics, growth warnings) and, while streaming, applies the lag guard. */
  private async checkLag(): Promise<void> {
    if (this.stopped) return;
    try {
      const pool = await this.opts.pool();
      // Measured while the stream is down too: a slot nobody reads is the one that piles up WAL.
      const lag = (await this.tracked.measure(pool))?.lagBytes ?? 0;
      if (this.stream?.status !== 'up' || lag <= this.opts.maxLagBytes) return;
      this.log.error({ error_code: 'ReplicationLagExceeded', lag_bytes: lag, max: this.opts.maxLagBytes }, 'changes slot too far behind; recreating it');
      for (const sub of this.live) {
        sub.notify('error', `Replication lag of ${lag} bytes exceeded the limit of ${this.opts.maxLagBytes} bytes; changes were skipped and the replication slot was recreated`);
      }
      await this.handMessagesBack();
      await this.stream?.stop();
      await this.dropSlot(pool);
      this.starts.reset();
      this.heldAckLsn = null;
      this.waiting.clear();
      await this.startStream();
    } catch (err) {
      // A database that is down is reported by its own probe; this check only adds to it while streaming.
      if (this.stream?.status === 'up') this.log.warn({ err }, 'replication lag check failed');
      else this.log.debug({ err }, 'replication lag check failed');
    }
  }

  private async checkIdle(): Promise<void> {
    if (this.stopped || this.subscriberCount > 0) return;
    if (Date.now() - this.idleSince < this.opts.idleDropMs) return;
    this.log.info({ slot: this.slot }, 'no postgres_changes subscribers; stopping and dropping the slot');
    await this.stop(true);
  }

  private async dropSlot(pool: pg.Pool): Promise<void> {
    await this.tracked.drop(pool);
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
    if (this.statusDue) {
      this.statusDue = false;
      this.sendAck();
    }
    if (this.acking) await settledWithin(this.acking, 5000);
    if (handBack) await this.handMessagesBack();
    // stop() sends the final acknowledged position itself.
    await this.stream?.stop();
    this.stream = null;
    if (dropSlot) await this.dropSlot(await this.opts.pool()).catch((err: unknown) => this.log.warn({ err }, 'dropping the changes slot failed'));
    this.opts.onStopped?.();
  }
}
