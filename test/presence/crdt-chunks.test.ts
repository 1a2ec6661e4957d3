import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalState, joinStates, PresenceReplica, type PresenceState } from '../../src/presence/crdt.js';
import { splitState } from '../../src/presence/crdt-chunks.js';

type Op = { k: 'track'; r: number; pid: number; key: number; pad: number } | { k: 'untrack'; r: number; pid: number; key: number } | { k: 'merge'; from: number; to: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('track' as const), r: fc.nat({ max: 2 }), pid: fc.nat({ max: 5 }), key: fc.nat({ max: 8 }), pad: fc.nat({ max: 300 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('untrack' as const), r: fc.nat({ max: 2 }), pid: fc.nat({ max: 5 }), key: fc.nat({ max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('merge' as const), from: fc.nat({ max: 2 }), to: fc.nat({ max: 2 }) }) },
);

/** A replica's full state after operations on three replicas that merge each other's snapshots now and then. */
function stateAfter(ops: readonly Op[]): PresenceState {
  const replicas = [0, 1, 2].map((i) => new PresenceReplica(`node-${i}/r${i}`));
  for (const o of ops) {
    if (o.k === 'track') replicas[o.r]!.track('public|room', `pid${o.pid}`, `key${o.key}`, { pad: 'x'.repeat(o.pad) });
    else if (o.k === 'untrack') replicas[o.r]!.untrack('public|room', `pid${o.pid}`, `key${o.key}`);
    else replicas[o.to]!.merge(replicas[o.from]!.snapshot());
  }
  for (const r of replicas.slice(1)) replicas[0]!.merge(r.snapshot());
  return replicas[0]!.snapshot();
}

const joinAll = (states: readonly PresenceState[]): PresenceState => states.reduce((a, b) => joinStates(a, b), { v: 1, ctx: {}, entries: {} } as PresenceState);

describe('a presence state cut into pieces', () => {
  it('is pieces of bounded size whose join, in any order and with repeats, is the state; any subset joins below it', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), fc.integer({ min: 200, max: 2000 }), fc.nat(), (ops, bound, seed) => {
        const state = stateAfter(ops);
        const pieces = splitState(state, bound);
        for (const p of pieces) {
          const entries = Object.values(p.entries).reduce((n, l) => n + l.length, 0);
          // Only a piece holding a single entry larger than the bound may exceed it.
          if (entries > 1 || entries === 0) expect(JSON.stringify(p).length).toBeLessThanOrEqual(bound);
        }
        if (pieces.length > 1) expect(JSON.stringify(state).length).toBeGreaterThan(bound);
        const shuffled = [...pieces, ...pieces.slice(0, seed % (pieces.length + 1))].sort((a, b) => ((JSON.stringify(a).length * 31 + seed) % 7) - ((JSON.stringify(b).length * 31 + seed) % 7));
        expect(canonicalState(joinAll(shuffled))).toEqual(canonicalState(state));
        // A subset (some pieces lost) is below the state: joining the state to it changes nothing.
        const some = pieces.filter((_, i) => (seed >> i % 30) & 1);
        expect(canonicalState(joinStates(joinAll(some), state))).toEqual(canonicalState(state));
      }),
      { numRuns: 300 },
    );
  });

  it('brings a fresh replica to the same presences as the whole snapshot, thousands of them in many pieces', () => {
    const big = new PresenceReplica('node-a/big');
    for (let i = 0; i < 5000; i++) big.track('public|lobby', `pid${i}`, `user-${i}`, { name: `user number ${i}`, i });
    for (let i = 0; i < 5000; i += 3) big.untrack('public|lobby', `pid${i}`, `user-${i}`);
    const state = big.snapshot();
    expect(JSON.stringify(state).length).toBeGreaterThan(250_000);
    const pieces = splitState(state, 64 * 1024);
    expect(pieces.length).toBeGreaterThan(4);
    for (const p of pieces) expect(JSON.stringify(p).length).toBeLessThanOrEqual(64 * 1024);
    const fresh = new PresenceReplica('node-b/fresh');
    for (const p of [...pieces].reverse()) fresh.merge(p);
    expect(fresh.list('public|lobby')).toEqual(big.list('public|lobby'));
    expect(fresh.size).toBe(big.size);
  });
});
