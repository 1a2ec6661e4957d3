import type { CarriedMessages } from './changes-messages.js';
import type { PendingCommit, RowChange } from './changes-dispatch.js';
import type { Lsn, PgTimestamp, RelationMessage } from './pgoutput/index.js';
import type { ReplicationEvent } from './stream-types.js';

/** What turning the stream's messages into committed transactions needs of its changes engine. */
export interface CommitHost {
  /** A relation the stream has described (none before it runs). */
  relation(id: number): RelationMessage | undefined;
  /** The realtime.messages rows this stream carries for the database-broadcast pipeline, if it does. */
  carried(): CarriedMessages | null;
  relationChanged(relation: RelationMessage): void;
  hasSubscribers(): boolean;
  /** Nothing under way or waiting: a commit with nothing to hand out may be confirmed at once. */
  batchesIdle(): boolean;
  confirm(lsn: Lsn): void;
  /** Queues a committed transaction; returns a promise to wait for when the stream must hold back. */
  push(commit: PendingCommit): Promise<void> | undefined;
}

/**
 * A changes engine's transactions, assembled from the stream's messages: each row change joins its transaction,
 * realtime.messages rows go to the carried pipeline, and a commit is queued for dispatch (or confirmed at once when it
 * has nothing to hand out and nothing waits before it).
 */
export class CommitAssembler {
  /** The commit record of the last transaction the stream delivered in this run. */
  lastCommitLsn: Lsn = 0n;
  private txn: RowChange[] | null = null;
  private commitTime: PgTimestamp = 0n;
  private xid = 0;

  constructor(private readonly host: CommitHost) {}

  /** Synchronous for every message but a commit with changes to hand out: the queue then runs them inline. */
  onEvent(event: ReplicationEvent): void | Promise<void> {
    const m = event.message;
    const { host } = this;
    switch (m.tag) {
      case 'begin':
        this.txn = [];
        this.commitTime = m.commitTime;
        this.xid = m.xid;
        host.carried()?.begin(m.finalLsn, m.commitTime);
        return;
      case 'relation':
        host.relationChanged(m);
        return;
      case 'insert':
      case 'update':
      case 'delete': {
        const relation = host.relation(m.relationId);
        if (!relation || !this.txn) return;
        if (host.carried()?.take(relation, m.tag, m.tag === 'delete' ? null : m.new)) return;
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
        host.carried()?.commit();
        let changes = this.txn ?? [];
        this.txn = null;
        // A reconnected stream starts again at the confirmed position: what this run took already is not taken twice.
        if (m.commitLsn <= this.lastCommitLsn) changes = [];
        else this.lastCommitLsn = m.commitLsn;
        if (changes.length > 0 && !host.hasSubscribers()) changes = [];
        // Nothing to hand out and nothing ahead of it: confirm at once. Otherwise it joins the next batch, so its
        // position is confirmed only after the changes committed before it.
        if (changes.length === 0 && host.batchesIdle()) {
          if (event.ackLsn !== null) host.confirm(event.ackLsn);
          return;
        }
        return host.push({ changes, commitTime: this.commitTime, xid: this.xid, commitLsn: m.commitLsn, ackLsn: event.ackLsn });
      }
      default:
        return;
    }
  }
}
