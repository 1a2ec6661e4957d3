import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DueGroups } from '../../src/channels/due-groups.js';

/** Resolves once `groups` fired an item equal to `marker` (a sentinel due after everything under test). */
function firedUntil<T>(fired: T[], marker: T): Promise<void> {
  return new Promise((resolve) => {
    const poll = () => (fired.includes(marker) ? resolve() : setTimeout(poll, 5));
    poll();
  });
}

describe('DueGroups', () => {
  it('puts items due at the same millisecond on one timer, and fires each once', async () => {
    const fired: string[] = [];
    const groups = new DueGroups<string>((item) => fired.push(item));
    const due = Date.now() + 20;
    const a = groups.add(due, 'a');
    const b = groups.add(due, 'b');
    expect(b).toBe(a);
    expect(groups.size).toBe(1);
    groups.add(due + 1, 'c');
    expect(groups.size).toBe(2);
    groups.add(due + 40, 'end');
    await firedUntil(fired, 'end');
    expect(fired).toEqual(['a', 'b', 'c', 'end']);
    expect(groups.size).toBe(0);
  });

  it('cancels an item; the last one out stops its timer; cancelling after the fire is harmless', async () => {
    const fired: string[] = [];
    const groups = new DueGroups<string>((item) => fired.push(item));
    const due = Date.now() + 20;
    const g = groups.add(due, 'a');
    groups.add(due, 'b');
    groups.cancel(g, 'a');
    expect(groups.size).toBe(1);
    groups.cancel(g, 'b');
    expect(groups.size).toBe(0);
    const later = groups.add(due + 10, 'c');
    groups.add(due + 30, 'end');
    await firedUntil(fired, 'end');
    expect(fired).toEqual(['c', 'end']);
    groups.cancel(later, 'c');
    expect(groups.size).toBe(0);
  });

  it('fires exactly the items added and not cancelled (random schedules)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ offset: fc.integer({ min: 0, max: 15 }), cancel: fc.boolean() }), { maxLength: 30 }),
        async (ops) => {
          const fired: number[] = [];
          const groups = new DueGroups<number>((item) => fired.push(item));
          const base = Date.now() + 5;
          const handles = ops.map((op, i) => groups.add(base + op.offset, i));
          ops.forEach((op, i) => op.cancel && groups.cancel(handles[i], i));
          const live = new Set(ops.flatMap((op, i) => (op.cancel ? [] : [base + op.offset])));
          expect(groups.size).toBe(live.size);
          groups.add(base + 30, -1);
          await firedUntil(fired, -1);
          const expected = ops.flatMap((op, i) => (op.cancel ? [] : [i]));
          expect(fired.filter((i) => i >= 0).sort((x, y) => x - y)).toEqual(expected);
          expect(groups.size).toBe(0);
        },
      ),
      { numRuns: 25 },
    );
  });
});
