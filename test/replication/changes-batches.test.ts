/**
 * The batch loop of a changes engine with a dispatcher whose checks the test answers by hand: a batch's checks may
 * start while the batch before waits for its own (pipelining), yet batches are handed out and confirmed in commit
 * order, whichever answer comes first; nobody joins while a batch is under way; a failed batch is logged, not
 * handed out, and the loop goes on.
 */
import { describe, expect, it } from 'vitest';
import { BatchLoop, type BatchHost } from '../../src/replication/changes-batches.js';
import type { ChangesDispatcher, PendingCommit, PreparedDispatch } from '../../src/replication/changes-dispatch.js';
import { FrameFlusher } from '../../src/replication/changes-flush.js';
import { ChangesRateGate } from '../../src/replication/changes-rate.js';
import { createLogger } from '../../src/observability/logger.js';

interface Asked {
  lsns: bigint[];
  answer(ok?: boolean): void;
}

function harness(opts: { pipeline: boolean; room?: () => Promise<void> | null }) {
  const asked: Asked[] = [];
  const events: string[] = [];
  let joining = false;
  let owns = true;
  const dispatcher = {
    prepare: (txns: readonly PendingCommit[]) =>
      new Promise<PreparedDispatch | null>((resolve, reject) => {
        const lsns = txns.map((t) => t.commitLsn);
        events.push(`ask ${lsns.join(',')}`);
        asked.push({ lsns, answer: (ok = true) => (ok ? resolve({ planned: lsns } as never) : reject(new Error('pool gone'))) });
      }),
    handOut: (prepared: PreparedDispatch) => {
      events.push(`out ${(prepared.planned as unknown as bigint[]).join(',')}`);
      return { deliveries: 1, touched: [], queued: 0 };
    },
  } as unknown as ChangesDispatcher;
  const host: BatchHost = {
    dispatcher,
    flusher: new FrameFlusher(() => undefined),
    rate: new ChangesRateGate(undefined, createLogger('silent')),
    log: createLogger('silent'),
    pipeline: opts.pipeline,
    stopped: () => false,
    owns: () => owns,
    betweenBatches: async () => void events.push('between'),
    taken: () => [],
    mayRunAhead: () => !joining,
    confirm: (lsn) => void events.push(`confirm ${lsn}`),
    room: opts.room,
  };
  const loop = new BatchLoop(host);
  const commit = (lsn: bigint): PendingCommit => ({ changes: [{} as never], commitTime: 0n, xid: Number(lsn), commitLsn: lsn, ackLsn: lsn });
  return { loop, asked, events, commit, setJoining: (v: boolean) => void (joining = v), setOwns: (v: boolean) => void (owns = v) };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('the batch loop of Postgres Changes', () => {
  it('hands out no batch while the fan-out has no room, and goes on in order once it has', async () => {
    let full: { promise: Promise<void>; open(): void } | null = null;
    const h = harness({ pipeline: false, room: () => full?.promise ?? null });
    h.loop.push(h.commit(1n));
    await turn();
    h.asked[0]!.answer();
    await turn();
    expect(h.events.filter((e) => e.startsWith('out'))).toEqual(['out 1']);
    let open = () => undefined as void;
    full = { promise: new Promise<void>((resolve) => (open = resolve)), open: () => open() };
    h.loop.push(h.commit(2n));
    await turn();
    h.asked[1]?.answer();
    for (let i = 0; i < 5; i++) await turn();
    // Held: neither handed out nor confirmed while the fan-out is over its bound.
    expect(h.events.filter((e) => e.startsWith('out') || e.startsWith('confirm'))).toEqual(['out 1', 'confirm 1']);
    h.loop.push(h.commit(3n));
    full.open();
    full = null;
    for (let i = 0; i < 5 && h.asked.length < 3; i++) await turn();
    h.asked[2]?.answer();
    await h.loop.running;
    expect(h.events.filter((e) => e.startsWith('out') || e.startsWith('confirm'))).toEqual(['out 1', 'confirm 1', 'out 2', 'confirm 2', 'out 3', 'confirm 3']);
  });

  it('asks for the next batch while one waits, and hands both out in commit order whichever answer comes first', async () => {
    const h = harness({ pipeline: true });
    h.loop.push(h.commit(1n));
    await turn();
    h.loop.push(h.commit(2n));
    h.loop.push(h.commit(3n));
    await turn();
    // The second batch's checks started while the first still waits.
    expect(h.asked.map((a) => a.lsns)).toEqual([[1n], [2n, 3n]]);
    h.loop.push(h.commit(4n));
    await turn();
    // One batch ahead at most: 4 waits for the first to be handed out.
    expect(h.asked).toHaveLength(2);
    h.asked[1]!.answer();
    await turn();
    expect(h.events.filter((e) => e.startsWith('out'))).toEqual([]);
    h.asked[0]!.answer();
    await turn();
    // 4's checks start as soon as 2,3 waits again at the head (the next batch ahead).
    expect(h.asked.map((a) => a.lsns)).toEqual([[1n], [2n, 3n], [4n]]);
    h.asked[2]!.answer();
    await h.loop.running;
    expect(h.events).toEqual(['between', 'ask 1', 'ask 2,3', 'out 1', 'confirm 1', 'ask 4', 'out 2,3', 'confirm 3', 'out 4', 'confirm 4', 'between']);
  });

  it('without pipelining asks for one batch at a time', async () => {
    const h = harness({ pipeline: false });
    h.loop.push(h.commit(1n));
    await turn();
    h.loop.push(h.commit(2n));
    await turn();
    expect(h.asked).toHaveLength(1);
    h.asked[0]!.answer();
    await turn();
    expect(h.asked).toHaveLength(2);
    h.asked[1]!.answer();
    await h.loop.running;
    expect(h.events).toEqual(['between', 'ask 1', 'out 1', 'confirm 1', 'between', 'ask 2', 'out 2', 'confirm 2', 'between']);
  });

  it('runs no batch ahead while someone joins, and lets joiners in only with nothing under way', async () => {
    const h = harness({ pipeline: true });
    h.setJoining(true);
    h.loop.push(h.commit(1n));
    await turn();
    h.loop.push(h.commit(2n));
    await turn();
    expect(h.asked).toHaveLength(1);
    h.setJoining(false);
    h.asked[0]!.answer();
    await turn();
    h.asked[1]!.answer();
    await h.loop.running;
    expect(h.events).toEqual(['between', 'ask 1', 'out 1', 'confirm 1', 'between', 'ask 2', 'out 2', 'confirm 2', 'between']);
  });

  it('does not hand out a batch whose checks kept failing, confirms it, and goes on with the next', async () => {
    const h = harness({ pipeline: true });
    h.loop.push(h.commit(1n));
    await turn();
    h.loop.push(h.commit(2n));
    await turn();
    h.asked[0]!.answer(false);
    h.asked[1]!.answer();
    await h.loop.running;
    expect(h.events).toEqual(['between', 'ask 1', 'ask 2', 'confirm 1', 'out 2', 'confirm 2', 'between']);
  });

  it('hands out and confirms nothing while ownership is unsure: batches prepared before it lapsed wait, in order, for it to be sure again', async () => {
    const h = harness({ pipeline: true });
    h.loop.push(h.commit(1n));
    await turn();
    h.loop.push(h.commit(2n));
    await turn();
    expect(h.asked.map((a) => a.lsns)).toEqual([[1n], [2n]]);
    h.setOwns(false);
    h.loop.push(h.commit(3n));
    await turn();
    // No batch is prepared once ownership may have lapsed.
    expect(h.asked).toHaveLength(2);
    h.asked[1]!.answer();
    h.asked[0]!.answer();
    await h.loop.running;
    expect(h.events.filter((e) => !e.startsWith('ask') && e !== 'between')).toEqual([]);
    expect(h.loop.idle).toBe(false);
    expect(h.loop.nextCommitLsn).toBe(1n);
    // Sure again (a Redis blip without lease loss): the parked batches go first, then what waited.
    h.setOwns(true);
    h.loop.kick();
    await turn();
    await turn();
    h.asked[2]?.answer();
    await h.loop.running;
    expect(h.events.filter((e) => e.startsWith('out') || e.startsWith('confirm'))).toEqual(['out 1', 'confirm 1', 'out 2', 'confirm 2', 'out 3', 'confirm 3']);
    expect(h.loop.idle).toBe(true);
  });
});
