import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PresenceChanges,
  PresenceReplica,
  canonicalState,
  joinStates,
  type PresenceList,
  type PresenceState,
  type WireEntry,
} from '../../src/presence/crdt.js';

// ---- a client's view, fed only with diffs -------------------------------------------------------------------------

/** topic -> ref -> (key, meta): what a client rebuilds from presence_state + presence_diffs. */
type View = Map<string, Map<string, { key: string; meta: unknown }>>;

function viewOfList(list: PresenceList): Map<string, { key: string; meta: unknown }> {
  const out = new Map<string, { key: string; meta: unknown }>();
  for (const [key, { metas }] of Object.entries(list)) {
    for (const { phx_ref, phx_ref_prev: _prev, ...meta } of metas) out.set(phx_ref, { key, meta });
  }
  return out;
}

/** Applies a batch the way a client does; refs must leave only if present and join only if absent. */
function applyChanges(view: View, changes: PresenceChanges): void {
  for (const topic of changes.topics()) {
    let refs = view.get(topic);
    if (refs === undefined) {
      refs = new Map();
      view.set(topic, refs);
    }
    for (const e of changes.leaves(topic)) {
      expect(refs.has(e.ref), `leave of unknown ref in ${topic}`).toBe(true);
      refs.delete(e.ref);
    }
    for (const e of changes.joins(topic)) {
      expect(refs.has(e.ref), `join of known ref in ${topic}`).toBe(false);
      refs.set(e.ref, { key: e.key, meta: e.meta });
    }
  }
}

function expectViewMatches(view: View, replica: PresenceReplica, topics: readonly string[]): void {
  for (const t of topics) expect(view.get(t) ?? new Map()).toEqual(viewOfList(replica.list(t)));
}

// ---- simulated cluster -------------------------------------------------------------------------------------------

const REPLICAS = ['r0', 'r1', 'r2'] as const;
const TOPICS = ['t1', 't2'] as const;

type Op =
  | { kind: 'track' | 'update'; topic: string; pid: string; key: string; meta: { v: number } }
  | { kind: 'untrack'; topic: string; pid: string; key: string }
  | { kind: 'untrackAll'; pid: string };

type Step =
  | { type: 'op'; at: number; op: Op }
  | { type: 'flush'; at: number }
  | { type: 'deliver'; pick: number; keep: boolean }
  | { type: 'sync'; from: number; to: number }
  | { type: 'kill'; at: number };

const idx = fc.integer({ min: 0, max: 2 });
const topicArb = fc.constantFrom(...TOPICS);
const pidArb = fc.constantFrom('p1', 'p2');
const keyArb = fc.constantFrom('k1', 'k2');
const metaArb = fc.record({ v: fc.integer({ min: 0, max: 2 }) });

const setArb = (kind: 'track' | 'update'): fc.Arbitrary<Op> =>
  fc.record({ kind: fc.constant(kind), topic: topicArb, pid: pidArb, key: keyArb, meta: metaArb });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: setArb('track'), weight: 4 },
  setArb('update'),
  {
    arbitrary: fc.record({ kind: fc.constant('untrack' as const), topic: topicArb, pid: pidArb, key: keyArb }),
    weight: 2,
  },
  fc.record({ kind: fc.constant('untrackAll' as const), pid: pidArb }),
);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ type: fc.constant('op' as const), at: idx, op: opArb }), weight: 6 },
  { arbitrary: fc.record({ type: fc.constant('flush' as const), at: idx }), weight: 2 },
  { arbitrary: fc.record({ type: fc.constant('deliver' as const), pick: fc.nat(), keep: fc.boolean() }), weight: 5 },
  { arbitrary: fc.record({ type: fc.constant('sync' as const), from: idx, to: idx }), weight: 1 },
);

interface Node {
  replica: PresenceReplica;
  /** Diffs applied as they happen. */
  live: View;
  /** Diffs accumulated and applied only at flushes, like the 1.5 s broadcast batches. */
  batched: View;
  pending: PresenceChanges;
}

class Cluster {
  readonly nodes: Node[] = REPLICAS.map((id) => ({
    replica: new PresenceReplica(id),
    live: new Map(),
    batched: new Map(),
    pending: new PresenceChanges(),
  }));
  /** In-flight messages; JSON text, as over Redis. */
  readonly network: { to: number; json: string }[] = [];

  private record(n: Node, changes: PresenceChanges): void {
    applyChanges(n.live, changes);
    n.pending.absorb(changes);
    expectViewMatches(n.live, n.replica, TOPICS);
  }

  private flushView(n: Node): void {
    applyChanges(n.batched, n.pending);
    n.pending = new PresenceChanges();
    expectViewMatches(n.batched, n.replica, TOPICS);
  }

  run(step: Step): void {
    switch (step.type) {
      case 'op': {
        const n = this.nodes[step.at];
        this.record(n, applyOp(n.replica, step.op));
        break;
      }
      case 'flush': {
        const n = this.nodes[step.at];
        this.flushView(n);
        const delta = n.replica.takeDelta();
        if (delta === null) break;
        const json = JSON.stringify(delta);
        for (let to = 0; to < this.nodes.length; to++) if (to !== step.at) this.network.push({ to, json });
        break;
      }
      case 'deliver': {
        if (this.network.length === 0) break;
        const i = step.pick % this.network.length;
        const msg = this.network[i];
        if (!step.keep) this.network.splice(i, 1);
        const n = this.nodes[msg.to];
        this.record(n, n.replica.merge(JSON.parse(msg.json) as PresenceState));
        break;
      }
      case 'kill': {
        // r0 and r1 declare r2 dead, each on its own schedule; r2 keeps running and sending.
        const n = this.nodes[step.at];
        if (step.at !== 2) this.record(n, n.replica.removeReplica('r2'));
        break;
      }
      case 'sync': {
        if (step.from === step.to) break;
        const n = this.nodes[step.to];
        const snap = JSON.parse(JSON.stringify(this.nodes[step.from].replica.snapshot())) as PresenceState;
        this.record(n, n.replica.merge(snap));
        break;
      }
    }
  }

  /** Flushes every node and delivers everything still in flight, in the given pseudo-random order. */
  drain(picks: number[]): void {
    for (let at = 0; at < this.nodes.length; at++) this.run({ type: 'flush', at });
    for (let k = 0; this.network.length > 0; k++) {
      this.run({ type: 'deliver', pick: (picks.length > 0 ? picks[k % picks.length] : 0) + k, keep: false });
    }
    for (let at = 0; at < this.nodes.length; at++) this.run({ type: 'flush', at });
  }
}

function applyOp(r: PresenceReplica, op: Op): PresenceChanges {
  const changes = new PresenceChanges();
  switch (op.kind) {
    case 'track':
      return changes.addTrack(r.track(op.topic, op.pid, op.key, op.meta));
    case 'update':
      return changes.addTrack(r.update(op.topic, op.pid, op.key, op.meta));
    case 'untrack': {
      const e = r.untrack(op.topic, op.pid, op.key);
      return e === null ? changes : changes.leave(e);
    }
    case 'untrackAll':
      return changes.addLeaves(r.untrackAll(op.pid));
  }
}

/** Order in which the messages still in flight at the end are delivered. */
const picksArb = fc.array(fc.nat(), { maxLength: 20 });

const killStepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: stepArb, weight: 20 },
  fc.record({ type: fc.constant('kill' as const), at: fc.integer({ min: 0, max: 1 }) }),
);

describe('presence CRDT convergence', () => {
  it('3 replicas converge under reordering, duplication and snapshot syncs; diffs rebuild every list', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 150, size: 'max' }), picksArb, (steps, picks) => {
        const cluster = new Cluster();
        for (const s of steps) cluster.run(s);
        cluster.drain(picks);
        const [first, ...rest] = cluster.nodes.map((n) => n.replica);
        const dump = canonicalState(first.snapshot());
        for (const r of rest) {
          expect(canonicalState(r.snapshot())).toEqual(dump);
          for (const t of TOPICS) expect(r.list(t)).toEqual(first.list(t));
          expect(r.size).toBe(first.size);
          expect(r.gaps()).toEqual([]);
        }
        // Every replica's clock is fully known everywhere once all deltas are in.
        expect(first.versionVector()).toEqual(rest[0].versionVector());
      }),
      { numRuns: 300 },
    );
  });

  it('replicas that removed a dead replica converge without it, whatever it keeps sending', () => {
    fc.assert(
      fc.property(fc.array(killStepArb, { maxLength: 150, size: 'max' }), picksArb, (steps, picks) => {
        const cluster = new Cluster();
        for (const s of steps) cluster.run(s);
        cluster.run({ type: 'kill', at: 0 });
        cluster.run({ type: 'kill', at: 1 });
        cluster.drain(picks);
        const [r0, r1] = cluster.nodes.map((n) => n.replica);
        expect(canonicalState(r1.snapshot())).toEqual(canonicalState(r0.snapshot()));
        expect(r0.snapshot().ctx.r2).toBeUndefined();
        for (const t of TOPICS) {
          expect(r1.list(t)).toEqual(r0.list(t));
          expect(r0.entries(t).filter((e) => e.replica === 'r2')).toEqual([]);
        }
      }),
      { numRuns: 200 },
    );
  });
});

// ---- lattice laws on arbitrary states ---------------------------------------------------------------------------

/** The same dot always carries the same entry, as in a real cluster. */
function entryOf(replica: string, c: number): WireEntry {
  const base: WireEntry = [c, `t${c % 2}`, `k${c % 3}`, `p${c % 2}`, { r: replica, c }];
  return c % 4 === 0 ? [...base, c - 1] : base;
}

const stateArb: fc.Arbitrary<PresenceState> = fc
  .array(fc.tuple(fc.constantFrom('x', 'y', 'z'), fc.integer({ min: 1, max: 8 }), fc.boolean()), {
    maxLength: 24,
    size: 'max',
  })
  .map((dots) => {
    const ctx: Record<string, [number, number][]> = {};
    const entries: Record<string, WireEntry[]> = {};
    const seen = new Set<string>();
    for (const [r, c, alive] of dots) {
      if (seen.has(`${r}:${c}`)) continue;
      seen.add(`${r}:${c}`);
      (ctx[r] ??= []).push([c, c]);
      if (alive) (entries[r] ??= []).push(entryOf(r, c));
    }
    return { v: 1 as const, ctx, entries };
  });

function mergedInto(...states: PresenceState[]): { replica: PresenceReplica; view: View } {
  const replica = new PresenceReplica('observer');
  const view: View = new Map();
  for (const s of states) {
    applyChanges(view, replica.merge(s));
    expectViewMatches(view, replica, ['t0', 't1']);
  }
  return { replica, view };
}

describe('presence CRDT lattice laws', () => {
  it('joinStates is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(stateArb, stateArb, stateArb, (a, b, c) => {
        expect(joinStates(a, b)).toEqual(joinStates(b, a));
        expect(joinStates(joinStates(a, b), c)).toEqual(joinStates(a, joinStates(b, c)));
        expect(joinStates(a, a)).toEqual(canonicalState(a));
        expect(joinStates(joinStates(a, b), b)).toEqual(joinStates(a, b));
      }),
      { numRuns: 500 },
    );
  });

  it('replica merge equals the join, in any order and with repeats, and its diffs rebuild the lists', () => {
    fc.assert(
      fc.property(stateArb, stateArb, stateArb, (a, b, c) => {
        const expected = joinStates(joinStates(a, b), c);
        const orders = [
          [a, b, c],
          [c, b, a],
          [b, a, c, a],
          [a, b, b, c, c],
        ];
        for (const order of orders) {
          const { replica } = mergedInto(...order);
          expect(canonicalState(replica.snapshot())).toEqual(expected);
        }
        // Merging a merged state is the same as merging its parts.
        const ab = mergedInto(a, b).replica.snapshot();
        expect(canonicalState(mergedInto(ab, c).replica.snapshot())).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('merging a state that is already included changes nothing', () => {
    fc.assert(
      fc.property(stateArb, stateArb, (a, b) => {
        const { replica } = mergedInto(a, b);
        expect(replica.merge(a).isEmpty).toBe(true);
        expect(replica.merge(b).isEmpty).toBe(true);
        expect(replica.merge(replica.snapshot()).isEmpty).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
