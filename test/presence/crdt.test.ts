import { describe, expect, it } from 'vitest';
import {
  PresenceChanges,
  PresenceReplica,
  canonicalState,
  jsonEqual,
  parsePresenceState,
  refFor,
  type PresenceState,
} from '../../src/presence/crdt.js';
import { counterOfRef } from '../../src/presence/crdt-wire.js';

const wire = (s: PresenceState | null): PresenceState => JSON.parse(JSON.stringify(s)) as PresenceState;

function pair(): [PresenceReplica, PresenceReplica] {
  return [new PresenceReplica('node-a'), new PresenceReplica('node-b')];
}

describe('local operations', () => {
  it('track adds an entry listed in the presence_state shape', () => {
    const a = new PresenceReplica('node-a');
    const r = a.track('room', 'ch1', 'user-1', { name: 'alice' });
    expect(r.changed).toBe(true);
    expect(r.prev).toBeNull();
    expect(r.entry).toMatchObject({ replica: 'node-a', topic: 'room', key: 'user-1', pid: 'ch1' });
    expect(r.entry.meta).toEqual({ name: 'alice' });
    expect(a.list('room')).toEqual({ 'user-1': { metas: [{ name: 'alice', phx_ref: r.entry.ref }] } });
    expect(a.list('other')).toEqual({});
    expect(a.size).toBe(1);
  });

  it('track with the same meta is a no-op, with a different meta an update', () => {
    const a = new PresenceReplica('node-a');
    const first = a.track('room', 'ch1', 'u', { s: 'online', n: [1, { x: 2 }] });
    a.takeDelta();
    const same = a.track('room', 'ch1', 'u', { n: [1, { x: 2 }], s: 'online' });
    expect(same).toEqual({ entry: first.entry, prev: null, changed: false });
    expect(a.takeDelta()).toBeNull();

    const upd = a.track('room', 'ch1', 'u', { s: 'away' });
    expect(upd.changed).toBe(true);
    expect(upd.prev).toBe(first.entry);
    expect(upd.entry.ref).not.toBe(first.entry.ref);
    expect(upd.entry.prevRef).toBe(first.entry.ref);
    expect(a.list('room')).toEqual({ u: { metas: [{ s: 'away', phx_ref: upd.entry.ref }] } });

    const diff = new PresenceChanges().addTrack(upd).diff('room');
    expect(diff).toEqual({
      joins: { u: { metas: [{ s: 'away', phx_ref: upd.entry.ref, phx_ref_prev: first.entry.ref }] } },
      leaves: { u: { metas: [{ s: 'online', n: [1, { x: 2 }], phx_ref: first.entry.ref }] } },
    });
  });

  it('one entry per (topic, pid, key); other pids or keys are separate entries', () => {
    const a = new PresenceReplica('node-a');
    const e1 = a.track('room', 'ch1', 'u', { tab: 1 }).entry;
    const e2 = a.track('room', 'ch2', 'u', { tab: 2 }).entry;
    const e3 = a.track('room', 'ch1', 'v', {}).entry;
    expect(a.list('room')).toEqual({
      u: { metas: [{ tab: 1, phx_ref: e1.ref }, { tab: 2, phx_ref: e2.ref }] },
      v: { metas: [{ phx_ref: e3.ref }] },
    });
  });

  it('update only touches tracked triples', () => {
    const a = new PresenceReplica('node-a');
    expect(a.update('room', 'ch1', 'u', { x: 1 })).toBeNull();
    a.track('room', 'ch1', 'u', { x: 1 });
    expect(a.update('room', 'ch1', 'u', { x: 2 })?.entry.meta).toEqual({ x: 2 });
  });

  it('untrack removes one entry; tracking the same meta again is a new join', () => {
    const a = new PresenceReplica('node-a');
    const e = a.track('room', 'ch1', 'u', { x: 1 }).entry;
    expect(a.untrack('room', 'ch1', 'u')).toBe(e);
    expect(a.untrack('room', 'ch1', 'u')).toBeNull();
    expect(a.list('room')).toEqual({});
    expect(a.topics()).toEqual([]);
    const again = a.track('room', 'ch1', 'u', { x: 1 });
    expect(again.changed).toBe(true);
    expect(again.prev).toBeNull();
    expect(again.entry.ref).not.toBe(e.ref);
  });

  it('untrackAll removes every entry of a pid across topics and keys only', () => {
    const a = new PresenceReplica('node-a');
    const gone = [
      a.track('t1', 'ch1', 'u', {}).entry,
      a.track('t2', 'ch1', 'u', {}).entry,
      a.track('t2', 'ch1', 'w', {}).entry,
    ];
    const kept = a.track('t2', 'ch2', 'u', {}).entry;
    expect(a.untrackAll('ch1')).toEqual(gone);
    expect(a.localEntries('ch1')).toEqual([]);
    expect(a.untrackAll('ch1')).toEqual([]);
    expect(a.list('t1')).toEqual({});
    expect(a.list('t2')).toEqual({ u: { metas: [{ phx_ref: kept.ref }] } });
    expect(a.size).toBe(1);
  });

  it('keeps client-chosen keys such as __proto__ as plain keys', () => {
    const a = new PresenceReplica('node-a');
    const e = a.track('room', 'ch1', '__proto__', { x: 1 }).entry;
    const list = a.list('room');
    expect(Object.hasOwn(list, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(list)).toBe(Object.prototype);
    const json = `{"__proto__":{"metas":[{"x":1,"phx_ref":"${e.ref}"}]}}`;
    expect(JSON.parse(JSON.stringify(list))).toEqual(JSON.parse(json));
  });

  it('a meta cannot forge phx_ref or phx_ref_prev', () => {
    const a = new PresenceReplica('node-a');
    const e = a.track('room', 'ch1', 'u', { phx_ref: 'fake', phx_ref_prev: 'fake' }).entry;
    expect(a.list('room')).toEqual({ u: { metas: [{ phx_ref: e.ref }] } });
  });
});

describe('phx_ref', () => {
  it('is unique across tracks and replicas and deterministic', () => {
    const refs = new Set<string>();
    for (const id of ['a', 'b', 'ab', 'node-1', 'node-11']) {
      const r = new PresenceReplica(id);
      for (let i = 0; i < 300; i++) refs.add(r.track('t', `p${i % 7}`, `k${i}`, { i }).entry.ref);
    }
    expect(refs.size).toBe(5 * 300);
    const x = new PresenceReplica('node-1');
    const y = new PresenceReplica('node-1');
    expect(x.track('t', 'p', 'k', {}).entry.ref).toBe(y.track('t', 'p', 'k', {}).entry.ref);
    expect(refFor('node-1', 1)).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(counterOfRef(refFor('node-1', 2 ** 40 + 5))).toBe(2 ** 40 + 5);
  });
});

describe('replication', () => {
  it('a delta brings joins; re-merging it changes nothing', () => {
    const [a, b] = pair();
    const e = a.track('room', 'ch1', 'u', { x: 1 }).entry;
    const delta = wire(a.takeDelta());
    const changes = b.merge(delta);
    expect(changes.topics()).toEqual(['room']);
    expect(changes.joins('room')).toEqual([e]);
    expect(changes.diff('room')).toEqual({ joins: { u: { metas: [{ x: 1, phx_ref: e.ref }] } }, leaves: {} });
    expect(b.list('room')).toEqual(a.list('room'));
    expect(b.merge(delta).isEmpty).toBe(true);
  });

  it('takeDelta batches operations since the last call', () => {
    const a = new PresenceReplica('node-a');
    expect(a.takeDelta()).toBeNull();
    a.track('t', 'p', 'k1', {});
    a.track('t', 'p', 'k2', {});
    a.untrack('t', 'p', 'k1');
    expect(a.hasPendingDelta).toBe(true);
    const d = a.takeDelta()!;
    expect(d.ctx).toEqual({ 'node-a': [[1, 2]] });
    expect(d.entries['node-a'].map((w) => w[2])).toEqual(['k2']);
    expect(a.takeDelta()).toBeNull();
    a.untrack('t', 'p', 'k2');
    expect(a.takeDelta()).toEqual({ v: 1, ctx: { 'node-a': [[2, 2]] }, entries: {} });
  });

  it('a removal wins over a re-delivered or late add', () => {
    const [a, b] = pair();
    a.track('room', 'ch1', 'u', {});
    const add = wire(a.takeDelta());
    a.untrack('room', 'ch1', 'u');
    const del = wire(a.takeDelta());

    b.merge(add);
    expect(b.merge(del).leaves('room')).toHaveLength(1);
    expect(b.merge(add).isEmpty).toBe(true);
    expect(b.list('room')).toEqual({});

    const c = new PresenceReplica('node-c');
    expect(c.merge(del).isEmpty).toBe(true);
    expect(c.merge(add).isEmpty).toBe(true);
    expect(c.list('room')).toEqual({});
  });

  it('a remote update arrives as leave + join with phx_ref_prev', () => {
    const [a, b] = pair();
    const old = a.track('room', 'ch1', 'u', { s: 'online' }).entry;
    b.merge(wire(a.takeDelta()));
    const upd = a.track('room', 'ch1', 'u', { s: 'away' }).entry;
    const diff = b.merge(wire(a.takeDelta())).diff('room');
    expect(diff).toEqual({
      joins: { u: { metas: [{ s: 'away', phx_ref: upd.ref, phx_ref_prev: old.ref }] } },
      leaves: { u: { metas: [{ s: 'online', phx_ref: old.ref }] } },
    });
    expect(b.list('room')).toEqual(a.list('room'));
  });

  it('a snapshot catches up a new replica, through JSON', () => {
    const [a, b] = pair();
    a.track('t1', 'p1', 'u', { x: 1 });
    a.track('t2', 'p1', 'v', { y: [1, 2] });
    b.track('t1', 'p9', 'w', {});
    b.merge(wire(a.takeDelta()));
    const c = new PresenceReplica('node-c');
    c.merge(parsePresenceState(wire(b.snapshot())));
    for (const t of ['t1', 't2']) expect(c.list(t)).toEqual(b.list(t));
    expect(canonicalState(c.snapshot())).toEqual(canonicalState(b.snapshot()));
  });

  it('orders metas by dot, and dots follow what a replica has seen', () => {
    const [a, b] = pair();
    b.track('room', 'x', 'u', { from: 'b1' });
    b.track('room', 'y', 'u', { from: 'b2' });
    a.merge(wire(b.takeDelta()));
    a.track('room', 'z', 'u', { from: 'a1' });
    b.merge(wire(a.takeDelta()));
    const expected = ['b1', 'b2', 'a1'];
    expect(a.list('room').u.metas.map((m) => m.from)).toEqual(expected);
    expect(b.list('room').u.metas.map((m) => m.from)).toEqual(expected);
    expect(a.versionVector()).toEqual({ 'node-a': 3, 'node-b': 2 });
  });

  it('reports gaps when a delta is missing until it arrives', () => {
    const [a, b] = pair();
    a.track('t', 'p', 'k1', {});
    const d1 = wire(a.takeDelta());
    a.track('t', 'p', 'k2', {});
    const d2 = wire(a.takeDelta());
    b.merge(d2);
    expect(b.gaps()).toEqual(['node-a']);
    expect(b.versionVector()).toEqual({ 'node-a': 0 });
    b.merge(d1);
    expect(b.gaps()).toEqual([]);
    expect(b.versionVector()).toEqual({ 'node-a': 2 });
  });

  it('rejects malformed states', () => {
    const bad: unknown[] = [
      null,
      { v: 2, ctx: {}, entries: {} },
      { v: 1, ctx: { a: [[0, 1]] }, entries: {} },
      { v: 1, ctx: { a: [[3, 1]] }, entries: {} },
      { v: 1, ctx: {}, entries: { a: [[1, 't', 'k', 'p', 'meta']] } },
      { v: 1, ctx: {}, entries: { a: [[1, 't', 'k', 'p', {}, 1.5]] } },
      { v: 1, ctx: [], entries: {} },
    ];
    for (const s of bad) expect(() => parsePresenceState(s)).toThrow(TypeError);
    expect(parsePresenceState({ v: 1, ctx: { a: [[4, 5], [1, 3]] }, entries: {} }).ctx).toEqual({ a: [[1, 5]] });
  });
});

describe('replica death', () => {
  function threeNodes(): { a: PresenceReplica; b: PresenceReplica; c: PresenceReplica; stale: PresenceState } {
    const a = new PresenceReplica('node-a');
    const b = new PresenceReplica('node-b');
    const c = new PresenceReplica('node-c');
    a.track('room', 'ch1', 'u', { x: 1 });
    a.track('lobby', 'ch2', 'v', {});
    const stale = wire(a.takeDelta());
    b.merge(stale);
    c.merge(stale);
    b.track('room', 'ch1', 'w', {});
    const fromB = wire(b.takeDelta());
    a.merge(fromB);
    c.merge(fromB);
    return { a, b, c, stale };
  }

  it('removes the dead replica entries as leaves and keeps them out', () => {
    const { a, b, c, stale } = threeNodes();
    const changes = b.removeReplica('node-a');
    expect(changes.topics().sort()).toEqual(['lobby', 'room']);
    expect(changes.leaves('room').map((e) => e.key)).toEqual(['u']);
    expect(b.list('lobby')).toEqual({});
    expect(Object.keys(b.list('room'))).toEqual(['w']);
    expect(b.isRemoved('node-a')).toBe(true);

    // A stale delta, a slower node's snapshot, or even newer dots of the dead replica do not bring it back.
    expect(b.merge(stale).isEmpty).toBe(true);
    expect(b.merge(wire(c.snapshot())).isEmpty).toBe(true);
    a.track('room', 'ch3', 'z', {});
    expect(b.merge(wire(a.takeDelta())).isEmpty).toBe(true);
    // b's own snapshot no longer speaks about node-a, so it cannot make c drop node-a's entries.
    expect(b.snapshot().ctx['node-a']).toBeUndefined();
    expect(c.merge(wire(b.snapshot())).leaves('room')).toEqual([]);
    expect(() => b.removeReplica('node-b')).toThrow();
  });

  it('a revived replica comes back through its snapshot, without what it removed meanwhile', () => {
    const { a, b, stale } = threeNodes();
    b.removeReplica('node-a');
    a.untrack('lobby', 'ch2', 'v');
    a.track('room', 'ch3', 'z', {});
    a.takeDelta();
    expect(b.reviveReplica('node-a')).toBe(true);
    expect(b.reviveReplica('node-a')).toBe(false);
    const joins = b.merge(wire(a.snapshot()));
    expect(joins.joins('room').map((e) => e.key)).toEqual(['u', 'z']);
    expect(b.merge(stale).isEmpty).toBe(true);
    for (const t of ['room', 'lobby']) expect(b.list(t)).toEqual(a.list(t));
  });

  it('a restarted replica with the same id removes its earlier incarnation entries', () => {
    const a1 = new PresenceReplica('node-a');
    const b = new PresenceReplica('node-b');
    const old = a1.track('room', 'ch1', 'u', {}).entry;
    b.merge(wire(a1.takeDelta()));

    const a2 = new PresenceReplica('node-a');
    expect(a2.merge(wire(b.snapshot())).isEmpty).toBe(true);
    expect(a2.list('room')).toEqual({});
    const fresh = a2.track('room', 'ch1', 'u', {}).entry;
    expect(fresh.ref).not.toBe(old.ref);
    const changes = b.merge(wire(a2.takeDelta()));
    expect(changes.leaves('room')).toEqual([old]);
    expect(changes.joins('room')).toEqual([fresh]);
    expect(b.list('room')).toEqual(a2.list('room'));
  });
});

describe('PresenceChanges', () => {
  it('cancels a join and a leave of the same ref inside one batch', () => {
    const a = new PresenceReplica('node-a');
    const batch = new PresenceChanges();
    const t = a.track('room', 'p', 'u', { x: 1 });
    batch.addTrack(t);
    const u = a.track('room', 'p', 'u', { x: 2 });
    batch.addTrack(u);
    expect(batch.joins('room')).toEqual([u.entry]);
    expect(batch.leaves('room')).toEqual([]);
    batch.addLeaves(a.untrackAll('p'));
    expect(batch.isEmpty).toBe(true);
    expect(batch.diff('room')).toBeNull();
  });

  it('absorbs later batches in order', () => {
    const a = new PresenceReplica('node-a');
    const e = a.track('room', 'p', 'u', {});
    const first = new PresenceChanges().addTrack(e);
    const second = new PresenceChanges().leave(e.entry);
    expect(first.absorb(second).isEmpty).toBe(true);
  });
});

describe('jsonEqual', () => {
  it('compares JSON values structurally', () => {
    expect(jsonEqual({ a: [1, { b: null }] }, { a: [1, { b: null }] })).toBe(true);
    expect(jsonEqual({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(jsonEqual([1], { 0: 1 })).toBe(false);
    expect(jsonEqual({ a: '1' }, { a: 1 })).toBe(false);
  });
});
