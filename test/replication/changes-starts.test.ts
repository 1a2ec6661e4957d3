import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Binding } from '../../src/replication/changes/index.js';
import type { PendingCommit, RowChange } from '../../src/replication/changes-dispatch.js';
import { HeldLog, SubscriberStarts } from '../../src/replication/changes-starts.js';
import { PendingSubscriber, type ChangesSubscriber } from '../../src/replication/changes-subscribers.js';
import type { RelationMessage } from '../../src/replication/pgoutput/index.js';

const relation = (name: string): RelationMessage => ({ tag: 'relation', xid: null, relationId: 1, namespace: 'public', name, replicaIdentity: 'default', columns: [] });
const change = (table: string, type: RowChange['type'] = 'INSERT'): RowChange => ({ relation: relation(table), type, newTuple: [], old: null });
const commit = (commitLsn: bigint, changes: RowChange[] = [change('t')]): PendingCommit => ({ changes, commitTime: 0n, commitLsn, ackLsn: commitLsn + 1n });
const binding = (table: string, event = '*'): Binding => ({ id: 1, event, schema: 'public', table, filters: [], select: null }) as unknown as Binding;

const sub = (instance: string, claims: Record<string, unknown> = { role: 'anon' }): ChangesSubscriber => ({
  instance,
  topic: 'room',
  legacy: false,
  bindings: [binding('t')],
  claims,
  deliverMany: () => undefined,
  flush: () => undefined,
});
const held = (claims: Record<string, unknown>) => new PendingSubscriber('00000000-0000-4000-8000-000000000001', 'room', false, [binding('t')], claims);
const lsns = (owed: readonly PendingCommit[]) => owed.map((t) => t.commitLsn);

describe('subscriber starts', () => {
  it('a new subscriber is owed exactly the commits at or past its start that were taken while it joined, in order', () => {
    // Batches of increasing commit positions; the subscriber registers before batch `joinAt`, is recorded before
    // batch `recordAt` with a start anywhere, and asks what it is owed at the end.
    fc.assert(
      fc.property(fc.array(fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 4 }), { maxLength: 8 }), fc.nat(8), fc.nat(8), fc.nat(60), (gaps, joinAt, recordAfter, start) => {
        let lsn = 0n;
        const batches = gaps.map((batch) => batch.map((gap) => commit((lsn += BigInt(gap)))));
        const starts = new SubscriberStarts<ChangesSubscriber>();
        const s = sub('s');
        const recordAt = joinAt + recordAfter;
        const from = BigInt(start);
        let taken: PendingCommit[] = [];
        batches.forEach((batch, i) => {
          if (i === joinAt) starts.register(s);
          if (i === recordAt) starts.recorded(s, from);
          starts.taken(batch);
          if (i >= joinAt) taken = taken.concat(batch);
        });
        if (joinAt >= batches.length) starts.register(s);
        if (recordAt >= batches.length) starts.recorded(s, from);
        const [ready] = starts.ready(1n << 62n);
        expect(lsns(ready!.owed)).toEqual(lsns(taken.filter((t) => t.commitLsn >= from)));
      }),
    );
  });

  it('goes live only once the next commit to be taken is at or past its start', () => {
    const starts = new SubscriberStarts<ChangesSubscriber>();
    const s = sub('s');
    starts.register(s);
    expect(starts.ready(1000n)).toEqual([]);
    starts.recorded(s, 100n);
    expect(starts.ready(99n)).toEqual([]);
    expect(starts.ready(100n).map((r) => r.sub)).toEqual([s]);
  });

  it('holds confirmation while a joiner is not on record or is owed commits, and while an earlier run is held', () => {
    const starts = new SubscriberStarts<ChangesSubscriber>();
    const s = sub('s');
    expect(starts.holding).toBe(false);
    starts.register(s);
    expect(starts.holding).toBe(true);
    starts.recorded(s, 100n);
    expect(starts.holding).toBe(false);
    starts.taken([commit(50n), commit(150n)]);
    expect(starts.holding).toBe(true);
    expect(starts.admitted(s, starts.ready(151n)[0]!.owed)).toBe(true);
    expect(starts.holding).toBe(false);
    starts.hold([held({ role: 'anon' })]);
    expect(starts.holding).toBe(true);
    expect(starts.expire()).toHaveLength(1);
    expect(starts.holding).toBe(false);
  });

  it('a rejoin is owed what was held, then what was taken since, whatever position it was recorded at', () => {
    const starts = new SubscriberStarts<ChangesSubscriber>();
    starts.hold([held({ role: 'service_role' })]);
    starts.taken([commit(10n), commit(20n)]);
    const r = sub('r', { role: 'service_role' });
    expect(starts.register(r)).not.toBeNull();
    starts.taken([commit(30n)]);
    starts.recorded(r, 25n);
    expect(lsns(starts.ready(31n)[0]!.owed)).toEqual([10n, 20n, 30n]);
  });

  it('tells where a subscriber starts, and a move before any event, saying so, is owed none of the older commits held', () => {
    // The first owner: it is recorded at 25, owed commits from 25 on.
    const first = new SubscriberStarts<ChangesSubscriber>();
    const s = sub('00000000-0000-4000-8000-000000000001');
    first.register(s);
    expect(first.recorded(s, 25n)).toBe(25n);
    expect(first.recorded(sub('other'), 25n)).toBeNull();
    // The next owner holds everything since its stream started (confirmation held back for a dead node's subscribers).
    const next = new SubscriberStarts<ChangesSubscriber>();
    next.hold([held({ role: 'anon' })]);
    next.taken([commit(10n), commit(20n), commit(30n)]);
    expect(next.register(s)).not.toBeNull();
    expect(next.recorded(s, 99n, 24n)).toBe(25n);
    expect(lsns(next.ready(31n)[0]!.owed)).toEqual([30n]);
  });

  it('a move whose node cannot say where it started (the first answer never reached it) starts where the record says', () => {
    const s = sub('00000000-0000-4000-8000-000000000001');
    const next = new SubscriberStarts<ChangesSubscriber>();
    // Its record, written by the owner that answered too late, says it starts at 25.
    next.hold([new PendingSubscriber(s.instance, 'room', false, [binding('t')], { role: 'anon' }, 25n)]);
    next.taken([commit(10n), commit(20n), commit(30n)]);
    expect(next.register(s)).not.toBeNull();
    expect(next.continuedFrom(s, null)).toBe(25n);
    expect(next.continuedFrom(s, 27n)).toBe(28n);
    expect(next.recorded(s, 99n, null)).toBe(25n);
    expect(lsns(next.ready(31n)[0]!.owed)).toEqual([30n]);
    // A record of a run before starts were kept: everything held.
    const old = new SubscriberStarts<ChangesSubscriber>();
    old.hold([held({ role: 'anon' })]);
    old.taken([commit(10n)]);
    old.register(s);
    expect(old.recorded(s, 99n, null)).toBe(0n);
    // A new subscription has no start before it is on record.
    const fresh = new SubscriberStarts<ChangesSubscriber>();
    fresh.register(s);
    expect(fresh.continuedFrom(s, 27n)).toBeNull();
  });

  it('a subscriber of another role starts fresh and leaves the held one to its own rejoin', () => {
    const starts = new SubscriberStarts<ChangesSubscriber>();
    starts.hold([held({ role: 'service_role' })]);
    starts.taken([commit(10n)]);
    const anon = sub('a', { role: 'anon' });
    expect(starts.register(anon)).toBeNull();
    starts.recorded(anon, 15n);
    expect(starts.ready(16n)[0]!.owed).toEqual([]);
    expect(starts.pendingCount).toBe(1);
  });

  it('a claim is given back when the rejoin leaves before it is on record, with everything held meanwhile', () => {
    const starts = new SubscriberStarts<ChangesSubscriber>();
    starts.hold([held({ role: 'anon' })]);
    starts.taken([commit(10n)]);
    const first = sub('first');
    starts.register(first);
    expect(starts.pendingCount).toBe(0);
    starts.taken([commit(20n)]);
    expect(starts.leave(first)).toBeNull();
    expect(starts.pendingCount).toBe(1);
    const second = sub('second');
    expect(starts.register(second)).not.toBeNull();
    starts.recorded(second, 99n);
    expect(lsns(starts.ready(21n)[0]!.owed)).toEqual([10n, 20n]);
  });

  it('after the grace period a claim given back is not held again: its record is to be removed', () => {
    const starts = new SubscriberStarts<ChangesSubscriber>();
    const p = held({ role: 'anon' });
    starts.hold([p]);
    const r = sub('r');
    starts.register(r);
    expect(starts.expire()).toEqual([]);
    expect(starts.leave(r)).toBe(p);
    expect(starts.pendingCount).toBe(0);
  });
});

describe('the held log', () => {
  it('keeps only the changes a held subscriber could want, by table and event', () => {
    const log = new HeldLog();
    log.append([commit(10n, [change('t'), change('u')]), commit(20n, [change('u')]), commit(30n, [change('t', 'DELETE')])], [binding('t', 'INSERT')]);
    const kept = log.snapshot();
    expect(kept.map((t) => [t.commitLsn, t.changes.map((c) => c.relation.name)])).toEqual([[10n, ['t']]]);
    log.clear();
    expect(log.size).toBe(0);
  });
});
