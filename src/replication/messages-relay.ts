import type { PubSubMessage } from '../shared/messages.js';
import type { Logger } from '../observability/logger.js';
import type { Observer } from '../observability/metrics.js';
import { columnIndex, DropLog, readRow, rowToPubSub, timestampTextToEpochMs, type ColumnIndex } from './messages-rows.js';
import { pgTimestampToEpochMs, type Lsn, type PgTimestamp, type RelationMessage, type TupleData } from './pgoutput/index.js';

/** What the relay measures of each broadcast it hands to pub/sub (upstream's broadcast_from_database families). */
export interface MessagesRelayMetrics {
  payloadBytes: Observer;
  /** Milliseconds from the transaction's commit to the end of the local fan-out. */
  latencyCommittedAt: Observer;
  /** Milliseconds from the row's inserted_at (a timestamp without time zone, read as UTC as upstream does). */
  latencyInsertedAt: Observer;
}

export interface MessagesRelayOptions {
  tenantId: string;
  /** Hands a message to pub/sub. Called synchronously, in commit order. */
  publish: (msg: PubSubMessage) => void;
  log: Logger;
  /** Largest payload (bytes) broadcast, read per row so limit changes apply at once. */
  payloadLimitBytes: () => number;
  /** The tenant's events limiter: false drops the row. */
  allow?: () => boolean;
  metrics?: MessagesRelayMetrics;
}

/**
 * Broadcast from the database for one tenant (spec §4.6), whichever replication stream reads the rows. The database
 * broadcast's own stream normally does; while Postgres Changes streams the tenant, its stream reads realtime.messages
 * too, so that one walsender decodes the WAL instead of two. During a hand-over both streams read the same
 * transactions: each transaction is broadcast by the first stream that reaches it, once, and claims only move
 * forward, so the broadcasts keep commit order.
 */
export class MessagesRelay {
  /** Transactions committed before this are not broadcast: where this run's broadcasting began. */
  private floor: Lsn | null = null;
  /** The newest transaction claimed. */
  private last: Lsn = 0n;
  private readonly columns = new WeakMap<RelationMessage, ColumnIndex | null>();
  private readonly drops: DropLog;

  constructor(private readonly opts: MessagesRelayOptions) {
    this.drops = new DropLog(opts.log);
  }

  /** The start of the first stream of this run: messages committed earlier (while nobody listened) stay unsent. */
  startsAt(lsn: Lsn): void {
    this.floor ??= lsn;
  }

  /** A new reader for one stream, which tells it the transactions it reads. */
  reader(): MessagesReader {
    return new MessagesReader(this);
  }

  /** True when the transaction committing at `commitLsn` is this stream's to broadcast (the first to ask). */
  claim(commitLsn: Lsn): boolean {
    if (this.floor === null || commitLsn < this.floor || commitLsn <= this.last) return false;
    this.last = commitLsn;
    return true;
  }

  /** One inserted row of a claimed transaction: broadcast if it is a realtime.messages broadcast row. */
  insert(relation: RelationMessage, tuple: TupleData, committedAtMs: number | null = null): void {
    let index = this.columns.get(relation);
    if (index === undefined) this.columns.set(relation, (index = columnIndex(relation)));
    if (index === null) return;
    const row = readRow(index, tuple);
    const outcome = rowToPubSub(this.opts.tenantId, row, this.opts.payloadLimitBytes());
    if (!outcome.ok) {
      if (outcome.reason !== 'not_broadcast') this.drops.note(outcome.reason);
      return;
    }
    if (this.opts.allow && !this.opts.allow()) {
      this.drops.note('rate_limited');
      return;
    }
    this.opts.publish(outcome.msg);
    const metrics = this.opts.metrics;
    if (!metrics) return;
    metrics.payloadBytes.observe(outcome.size);
    // Clocks of the database and this node may differ by a little: a negative latency counts as none.
    const now = Date.now();
    if (committedAtMs !== null) metrics.latencyCommittedAt.observe(Math.max(0, now - committedAtMs));
    const insertedAtMs = timestampTextToEpochMs(row.insertedAt!);
    if (!Number.isNaN(insertedAtMs)) metrics.latencyInsertedAt.observe(Math.max(0, now - insertedAtMs));
  }
}

/**
 * One stream's view of the relay. The rows of a transaction wait for its commit and go out only if this stream
 * claims it then: a stream stopped in the middle of a transaction claims nothing, and the other stream, still
 * reading during a hand-over, broadcasts that transaction whole.
 */
export class MessagesReader {
  private commitLsn: Lsn | null = null;
  private commitTime: PgTimestamp | null = null;
  private rows: [RelationMessage, TupleData][] = [];

  constructor(private readonly relay: MessagesRelay) {}

  /** A transaction starts; `commitTime` (pgoutput's, from Begin) feeds the commit-to-fan-out latency. */
  begin(commitLsn: Lsn, commitTime: PgTimestamp | null = null): void {
    this.commitLsn = commitLsn;
    this.commitTime = commitTime;
    this.rows = [];
  }

  insert(relation: RelationMessage, tuple: TupleData): void {
    if (this.commitLsn !== null) this.rows.push([relation, tuple]);
  }

  commit(): void {
    const lsn = this.commitLsn;
    const rows = this.rows;
    const committedAtMs = this.commitTime === null ? null : pgTimestampToEpochMs(this.commitTime);
    this.commitLsn = null;
    this.commitTime = null;
    this.rows = [];
    if (lsn === null || rows.length === 0 || !this.relay.claim(lsn)) return;
    for (const [relation, tuple] of rows) this.relay.insert(relation, tuple, committedAtMs);
  }

  /** True for realtime.messages (the relation the messages publication publishes, via its partition root). */
  static isMessages(relation: RelationMessage): boolean {
    return relation.namespace === 'realtime' && relation.name === 'messages';
  }
}
