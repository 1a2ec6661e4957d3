import { bindingAcceptsAction, bindingMatchesTable, type Binding } from './changes/index.js';
import type { PendingCommit, RowChange } from './changes-dispatch.js';
import type { ChangesSubscriber, PendingSubscriber } from './changes-subscribers.js';
import type { Lsn } from './pgoutput/index.js';

/**
 * Where each subscriber's changes start.
 *
 * A new subscription gets exactly the transactions whose commit record lies at or past the WAL insert position read
 * while it was put on record (before "Subscribed to PostgreSQL" is sent): nothing committed before, however far
 * behind the stream is, and everything committed after. A rejoin that continues a subscriber of an earlier run
 * gets what was held for that one (every commit since the stream started), then everything after, and all of it
 * is matched, RLS-checked and shaped for the rejoiner's own bindings and claims.
 */

/**
 * The commits taken for dispatch since the stream started, kept while subscribers of an earlier run may still
 * rejoin: a rejoin is owed all of them, since its predecessor's position was not confirmed past them. Only the
 * changes a held subscriber's bindings could want (by table and event) are kept.
 */
export class HeldLog {
  private txns: PendingCommit[] = [];

  append(txns: readonly PendingCommit[], bindings: readonly Binding[]): void {
    for (const t of txns) {
      const changes = t.changes.filter((c) => wanted(c, bindings));
      if (changes.length > 0) this.txns.push(changes.length === t.changes.length ? t : { ...t, changes });
    }
  }

  snapshot(): PendingCommit[] {
    return [...this.txns];
  }

  clear(): void {
    this.txns = [];
  }

  get size(): number {
    return this.txns.length;
  }
}

function wanted(change: RowChange, bindings: readonly Binding[]): boolean {
  // pgoutput sends an empty namespace for pg_catalog.
  const schema = change.relation.namespace || 'pg_catalog';
  return bindings.some((b) => bindingMatchesTable(b, schema, change.relation.name) && bindingAcceptsAction(b, change.type));
}

interface Joiner {
  /** Commits whose commit record is at or past this are its; null until its subscription is on record. */
  from: Lsn | null;
  /** Commits taken for dispatch that it is owed, in commit order (all of them while `from` is unknown). */
  owed: PendingCommit[];
  /** The held subscriber it continues, until the rejoin is on record (if recording fails, it is held again). */
  claimed: PendingSubscriber | null;
}

/**
 * Who is owed which commits before going live: the subscribers of an earlier run (pending, with the commits held
 * for them) and the subscribers on their way in (joiners). From the moment a subscriber registers, every commit
 * taken for dispatch that it may be owed is kept for it; once it is on record its start is known. It goes live
 * (joins the subscribers every dispatch serves) once no commit before its start still waits, right after being
 * handed what it is owed.
 */
export class SubscriberStarts<S extends ChangesSubscriber> {
  private pending: PendingSubscriber[] = [];
  private readonly held = new HeldLog();
  private readonly joiners = new Map<S, Joiner>();
  private graceOver = false;

  /** The subscribers of an earlier run: every commit taken from now on is held for them. */
  hold(pending: readonly PendingSubscriber[]): void {
    this.pending = [...pending];
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  /** Positions must not be confirmed: commits are held for an earlier run, or a joiner is (or may be) owed some. */
  get holding(): boolean {
    if (this.pending.length > 0) return true;
    for (const joiner of this.joiners.values()) if (joiner.from === null || joiner.owed.length > 0) return true;
    return false;
  }

  get joining(): number {
    return this.joiners.size;
  }

  isJoining(sub: S): boolean {
    return this.joiners.has(sub);
  }

  /**
   * Registers a subscriber; if it is the rejoin a held subscriber waits for, it continues that one and is owed what
   * was held (returned, so that its record can go once the rejoin is on record). Synchronous: every commit taken for
   * dispatch from now on is kept for it.
   */
  register(sub: S): PendingSubscriber | null {
    // The same subscriber coming back (its node re-subscribes it with a new owner of the tenant) first.
    let i = this.pending.findIndex((p) => p.instance === sub.instance);
    if (i < 0) i = this.pending.findIndex((p) => p.claimableBy(sub));
    const claimed = i >= 0 ? this.pending.splice(i, 1)[0]! : null;
    this.joiners.set(sub, { from: null, owed: claimed ? this.held.snapshot() : [], claimed });
    return claimed;
  }

  /**
   * Where a registered subscriber that continues a record starts (the first position it is owed): past `after`, the
   * commit it says it got last (it moved here from another owner of the tenant), else where the record says it
   * starts (0 for a record that does not say: everything held). Null for a new subscription, which starts where it is
   * put on record.
   */
  continuedFrom(sub: S, after: Lsn | null): Lsn | null {
    const claimed = this.joiners.get(sub)?.claimed;
    if (!claimed) return null;
    if (after !== null) return after + 1n;
    return claimed.start ?? 0n;
  }

  /**
   * It is on record, `at` read meanwhile: a new subscriber is owed the commits at or past it, one that continues a
   * record those from where that one starts (see continuedFrom). Returns where its commits start (the first position
   * it is owed), null if it is not joining.
   */
  recorded(sub: S, at: Lsn, after: Lsn | null = null): Lsn | null {
    const joiner = this.joiners.get(sub);
    if (!joiner) return null;
    const from = this.continuedFrom(sub, after) ?? at;
    joiner.from = from;
    joiner.claimed = null;
    joiner.owed = joiner.owed.filter((t) => t.commitLsn >= from);
    this.releaseHeld();
    return from;
  }

  /**
   * A joiner leaves before going live (or could not be put on record). A held subscriber it had claimed without
   * being on record is held again, or, once the grace period is over, returned for its record to be removed.
   */
  leave(sub: S): PendingSubscriber | null {
    const claimed = this.joiners.get(sub)?.claimed ?? null;
    this.joiners.delete(sub);
    if (claimed && !this.graceOver) this.pending.unshift(claimed);
    this.releaseHeld();
    return claimed && this.graceOver ? claimed : null;
  }

  /** A batch is taken for dispatch to the live subscribers: joiners and held subscribers keep what they may be owed. */
  taken(txns: readonly PendingCommit[]): void {
    for (const joiner of this.joiners.values()) {
      for (const t of txns) if (t.changes.length > 0 && (joiner.from === null || t.commitLsn >= joiner.from)) joiner.owed.push(t);
    }
    const heldFor = [...this.pending, ...this.claimed()];
    if (heldFor.length > 0) this.held.append(txns, heldFor.flatMap((p) => p.bindings));
  }

  /** The joiners that can go live when the next commit to be taken is at `next`, each with what it is owed first. */
  ready(next: Lsn): { sub: S; owed: PendingCommit[] }[] {
    const out: { sub: S; owed: PendingCommit[] }[] = [];
    for (const [sub, joiner] of this.joiners) if (joiner.from !== null && joiner.from <= next) out.push({ sub, owed: joiner.owed });
    return out;
  }

  /**
   * It was handed `owed` (from `ready`) and goes live: true, unless it left (and came back) meanwhile, in which case
   * its new registration stays.
   */
  admitted(sub: S, owed: readonly PendingCommit[]): boolean {
    if (this.joiners.get(sub)?.owed !== owed) return false;
    this.joiners.delete(sub);
    return true;
  }

  /** A held subscriber that will not rejoin (its channel left for good): returned when it was held. */
  drop(instance: string): PendingSubscriber | null {
    const i = this.pending.findIndex((p) => p.instance === instance);
    if (i < 0) return null;
    const [dropped] = this.pending.splice(i, 1);
    this.releaseHeld();
    return dropped!;
  }

  /** The grace period is over: the held subscribers that did not rejoin are returned, their commits dropped. */
  expire(): PendingSubscriber[] {
    this.graceOver = true;
    const expired = this.pending;
    this.pending = [];
    this.releaseHeld();
    return expired;
  }

  /** Everything not handed out yet was skipped (the lag guard recreated the slot): nobody is owed anything. */
  reset(): void {
    this.pending = [];
    this.held.clear();
    for (const joiner of this.joiners.values()) joiner.owed = [];
  }

  /** The held subscribers claimed by rejoins not on record yet. */
  private claimed(): PendingSubscriber[] {
    const out: PendingSubscriber[] = [];
    for (const joiner of this.joiners.values()) if (joiner.claimed) out.push(joiner.claimed);
    return out;
  }

  private releaseHeld(): void {
    if (this.pending.length === 0 && this.claimed().length === 0) this.held.clear();
  }
}
