/**
 * A presence state cut into states of bounded size, for a snapshot that would otherwise cross Redis as one message
 * of megabytes. Each piece is a state of its own: some entries with exactly their own dots as context, or only
 * removed dots (context without entries). The dots of the pieces do not overlap and together are the state's, so
 * the join of all pieces is the state itself, and any subset of them joins to something below it: merging pieces in
 * any order, twice, or missing some never makes a replica disagree, only know less until the rest arrives.
 */
import { insertInterval, normalizeIntervals, type Interval } from './crdt-context.js';
import type { PresenceState, WireEntry } from './crdt-wire.js';

/** Rough bytes of JSON per dot interval and per replica name mentioned in a piece, beside the entries' own JSON. */
const INTERVAL_BYTES = 40;
const STATE_BYTES = 40;

/** A replica's name as it appears in a piece: a key of `ctx` and of `entries`. */
const nameBytes = (r: string): number => 2 * (JSON.stringify(r).length + 3);

class Piece {
  ctx = new Map<string, Interval[]>();
  entries = new Map<string, WireEntry[]>();
  bytes = STATE_BYTES;

  private replica(r: string): Interval[] {
    let ivs = this.ctx.get(r);
    if (!ivs) {
      this.ctx.set(r, (ivs = []));
      this.bytes += nameBytes(r);
    }
    return ivs;
  }

  addEntry(r: string, w: WireEntry, bytes: number): void {
    insertInterval(this.replica(r), w[0], w[0]);
    let list = this.entries.get(r);
    if (!list) this.entries.set(r, (list = []));
    list.push(w);
    this.bytes += bytes + INTERVAL_BYTES;
  }

  addRemoved(r: string, [from, to]: Interval): void {
    insertInterval(this.replica(r), from, to);
    this.bytes += INTERVAL_BYTES;
  }

  get empty(): boolean {
    return this.ctx.size === 0;
  }

  state(): PresenceState {
    // fromEntries defines own properties: a replica named "__proto__" stays a plain key.
    return { v: 1, ctx: Object.fromEntries(this.ctx), entries: Object.fromEntries(this.entries) };
  }
}

/** The dots of `ivs` that are not `counters` (sorted ascending), as intervals. */
function without(ivs: readonly Interval[], counters: readonly number[]): Interval[] {
  const out: Interval[] = [];
  let i = 0;
  for (const [from, to] of ivs) {
    let at = from;
    while (i < counters.length && counters[i]! < from) i++;
    while (i < counters.length && counters[i]! <= to) {
      if (counters[i]! > at) out.push([at, counters[i]! - 1]);
      at = counters[i]! + 1;
      i++;
    }
    if (at <= to) out.push([at, to]);
  }
  return out;
}

/**
 * Splits `state` into pieces of about `maxBytes` of JSON at most (an entry larger than that goes alone), whose join
 * is `state`. A state that fits is returned whole, as the only piece.
 */
export function splitState(state: PresenceState, maxBytes: number): PresenceState[] {
  if (JSON.stringify(state).length <= maxBytes) return [state];
  const pieces: PieceList = new PieceList(maxBytes);
  const replicas = new Set([...Object.keys(state.ctx), ...Object.keys(state.entries)]);
  for (const r of replicas) {
    const list = state.entries[r] ?? [];
    const name = nameBytes(r);
    for (const w of list) {
      const bytes = JSON.stringify(w).length;
      pieces.add(name + bytes + INTERVAL_BYTES, (p) => p.addEntry(r, w, bytes));
    }
    const counters = list.map((w) => w[0]).sort((a, b) => a - b);
    for (const iv of without(normalizeIntervals(state.ctx[r] ?? []), counters)) pieces.add(name + INTERVAL_BYTES, (p) => p.addRemoved(r, iv));
  }
  return pieces.states();
}

class PieceList {
  private readonly done: Piece[] = [];
  private current = new Piece();

  constructor(private readonly maxBytes: number) {}

  /** Adds to the current piece, starting a new one first when it would grow past the bound. */
  add(bytes: number, put: (p: Piece) => void): void {
    if (!this.current.empty && this.current.bytes + bytes > this.maxBytes) {
      this.done.push(this.current);
      this.current = new Piece();
    }
    put(this.current);
  }

  states(): PresenceState[] {
    const all = this.current.empty ? this.done : [...this.done, this.current];
    return all.map((p) => p.state());
  }
}
