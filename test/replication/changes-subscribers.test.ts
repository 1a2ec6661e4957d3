import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Binding } from '../../src/replication/changes/index.js';
import { PendingSubscriber } from '../../src/replication/changes-subscribers.js';

const binding = (id: number): Binding => ({ id, event: 'INSERT', schema: 'public', table: 't', filters: [], select: null }) as unknown as Binding;

function held(claims: Record<string, unknown>, ids = [7, 9]): PendingSubscriber {
  return new PendingSubscriber('00000000-0000-4000-8000-000000000001', 'room', false, ids.map(binding), claims);
}

function rejoin(claims: Record<string, unknown>, ids = [9, 7], topic = 'room', legacy = false) {
  return { topic, legacy, bindings: ids.map(binding), claims };
}

describe('which rejoin continues a held subscriber', () => {
  it('the same topic, bindings (in any order) and user; a refreshed token of that user too', () => {
    const user = { role: 'authenticated', sub: 'u1', exp: 1 };
    expect(held(user).claimableBy(rejoin({ role: 'authenticated', sub: 'u1', exp: 2, iat: 1 }))).toBe(true);
    expect(held({ role: 'anon' }).claimableBy(rejoin({ role: 'anon', iss: 'x' }))).toBe(true);
  });

  it('never a rejoin of another role: the keys without a sub do not match each other', () => {
    // The reported hole: the service_role and anon keys carry no sub.
    expect(held({ role: 'service_role' }).claimableBy(rejoin({ role: 'anon' }))).toBe(false);
    expect(held({ role: 'anon' }).claimableBy(rejoin({ role: 'service_role' }))).toBe(false);
    expect(held({ role: 'authenticated', sub: 'u1' }).claimableBy(rejoin({ role: 'anon', sub: 'u1' }))).toBe(false);
  });

  it('never another user, nor a sub given as null for one that has none', () => {
    expect(held({ role: 'authenticated', sub: 'u1' }).claimableBy(rejoin({ role: 'authenticated', sub: 'u2' }))).toBe(false);
    expect(held({ role: 'authenticated', sub: 'u1' }).claimableBy(rejoin({ role: 'authenticated' }))).toBe(false);
    expect(held({ role: 'anon' }).claimableBy(rejoin({ role: 'anon', sub: null }))).toBe(false);
    expect(held({}).claimableBy(rejoin({ role: null }))).toBe(false);
  });

  it('never another topic, topic form or set of bindings', () => {
    const user = { role: 'anon' };
    expect(held(user).claimableBy(rejoin(user, [7, 9], 'other'))).toBe(false);
    expect(held(user).claimableBy(rejoin(user, [7, 9], 'room', true))).toBe(false);
    expect(held(user).claimableBy(rejoin(user, [7]))).toBe(false);
    expect(held(user).claimableBy(rejoin(user, [7, 9, 11]))).toBe(false);
  });

  it('matches exactly when role and sub are the same, whatever else the claims hold', () => {
    const value = fc.oneof(fc.constant(undefined), fc.constant(null), fc.constantFrom('anon', 'service_role', 'authenticated', 'u1', 'u2'));
    const claims = fc.record({ role: value, sub: value, team: value }).map((c) => Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)));
    fc.assert(
      fc.property(claims, claims, (before, after) => {
        const same = 'role' in before === 'role' in after && before.role === after.role && 'sub' in before === 'sub' in after && before.sub === after.sub;
        expect(held(before).claimableBy(rejoin(after))).toBe(same);
      }),
    );
  });
});
