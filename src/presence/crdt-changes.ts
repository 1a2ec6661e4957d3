/**
 * Observable presence changes (joins and leaves per topic), as produced by merges and local operations and turned
 * into presence_diff payloads. Changes can be accumulated over a broadcast period: a ref that joins and leaves
 * within the same batch cancels out, because clients never saw it.
 */
import { compareEntries, groupByKey, type PresenceDiff, type PresenceEntry } from './crdt-wire.js';

export interface TrackResult {
  /** The entry now tracked (the existing one when nothing changed). */
  entry: PresenceEntry;
  /** The entry it replaced (update of the same topic/pid/key); its ref is the join's phx_ref_prev. */
  prev: PresenceEntry | null;
  /** False when the meta was unchanged: no new ref, no diff. */
  changed: boolean;
}

interface TopicChanges {
  joins: Map<string, PresenceEntry>;
  leaves: Map<string, PresenceEntry>;
}

export class PresenceChanges {
  private readonly byTopic = new Map<string, TopicChanges>();

  private topicOf(topic: string): TopicChanges {
    let t = this.byTopic.get(topic);
    if (t === undefined) {
      t = { joins: new Map(), leaves: new Map() };
      this.byTopic.set(topic, t);
    }
    return t;
  }

  private prune(topic: string, t: TopicChanges): void {
    if (t.joins.size === 0 && t.leaves.size === 0) this.byTopic.delete(topic);
  }

  join(e: PresenceEntry): this {
    const t = this.topicOf(e.topic);
    // A ref's presence only ever alternates, so an opposite pending change means the two cancel.
    if (!t.leaves.delete(e.ref)) t.joins.set(e.ref, e);
    this.prune(e.topic, t);
    return this;
  }

  leave(e: PresenceEntry): this {
    const t = this.topicOf(e.topic);
    if (!t.joins.delete(e.ref)) t.leaves.set(e.ref, e);
    this.prune(e.topic, t);
    return this;
  }

  /** Records a local track/update result (leave of the previous entry plus join of the new one). */
  addTrack(result: TrackResult | null): this {
    if (result === null || !result.changed) return this;
    if (result.prev !== null) this.leave(result.prev);
    return this.join(result.entry);
  }

  addLeaves(entries: Iterable<PresenceEntry>): this {
    for (const e of entries) this.leave(e);
    return this;
  }

  /** Appends another batch, in order (this batch happened first). */
  absorb(other: PresenceChanges): this {
    for (const t of other.byTopic.values()) {
      for (const e of t.leaves.values()) this.leave(e);
      for (const e of t.joins.values()) this.join(e);
    }
    return this;
  }

  get isEmpty(): boolean {
    return this.byTopic.size === 0;
  }

  topics(): string[] {
    return [...this.byTopic.keys()];
  }

  /** Joined entries of a topic, in dot order. */
  joins(topic: string): PresenceEntry[] {
    const t = this.byTopic.get(topic);
    return t === undefined ? [] : [...t.joins.values()].sort(compareEntries);
  }

  /** Left entries of a topic, in dot order. */
  leaves(topic: string): PresenceEntry[] {
    const t = this.byTopic.get(topic);
    return t === undefined ? [] : [...t.leaves.values()].sort(compareEntries);
  }

  /** presence_diff payload for a topic, or null when nothing changed there. */
  diff(topic: string): PresenceDiff | null {
    if (!this.byTopic.has(topic)) return null;
    return { joins: groupByKey(this.joins(topic), true), leaves: groupByKey(this.leaves(topic), false) };
  }
}
