/**
 * Causal context of the presence CRDT: for every replica, the set of dots (counters) whose fate is known. A dot that
 * is in the context but has no entry was removed; this is what lets a removal beat a re-delivered older add.
 *
 * Counters are kept as sorted, disjoint, non-adjacent inclusive intervals, so a context that has seen every dot of a
 * replica in order is one interval, and out-of-order deliveries cost one interval per hole.
 */

/** Inclusive range of counters, `1 <= from <= to`. */
export type Interval = [from: number, to: number];

/** Index of the first interval whose end is >= n - 1 (the first one that could touch or follow n). */
function lowerBound(ivs: readonly Interval[], n: number): number {
  let lo = 0;
  let hi = ivs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ivs[mid][1] < n - 1) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function intervalsCover(ivs: readonly Interval[], n: number): boolean {
  const i = lowerBound(ivs, n + 1);
  return i < ivs.length && ivs[i][0] <= n && n <= ivs[i][1];
}

/** Adds [from, to] in place, merging with overlapping and adjacent intervals. */
export function insertInterval(ivs: Interval[], from: number, to: number): void {
  if (to < from) return;
  const start = lowerBound(ivs, from);
  let end = start;
  let lo = from;
  let hi = to;
  // Everything that overlaps or touches [lo, hi] collapses into one interval.
  while (end < ivs.length && ivs[end][0] <= hi + 1) {
    if (ivs[end][0] < lo) lo = ivs[end][0];
    if (ivs[end][1] > hi) hi = ivs[end][1];
    end++;
  }
  ivs.splice(start, end - start, [lo, hi]);
}

/** Sorted, coalesced copy of arbitrary (possibly overlapping, unsorted) intervals. */
export function normalizeIntervals(ivs: readonly Interval[]): Interval[] {
  const sorted = ivs.filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
  const out: Interval[] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && a <= last[1] + 1) {
      if (b > last[1]) last[1] = b;
    } else {
      out.push([a, b]);
    }
  }
  return out;
}

export function intervalsLength(ivs: readonly Interval[]): number {
  let n = 0;
  for (const [a, b] of ivs) n += b - a + 1;
  return n;
}

export class DotContext {
  private readonly byReplica = new Map<string, Interval[]>();

  covers(replica: string, counter: number): boolean {
    const ivs = this.byReplica.get(replica);
    return ivs !== undefined && intervalsCover(ivs, counter);
  }

  add(replica: string, from: number, to: number = from): void {
    let ivs = this.byReplica.get(replica);
    if (ivs === undefined) {
      ivs = [];
      this.byReplica.set(replica, ivs);
    }
    insertInterval(ivs, from, to);
  }

  delete(replica: string): void {
    this.byReplica.delete(replica);
  }

  replicas(): IterableIterator<string> {
    return this.byReplica.keys();
  }

  intervals(replica: string): readonly Interval[] {
    return this.byReplica.get(replica) ?? [];
  }

  /** Highest counter of the contiguous run starting at 1 (0 when dot 1 is unknown). */
  prefix(replica: string): number {
    const first = this.byReplica.get(replica)?.[0];
    return first !== undefined && first[0] === 1 ? first[1] : 0;
  }

  max(replica: string): number {
    const ivs = this.byReplica.get(replica);
    return ivs === undefined || ivs.length === 0 ? 0 : ivs[ivs.length - 1][1];
  }

  /** JSON form: replica -> intervals (copied, so the caller may keep it). */
  toJSON(): Record<string, Interval[]> {
    const out: [string, Interval[]][] = [];
    for (const [r, ivs] of this.byReplica) {
      if (ivs.length > 0) out.push([r, ivs.map(([a, b]): Interval => [a, b])]);
    }
    // fromEntries defines own properties, so a replica named "__proto__" cannot reach the prototype.
    return Object.fromEntries(out);
  }
}
