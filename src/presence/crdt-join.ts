/**
 * The lattice join of two presence states, written directly on the JSON form. PresenceReplica.merge does the same
 * incrementally; this plain version is the reference the property tests compare it against, and lets tooling fold
 * deltas together without a replica.
 */
import { intervalsCover, normalizeIntervals, type Interval } from './crdt-context.js';
import type { PresenceState, WireEntry } from './crdt-wire.js';

const EMPTY_IVS: Interval[] = [];

/**
 * An entry survives when both sides have it, or when one side has it and the other has never seen its dot (a dot
 * seen by the other side but missing there was removed, and the removal wins).
 */
export function joinStates(a: PresenceState, b: PresenceState): PresenceState {
  const ctxA = normalizedCtx(a);
  const ctxB = normalizedCtx(b);
  const replicas = new Set([...Object.keys(a.entries), ...Object.keys(b.entries), ...ctxA.keys(), ...ctxB.keys()]);
  const ctx: [string, Interval[]][] = [];
  const entries: [string, WireEntry[]][] = [];
  for (const r of replicas) {
    const ivsA = ctxA.get(r) ?? EMPTY_IVS;
    const ivsB = ctxB.get(r) ?? EMPTY_IVS;
    const inA = byCounter(a.entries[r]);
    const inB = byCounter(b.entries[r]);
    const kept = new Map<number, WireEntry>();
    for (const [c, w] of inA) if (inB.has(c) || !intervalsCover(ivsB, c)) kept.set(c, w);
    for (const [c, w] of inB) if (!kept.has(c) && (inA.has(c) || !intervalsCover(ivsA, c))) kept.set(c, w);
    const ivs = normalizeIntervals([...ivsA, ...ivsB, ...[...kept.keys()].map((c): Interval => [c, c])]);
    if (ivs.length > 0) ctx.push([r, ivs]);
    if (kept.size > 0) entries.push([r, [...kept.values()].sort((x, y) => x[0] - y[0])]);
  }
  return canonicalState({ v: 1, ctx: Object.fromEntries(ctx), entries: Object.fromEntries(entries) });
}

/** Same content, one representation: replicas sorted, intervals coalesced, entries by counter, empties dropped. */
export function canonicalState(s: PresenceState): PresenceState {
  const ctx: [string, Interval[]][] = [];
  for (const r of Object.keys(s.ctx).sort()) {
    const ivs = normalizeIntervals(s.ctx[r]);
    if (ivs.length > 0) ctx.push([r, ivs]);
  }
  const entries: [string, WireEntry[]][] = [];
  for (const r of Object.keys(s.entries).sort()) {
    const list = [...s.entries[r]].sort((x, y) => x[0] - y[0]);
    if (list.length > 0) entries.push([r, list]);
  }
  return { v: 1, ctx: Object.fromEntries(ctx), entries: Object.fromEntries(entries) };
}

function normalizedCtx(s: PresenceState): Map<string, Interval[]> {
  const out = new Map<string, Interval[]>();
  for (const [r, ivs] of Object.entries(s.ctx)) out.set(r, normalizeIntervals(ivs));
  return out;
}

function byCounter(list: WireEntry[] | undefined): Map<number, WireEntry> {
  const out = new Map<number, WireEntry>();
  if (list !== undefined) for (const w of list) out.set(w[0], w);
  return out;
}
