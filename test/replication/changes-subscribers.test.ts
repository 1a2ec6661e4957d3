import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PendingSubscriber, type ChangesSubscriber } from '../../src/replication/changes-subscribers.js';

function recorder(): ChangesSubscriber & { got: string[] } {
  const got: string[] = [];
  return {
    got,
    instance: 'live',
    topic: 'room',
    legacy: false,
    bindings: [],
    claims: {},
    deliverMany: (items) => void got.push(...items.map((i) => i.data)),
    flush: () => undefined,
  };
}

describe('a pending subscriber handed over to its rejoined heir', () => {
  it('passes on everything, held or arriving later, once and in order', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.string(), { maxLength: 4 }), { maxLength: 12 }), fc.nat(12), (batches, cut) => {
        const pending = new PendingSubscriber('old', 'room', false, [], {}, null);
        const heir = recorder();
        const sent: string[] = [];
        batches.forEach((batch, i) => {
          if (i === cut) pending.handOver(heir);
          pending.deliverMany(batch.map((data) => ({ data, idsJson: null, type: 'INSERT' })));
          sent.push(...batch);
        });
        if (cut >= batches.length) pending.handOver(heir);
        expect(heir.got).toEqual(sent);
        expect(pending.held).toEqual([]);
      }),
    );
  });

  it('reports how many held changes it handed over', () => {
    const pending = new PendingSubscriber('old', 'room', false, [], {}, null);
    pending.deliverMany([{ data: '{"a":1}', idsJson: '[1]', type: 'INSERT' }]);
    pending.deliverMany([{ data: '{"a":2}', idsJson: '[1]', type: 'UPDATE' }]);
    expect(pending.handOver(recorder())).toBe(2);
  });
});
