import type { Logger } from '../observability/logger.js';
import type { ChangesDispatcher, PendingCommit, PreparedDispatch } from './changes-dispatch.js';
import type { FrameFlusher } from './changes-flush.js';
import type { ChangesRateGate } from './changes-rate.js';
import type { ChangesSubscriber } from './changes-subscribers.js';
import type { Lsn } from './pgoutput/index.js';

/** Rows of waiting transactions past which the stream waits for the dispatch under way. */
const MAX_BATCH_ROWS = 10_000;
/** Rows dispatched together at most (a larger transaction still goes whole). */
const DISPATCH_ROWS = 1000;

/** What the batch loop needs from its changes engine. */
export interface BatchHost {
  dispatcher: ChangesDispatcher;
  flusher: FrameFlusher;
  rate: ChangesRateGate;
  log: Logger;
  /** One batch's checks may start while the one before waits for its own (see BatchLoop). */
  pipeline: boolean;
  stopped(): boolean;
  /** In a cluster: whether this node still owns the tenant; nothing is prepared or handed out while it may not. */
  owns(): boolean;
  /** Between batches, nothing under way: joiners whose start has come go live (see BatchLoop.nextCommitLsn). */
  betweenBatches(): Promise<void>;
  /** A batch was taken: whoever may be owed its commits keeps them. Returns the live subscribers it goes to. */
  taken(txns: readonly PendingCommit[]): readonly ChangesSubscriber[];
  /** False while someone is joining: joiners go live only between batches, with none under way. */
  mayRunAhead(): boolean;
  /** Every change of the batch up to this position was handed out. */
  confirm(lsn: Lsn): void;
  /** Settles when the node's fan-out can take the next batch (null: now); see LocalPublisher.changesRoom. */
  room?(): Promise<void> | null;
  onDeliveries?: (n: number) => void;
}

/** A batch taken for dispatch: its transactions, and its matching and visibility under way. */
interface Batch {
  txns: PendingCommit[];
  prepared: Promise<PreparedDispatch | null>;
}

/**
 * The committed transactions of a changes engine on their way out, in batches: the transactions that committed
 * while one batch was dispatched (waiting on RLS queries, say) go out together in the next, with one visibility
 * check per (table, claims) for all of them. With `pipeline`, commits that arrive while a batch waits for its checks
 * start the next batch's checks (one batch ahead at most); batches are still handed out and confirmed in commit
 * order, and each waits until its own transactions are visible before its rows are looked up.
 */
export class BatchLoop {
  private readonly waiting = new CommitQueue(DISPATCH_ROWS);
  private dispatching: Promise<void> | null = null;
  /** Wakes the loop when a commit joins the queue while a batch's visibility is asked. */
  private arrival: (() => void) | null = null;
  /**
   * Batches prepared but not handed out because ownership lapsed meanwhile, in commit order: handed out first if it
   * is sure again (a Redis blip), dropped with the engine otherwise (the next owner starts from the confirmed position).
   */
  private parked: Batch[] = [];

  constructor(private readonly host: BatchHost) {}

  /** The loop under way, or null when nothing waits. */
  get running(): Promise<void> | null {
    return this.dispatching;
  }

  /** The first commit not handed out yet; null when none waits. */
  get nextCommitLsn(): Lsn | null {
    return this.parked[0]?.txns[0]?.commitLsn ?? this.waiting.nextCommitLsn;
  }

  /** Nothing under way and nothing waiting: a commit with nothing to hand out may be confirmed at once. */
  get idle(): boolean {
    return this.dispatching === null && this.waiting.empty && this.parked.length === 0;
  }

  /** Commits wait (over the rate, or while ownership was unsure). */
  get hasWork(): boolean {
    return !this.waiting.empty || this.parked.length > 0;
  }

  /** A committed transaction joins the queue; returns a promise to wait for when the stream must hold back. */
  push(commit: PendingCommit): Promise<void> | undefined {
    this.waiting.push(commit);
    this.arrival?.();
    this.kick();
    // A large batch holds back the stream (the queue keeps the next messages) until the dispatch under way ends.
    return this.waiting.rows >= MAX_BATCH_ROWS ? (this.dispatching ?? undefined) : undefined;
  }

  /** Runs the loop if it is not running (joiners may be waiting for it to take them live). */
  kick(): void {
    this.dispatching ??= this.run();
  }

  /** The slot was recreated: what waited is gone with it. */
  clear(): void {
    this.waiting.clear();
    this.parked = [];
  }

  /** Hands a batch to the given subscribers (queued; the frames leave at the end of the loop turn). */
  async deliver(txns: readonly PendingCommit[], targets: readonly ChangesSubscriber[]): Promise<void> {
    this.handOut(await this.prepare(txns, targets));
  }

  private async run(): Promise<void> {
    // Yield once, so the commits of the rest of this read join the first batch.
    await null;
    const { host } = this;
    let ahead: Batch | null = null;
    try {
      for (;;) {
        let batch = ahead ?? this.parked.shift() ?? null;
        ahead = null;
        if (batch === null) {
          // Held while over the changes rate; stopped while held: the waiting transactions were not confirmed, so
          // they come again after a restart.
          if (!this.waiting.empty && !(await host.rate.pass(this.waiting.rows, () => host.stopped()))) break;
          // Not the owner any more (or not sure of it): the next owner resumes from the confirmed position.
          if (!host.owns()) break;
          await host.betweenBatches();
          if (this.waiting.empty) break;
          batch = this.take();
        }
        if (host.pipeline && this.parked.length === 0) ahead = await this.takeAhead(batch);
        // The fan-out paces what it got over loop turns: the stream holds back (its queue pauses the connection)
        // rather than the frames piling up in memory.
        const room = host.room?.();
        if (room) await room;
        const prepared = await batch.prepared;
        // Ownership lapsed while its visibility was asked: it waits (with the batch ahead) for ownership to be sure.
        if (!host.owns()) {
          this.parked.unshift(...(ahead ? [batch, ahead] : [batch]));
          break;
        }
        this.handOut(prepared);
        let ackLsn: Lsn | null = null;
        for (const t of batch.txns) if (t.ackLsn !== null) ackLsn = t.ackLsn;
        if (ackLsn !== null) host.confirm(ackLsn);
      }
    } finally {
      this.dispatching = null;
    }
  }

  /** Takes the next batch and starts its matching and visibility checks. */
  private take(): Batch {
    const txns = this.waiting.take();
    return { txns, prepared: this.prepare(txns, this.host.taken(txns)) };
  }

  /**
   * Until `batch` is ready to be handed out: if commits arrive meanwhile, takes the next batch (returned), unless
   * someone is joining or the rate holds changes back.
   */
  private async takeAhead(batch: Batch): Promise<Batch | null> {
    const { host } = this;
    let ready = false;
    const settled = batch.prepared.then(() => {
      ready = true;
    });
    while (!ready) {
      if (!host.stopped() && !this.waiting.empty && host.owns() && host.mayRunAhead() && host.rate.allowsNow()) return this.take();
      await Promise.race([settled, new Promise<void>((resolve) => (this.arrival = resolve))]);
      this.arrival = null;
    }
    return null;
  }

  /** Matching and visibility of a batch; null (logged) when it kept failing: those changes are not delivered. */
  private prepare(txns: readonly PendingCommit[], targets: readonly ChangesSubscriber[]): Promise<PreparedDispatch | null> {
    return this.host.dispatcher.prepare(txns, targets).catch((err: unknown) => {
      this.failed(err);
      return null;
    });
  }

  private handOut(prepared: PreparedDispatch | null): void {
    if (!prepared) return;
    try {
      const { deliveries, touched, queued } = this.host.dispatcher.handOut(prepared);
      if (deliveries > 0) this.host.onDeliveries?.(deliveries);
      this.host.flusher.written(touched, queued);
    } catch (err) {
      this.failed(err);
    }
  }

  private failed(err: unknown): void {
    this.host.log.error({ err, error_code: 'UnableToDispatchChanges' }, 'dispatching changes kept failing; these changes are not delivered');
  }
}

/** Committed transactions waiting for the dispatch under way, handed out in batches of whole transactions. */
class CommitQueue {
  private items: PendingCommit[] = [];
  /** Rows waiting, all transactions together. */
  rows = 0;

  constructor(
    /** Rows dispatched together at most (a larger transaction still goes whole). */
    private readonly batchRows: number,
  ) {}

  get empty(): boolean {
    return this.items.length === 0;
  }

  /** Where the first waiting transaction's commit record is; null when none waits. */
  get nextCommitLsn(): Lsn | null {
    return this.items[0]?.commitLsn ?? null;
  }

  push(commit: PendingCommit): void {
    this.items.push(commit);
    this.rows += commit.changes.length;
  }

  /** The next batch: whole transactions up to `batchRows` rows, at least one, so a long backlog starts early. */
  take(): PendingCommit[] {
    let n = 0;
    let rows = 0;
    while (n < this.items.length && (n === 0 || rows + this.items[n]!.changes.length <= this.batchRows)) rows += this.items[n++]!.changes.length;
    this.rows -= rows;
    return this.items.splice(0, n);
  }

  clear(): void {
    this.items = [];
    this.rows = 0;
  }
}
