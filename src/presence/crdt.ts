/**
 * State-based presence CRDT: an observed-remove set of presence entries with per-replica dots and a causal context.
 *
 * - Every replica (node) adds and removes only its own entries; a dot (replicaId, counter) names each add.
 * - A removal is "dot in the causal context, entry absent", so it beats any late or duplicated copy of the add, with
 *   no timestamps involved. Merge is the lattice join: commutative, associative, idempotent (see crdt-join.ts for
 *   the reference version and test/presence for the properties).
 * - Local operations accumulate one delta (`takeDelta`); `snapshot` is the full state; both are plain JSON and are
 *   merged by the same `merge`.
 * - Counters are Lamport-like (a new dot is above every counter seen), so ordering entries by dot follows causality.
 *   Skipped counters are put in the context too, so the context of a replica stays one interval when nothing is lost.
 *
 * Replica death: `removeReplica(r)` drops r's entries (reported as leaves) and marks r removed. While removed,
 * everything about r in later deltas or snapshots is ignored, whatever its counter, so stale copies held by slower
 * nodes cannot bring r's entries back. r's context is forgotten too, so this node's snapshots never tell others to
 * drop r's entries: each node decides on r's death from its own view. If r turns out to be alive (the cluster layer
 * hears from it again), call `reviveReplica(r)` and merge a fresh snapshot of r right away: r's own context covers
 * all its dots, so anything it removed in the meantime stays removed. A node that restarts must use a new replicaId
 * (e.g. node name plus boot id); as a safety net, dots of our own id that we never made (from an earlier incarnation)
 * are absorbed into our context and the next delta, which removes them everywhere.
 */
import {
  DotContext,
  insertInterval,
  intervalsCover,
  intervalsLength,
  normalizeIntervals,
  type Interval,
} from './crdt-context.js';
import { PresenceChanges, type TrackResult } from './crdt-changes.js';
import {
  compareEntries,
  decodeEntry,
  encodeEntry,
  groupByKey,
  refFor,
  type PresenceEntry,
  type PresenceList,
  type PresenceMeta,
  type PresenceState,
  type WireEntry,
} from './crdt-wire.js';

export { PresenceChanges, type TrackResult } from './crdt-changes.js';
export { canonicalState, joinStates } from './crdt-join.js';
export {
  parsePresenceState,
  refFor,
  type Interval,
  type PresenceDiff,
  type PresenceEntry,
  type PresenceList,
  type PresenceMeta,
  type PresenceState,
  type WireEntry,
  type WireMeta,
} from './crdt-wire.js';

const byCounter = (a: PresenceEntry, b: PresenceEntry): number => a.counter - b.counter;

function ownValue<T>(rec: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}

export class PresenceReplica {
  /** Highest own counter used; our own context is always exactly [1, clock]. */
  private clock = 0;
  /** Highest counter seen from anyone, so that new dots sort after everything already observed. */
  private lamport = 0;
  private readonly ctx = new DotContext();
  private readonly byReplica = new Map<string, Map<number, PresenceEntry>>();
  private readonly byTopic = new Map<string, Set<PresenceEntry>>();
  /** Own entries: pid -> topic -> key -> entry, for track lookups and untrackAll. */
  private readonly own = new Map<string, Map<string, Map<string, PresenceEntry>>>();
  private readonly removed = new Set<string>();
  private pendingEntries = new Map<number, PresenceEntry>();
  private pendingCtx: Interval[] = [];
  private count = 0;

  constructor(readonly replicaId: string) {
    if (replicaId === '') throw new TypeError('replicaId must not be empty');
  }

  // ---- local operations -------------------------------------------------------------------------------------------

  /**
   * Tracks (topic, pid, key) with `meta`, replacing an existing entry of the same triple (new ref, `prev` set). The
   * same meta again is a no-op (`changed: false`), as the realtime protocol requires. `meta` must not be mutated
   * afterwards.
   */
  track(topic: string, pid: string, key: string, meta: PresenceMeta): TrackResult {
    const prev = this.localEntry(topic, pid, key);
    if (prev !== null && jsonEqual(prev.meta, meta)) return { entry: prev, prev: null, changed: false };
    if (prev !== null) this.dropOwn(prev);
    const counter = this.nextCounter();
    const base = { replica: this.replicaId, counter, topic, key, pid, meta, ref: refFor(this.replicaId, counter) };
    const entry: PresenceEntry = prev === null ? base : { ...base, prevRef: prev.ref };
    this.insert(entry);
    this.pendingEntries.set(counter, entry);
    return { entry, prev, changed: true };
  }

  /** Like track, but only when the triple is already tracked (null otherwise). */
  update(topic: string, pid: string, key: string, meta: PresenceMeta): TrackResult | null {
    return this.localEntry(topic, pid, key) === null ? null : this.track(topic, pid, key, meta);
  }

  /** Removes one own entry; returns it, or null when it was not tracked. */
  untrack(topic: string, pid: string, key: string): PresenceEntry | null {
    const e = this.localEntry(topic, pid, key);
    if (e !== null) this.dropOwn(e);
    return e;
  }

  /** Removes every entry of a closed channel/connection; returns them in dot order. */
  untrackAll(pid: string): PresenceEntry[] {
    const gone = this.localEntries(pid);
    for (const e of gone) this.dropOwn(e);
    return gone;
  }

  // ---- replication -------------------------------------------------------------------------------------------------

  /** The delta of the local operations since the last call (null when there were none). */
  takeDelta(): PresenceState | null {
    if (this.pendingCtx.length === 0) return null;
    const entries = [...this.pendingEntries.values()].sort(byCounter).map(encodeEntry);
    const delta: PresenceState = {
      v: 1,
      ctx: Object.fromEntries([[this.replicaId, this.pendingCtx]]),
      entries: entries.length > 0 ? Object.fromEntries([[this.replicaId, entries]]) : {},
    };
    this.pendingEntries = new Map();
    this.pendingCtx = [];
    return delta;
  }

  get hasPendingDelta(): boolean {
    return this.pendingCtx.length > 0;
  }

  /** Full state, for a replica that catches up. Removed replicas are left out entirely (see the class comment). */
  snapshot(): PresenceState {
    const entries: [string, WireEntry[]][] = [];
    for (const [r, byC] of this.byReplica) entries.push([r, [...byC.values()].sort(byCounter).map(encodeEntry)]);
    return { v: 1, ctx: this.ctx.toJSON(), entries: Object.fromEntries(entries) };
  }

  /**
   * Joins a delta or snapshot into this replica and returns what became visible or invisible. Untrusted input should
   * go through parsePresenceState first.
   */
  merge(state: PresenceState): PresenceChanges {
    const changes = new PresenceChanges();
    for (const r of new Set([...Object.keys(state.ctx), ...Object.keys(state.entries)])) {
      const ivs = normalizeIntervals(ownValue(state.ctx, r) ?? []);
      const wires = ownValue(state.entries, r) ?? [];
      if (r === this.replicaId) this.absorbOwnHistory(ivs, wires);
      else if (!this.removed.has(r)) this.mergeReplica(r, ivs, wires, changes);
    }
    return changes;
  }

  /** Drops every entry of a dead replica (reported as leaves) and ignores it from now on. */
  removeReplica(replicaId: string): PresenceChanges {
    if (replicaId === this.replicaId) throw new Error('a replica cannot remove itself');
    const changes = new PresenceChanges();
    const mine = this.byReplica.get(replicaId);
    if (mine !== undefined) {
      for (const e of [...mine.values()]) {
        this.remove(e);
        changes.leave(e);
      }
    }
    this.ctx.delete(replicaId);
    this.removed.add(replicaId);
    return changes;
  }

  /** Accepts a removed replica again; merge its snapshot next. Returns false when it was not removed. */
  reviveReplica(replicaId: string): boolean {
    return this.removed.delete(replicaId);
  }

  isRemoved(replicaId: string): boolean {
    return this.removed.has(replicaId);
  }

  /** Per replica, the highest counter up to which every dot is known. */
  versionVector(): Record<string, number> {
    const out: [string, number][] = [];
    for (const r of this.ctx.replicas()) out.push([r, this.ctx.prefix(r)]);
    return Object.fromEntries(out);
  }

  /** Replicas with holes in what we know (a delta was lost or is late): candidates for a snapshot catch-up. */
  gaps(): string[] {
    const out: string[] = [];
    for (const r of this.ctx.replicas()) if (this.ctx.intervals(r).length > 1 || this.ctx.prefix(r) === 0) out.push(r);
    return out;
  }

  // ---- queries -----------------------------------------------------------------------------------------------------

  /** presence_state of a topic: keys and metas in dot order. */
  list(topic: string): PresenceList {
    return groupByKey(this.entries(topic), false);
  }

  entries(topic: string): PresenceEntry[] {
    const set = this.byTopic.get(topic);
    return set === undefined ? [] : [...set].sort(compareEntries);
  }

  topics(): string[] {
    return [...this.byTopic.keys()];
  }

  /** Number of live entries, all replicas. */
  get size(): number {
    return this.count;
  }

  localEntry(topic: string, pid: string, key: string): PresenceEntry | null {
    return this.own.get(pid)?.get(topic)?.get(key) ?? null;
  }

  /** Own entries of a pid, in dot order. */
  localEntries(pid: string): PresenceEntry[] {
    const byTopic = this.own.get(pid);
    if (byTopic === undefined) return [];
    const out: PresenceEntry[] = [];
    for (const byKey of byTopic.values()) for (const e of byKey.values()) out.push(e);
    return out.sort(byCounter);
  }

  // ---- internals ---------------------------------------------------------------------------------------------------

  private nextCounter(): number {
    const counter = Math.max(this.clock, this.lamport) + 1;
    // Skipped counters are covered as well, which keeps our context (and what others learn of it) contiguous.
    this.ctx.add(this.replicaId, this.clock + 1, counter);
    insertInterval(this.pendingCtx, this.clock + 1, counter);
    this.clock = counter;
    this.lamport = counter;
    return counter;
  }

  private dropOwn(e: PresenceEntry): void {
    this.remove(e);
    this.pendingEntries.delete(e.counter);
    insertInterval(this.pendingCtx, e.counter, e.counter);
  }

  private mergeReplica(r: string, ivs: Interval[], wires: WireEntry[], changes: PresenceChanges): void {
    const remote = new Set<number>();
    for (const w of wires) {
      const c = w[0];
      remote.add(c);
      if (c > this.lamport) this.lamport = c;
      if (this.byReplica.get(r)?.has(c) === true || this.ctx.covers(r, c)) continue;
      const e = decodeEntry(r, w);
      this.insert(e);
      this.ctx.add(r, c);
      changes.join(e);
    }
    const local = this.byReplica.get(r);
    if (local !== undefined && ivs.length > 0) {
      // Removed there: seen by the other side (in its context) but absent from its entries.
      const doomed: PresenceEntry[] = [];
      if (intervalsLength(ivs) <= local.size) {
        for (const [a, b] of ivs) {
          for (let c = a; c <= b; c++) {
            const e = local.get(c);
            if (e !== undefined && !remote.has(c)) doomed.push(e);
          }
        }
      } else {
        for (const [c, e] of local) if (!remote.has(c) && intervalsCover(ivs, c)) doomed.push(e);
      }
      for (const e of doomed) {
        this.remove(e);
        changes.leave(e);
      }
    }
    for (const [a, b] of ivs) this.ctx.add(r, a, b);
    const top = ivs.length > 0 ? ivs[ivs.length - 1][1] : 0;
    if (top > this.lamport) this.lamport = top;
  }

  /**
   * We alone decide about our own dots, so others' views of them never remove anything here. Dots above our clock
   * can only come from an earlier incarnation with the same id: cover them so nothing we create collides with them
   * and so our next delta removes them elsewhere.
   */
  private absorbOwnHistory(ivs: Interval[], wires: WireEntry[]): void {
    let top = ivs.length > 0 ? ivs[ivs.length - 1][1] : 0;
    for (const w of wires) if (w[0] > top) top = w[0];
    if (top <= this.clock) return;
    this.ctx.add(this.replicaId, this.clock + 1, top);
    insertInterval(this.pendingCtx, this.clock + 1, top);
    this.clock = top;
    if (top > this.lamport) this.lamport = top;
  }

  private insert(e: PresenceEntry): void {
    let byC = this.byReplica.get(e.replica);
    if (byC === undefined) {
      byC = new Map();
      this.byReplica.set(e.replica, byC);
    }
    byC.set(e.counter, e);
    let set = this.byTopic.get(e.topic);
    if (set === undefined) {
      set = new Set();
      this.byTopic.set(e.topic, set);
    }
    set.add(e);
    if (e.replica === this.replicaId) {
      let byTopic = this.own.get(e.pid);
      if (byTopic === undefined) {
        byTopic = new Map();
        this.own.set(e.pid, byTopic);
      }
      let byKey = byTopic.get(e.topic);
      if (byKey === undefined) {
        byKey = new Map();
        byTopic.set(e.topic, byKey);
      }
      byKey.set(e.key, e);
    }
    this.count++;
  }

  private remove(e: PresenceEntry): void {
    const byC = this.byReplica.get(e.replica);
    if (byC?.get(e.counter) !== e) return;
    byC.delete(e.counter);
    if (byC.size === 0) this.byReplica.delete(e.replica);
    const set = this.byTopic.get(e.topic);
    if (set !== undefined) {
      set.delete(e);
      if (set.size === 0) this.byTopic.delete(e.topic);
    }
    if (e.replica === this.replicaId) {
      const byTopic = this.own.get(e.pid);
      const byKey = byTopic?.get(e.topic);
      if (byKey?.get(e.key) === e) {
        byKey.delete(e.key);
        if (byKey.size === 0) byTopic!.delete(e.topic);
        if (byTopic!.size === 0) this.own.delete(e.pid);
      }
    }
    this.count--;
  }
}

/** Structural equality of JSON values (key order ignored), used to spot a track with an unchanged meta. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]));
  }
  const ka = Object.keys(a);
  const ob = b as Record<string, unknown>;
  if (ka.length !== Object.keys(ob).length) return false;
  return ka.every((k) => Object.hasOwn(ob, k) && jsonEqual((a as Record<string, unknown>)[k], ob[k]));
}
