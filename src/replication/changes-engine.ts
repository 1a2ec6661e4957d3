import type pg from 'pg';
import { withLentClient } from '../db/lend.js';
import type { Logger } from '../observability/logger.js';
import type { Binding } from './changes/index.js';
import { ChangesCatalog } from './changes-catalog.js';
import { ChangesRateGate } from './changes-rate.js';
import { BatchLoop } from './changes-batches.js';
import { CommitAssembler } from './changes-commits.js';
import { ChangesDispatcher } from './changes-dispatch.js';
import { SubscriberGroups } from './changes-groups.js';
import { SubscriberStarts } from './changes-starts.js';
import { SubscriberStore } from './changes-subscribers.js';
import type { Lsn } from './pgoutput/index.js';
import { CarriedMessages } from './changes-messages.js';
import { ClusterAck } from './changes-ack.js';
import { FrameFlusher } from './changes-flush.js';
import { checkSlotLag, IdleClock } from './changes-lag-guard.js';
import { TrackedSlot, type SlotUsage } from './changes-slot.js';
import { ReplicationStream } from './stream.js';
import { settledWithin, untilUp } from './stream-wire.js';
import type { ChangesEngineOptions, LiveSubscriber } from './changes-engine-options.js';

export type { ChangesEngineOptions, LiveSubscriber, SubscriberNotices } from './changes-engine-options.js';

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
  /** The stream's messages, made into committed transactions for the batches. */
  private readonly commits: CommitAssembler;
  private stream: ReplicationStream | null = null;
  /** realtime.messages this stream reads for the database-broadcast pipeline, if it does. */
  private carried: CarriedMessages | null = null;
  /** Committed transactions on their way out, in batches. */
  private readonly batches: BatchLoop;
  /** The newest commit handled while changes were held: confirmed once nothing is held any more. */
  private heldAckLsn: Lsn | null = null;
  /** Holds (never drops) what committed while the tenant is over its changes rate. */
  private readonly rate: ChangesRateGate;
  /** Confirmations; in a cluster, once what went to other nodes reached Redis. */
  private readonly acks: ClusterAck;
  /** Frames leave once per loop turn (none once ownership may have lapsed), then the status update confirms them. */
  private readonly flusher: FrameFlusher;
  private readonly idle: IdleClock;
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
    this.store = new SubscriberStore(opts.pool, opts.node, opts.tenantId, opts.fence?.held ?? null);
    this.groups = new SubscriberGroups(opts.tenantId, opts.pubsub);
    this.rate = new ChangesRateGate(opts.allow, this.log);
    this.idle = new IdleClock(opts.idleDropMs);
    this.acks = new ClusterAck({ stream: () => this.stream, owns: () => this.owns(), published: opts.published, drained: () => opts.pubsub.changesDrained?.() ?? null, log: this.log });
    this.flusher = new FrameFlusher(
      () => this.acks.sendStatus(),
      () => this.owns(),
    );
    this.batches = new BatchLoop({
      dispatcher: this.dispatcher,
      flusher: this.flusher,
      rate: this.rate,
      log: this.log,
      pipeline: opts.pipeline ?? true,
      stopped: () => this.stopped,
      owns: () => this.owns(),
      betweenBatches: () => this.admitJoiners(),
      taken: (txns) => {
        this.starts.taken(txns);
        return this.groups.list();
      },
      mayRunAhead: () => !this.starts.holding && this.starts.joining === 0,
      confirm: (lsn) => this.confirm(lsn),
      room: () => opts.pubsub.changesRoom?.() ?? null,
      onDeliveries: opts.onDeliveries,
    });
    this.commits = new CommitAssembler({
      relation: (id) => this.stream?.relations.get(id),
      carried: () => this.carried,
      relationChanged: (m) => this.dispatcher.relationChanged(m),
      hasSubscribers: () => this.subscriberCount > 0,
      batchesIdle: () => this.batches.idle,
      confirm: (lsn) => this.confirm(lsn),
      push: (commit) => this.batches.push(commit),
    });
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
      const pool = await this.opts.pool();
      await this.tracked.prepare(pool);
      // Claimed first in a cluster: a former owner's later records are refused (SubscriberStore.save), earlier ones load.
      if (this.opts.fence) await withLentClient(pool, (client) => this.opts.fence!.claim(client, this.tracked.requireName()));
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
   * says). Resolves once it is on record, with where its commits start (the first commit position it is owed; null
   * when already live or gone meanwhile): a node that moves it to another owner later says it got everything before.
   */
  async subscribe(sub: LiveSubscriber, opts: { after?: Lsn | null } = {}): Promise<Lsn | null> {
    await this.start();
    if (this.stream?.status !== 'up') await untilUp(this.stream, 10_000);
    if (this.live.has(sub)) return null;
    // Synchronous: every commit taken for dispatch from here on is kept for it until it goes live.
    const claimed = this.starts.register(sub);
    this.live.add(sub);
    this.idle.reset();
    let at: Lsn;
    try {
      // Positions are not confirmed until it is on record (a restart must know whom to hold changes for). The record
      // keeps where its commits start, for a next owner whose subscriber node cannot say (it missed this answer).
      at = await this.store.save(sub, this.starts.continuedFrom(sub, opts.after ?? null) ?? 'now');
    } catch (err) {
      this.live.delete(sub);
      this.leaveStarts(sub);
      throw err;
    }
    if (!this.live.has(sub)) {
      // It left while being recorded.
      await this.store.remove(sub.instance).catch((err: unknown) => this.log.warn({ err }, 'removing a subscriber failed'));
      return null;
    }
    const start = this.starts.recorded(sub, at, opts.after ?? null);
    this.releaseHeldIfDone();
    this.batches.kick();
    if (claimed && claimed.instance !== sub.instance) {
      this.log.info({ topic: sub.topic }, 'a rejoined subscriber continues one of an earlier run');
      await this.store.remove(claimed.instance).catch((err: unknown) => this.log.warn({ err }, 'removing a claimed subscriber failed'));
    }
    return start;
  }

  /** With keepRecord (shutdown), the subscriber stays on record for the next run to hold its changes. */
  async unsubscribe(sub: LiveSubscriber, { keepRecord = false } = {}): Promise<void> {
    if (!this.live.delete(sub)) return;
    this.leaveStarts(sub);
    this.groups.leave(sub);
    if (this.live.size === 0) this.idle.reset();
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
      handler: (event) => this.commits.onEvent(event),
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

  /**
   * Joiners go live once every commit before their start has been taken: first what they are owed, checked
   * against their own claims, then they join the groups every later batch is dispatched to.
   */
  private async admitJoiners(): Promise<void> {
    for (;;) {
      const ready = this.starts.ready(this.batches.nextCommitLsn ?? this.commits.lastCommitLsn + 1n);
      if (ready.length === 0) return;
      for (const { sub, owed } of ready) {
        if (owed.length > 0) await this.batches.deliver(owed, [sub]);
      }
      // A group hands out its queued frames to whoever is a member when it flushes: they leave before anyone joins.
      this.flusher.flushFrames();
      for (const { sub, owed } of ready) {
        if (this.starts.admitted(sub, owed) && this.live.has(sub)) this.groups.join(sub);
      }
      this.releaseHeldIfDone();
    }
  }

  /** Confirms a handled position, unless changes are held for subscribers that may still rejoin or are joining. */
  private confirm(lsn: Lsn): void {
    if (this.starts.holding) {
      this.heldAckLsn = lsn;
      return;
    }
    this.acks.confirm(lsn);
    this.flusher.confirmed();
  }

  /** Ownership is sure again (Redis came back): what waited is handed out. */
  resume(): void {
    if (!this.stopped && this.batches.hasWork && this.owns()) this.batches.kick();
  }

  /** Whether this node may hand out and confirm (always, outside a cluster). */
  private owns(): boolean {
    return this.opts.fence?.valid() ?? true;
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

  /** Measures the slot and, while streaming, applies the lag guard (changes-lag-guard.ts). */
  private checkLag(): Promise<void> {
    return checkSlotLag({
      tracked: this.tracked,
      pool: this.opts.pool,
      maxLagBytes: this.opts.maxLagBytes,
      log: this.log,
      stopped: () => this.stopped,
      streaming: () => this.stream?.status === 'up',
      tell: (message) => {
        for (const sub of this.live) sub.notify('error', message);
      },
      recreate: async (pool) => {
        await this.handMessagesBack();
        await this.stream?.stop();
        await this.dropSlot(pool);
        this.starts.reset();
        this.heldAckLsn = null;
        this.batches.clear();
        await this.startStream();
      },
    });
  }

  private async checkIdle(): Promise<void> {
    if (this.stopped || !this.idle.due(this.subscriberCount)) return;
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
    const running = this.batches.running;
    if (running) await settledWithin(running, 5000);
    // Frames already handed out still go to their sockets (and, in a cluster, their position to the stream).
    this.flusher.stop();
    const acking = this.acks.acking;
    if (acking) await settledWithin(acking, 5000);
    if (handBack) await this.handMessagesBack();
    // stop() sends the final acknowledged position itself.
    await this.stream?.stop();
    this.stream = null;
    if (dropSlot) await this.dropSlot(await this.opts.pool()).catch((err: unknown) => this.log.warn({ err }, 'dropping the changes slot failed'));
    this.opts.onStopped?.();
  }
}
