import { describe, expect, it } from 'vitest';
import type { Binding } from '../../src/replication/changes/index.js';
import { SubscriberGroups, type FanoutMember } from '../../src/replication/changes-groups.js';
import type { OutgoingChange } from '../../src/replication/changes-subscribers.js';

const binding = { id: 7, event: 'INSERT', schema: 'public', table: 't', filters: [], select: null } as unknown as Binding;

function member(name: string, serializer: string, claims: Record<string, unknown>, log: string[], keepsUp = () => true): FanoutMember {
  const queued: OutgoingChange[] = [];
  return {
    keepsUp,
    instance: name,
    topic: 'room',
    legacy: false,
    bindings: [binding],
    claims,
    serializer,
    deliverMany: (items) => void queued.push(...items),
    flush: () => void log.push(`${name} direct ${queued.splice(0).map((i) => i.data).join(',')}`),
    enterFanout: (topic) => void log.push(`${name} enter ${topic.split('|')[2]}`),
    exitFanout: (topic) => void log.push(`${name} exit ${topic.split('|')[2]}`),
    publish: (topic, items) => void log.push(`${name} publish ${topic.split('|')[2]} ${items.map((i) => i.data).join(',')}`),
  };
}

describe('subscriber groups', () => {
  it('groups equal claims (distinct objects), writes a lone serializer directly and publishes for several', () => {
    const log: string[] = [];
    const groups = new SubscriberGroups<FanoutMember>();
    const a = member('a', '2.0.0', { role: 'anon' }, log);
    const b = member('b', '2.0.0', { role: 'anon' }, log);
    const c = member('c', '1.0.0', { role: 'anon' }, log);
    const other = member('o', '2.0.0', { role: 'authenticated', sub: 'u1' }, log);
    for (const m of [a, b, c, other]) groups.join(m);
    expect(groups.count).toBe(2);
    const [shared, alone] = groups.list();
    expect(shared!.weight).toBe(3);
    expect(alone!.weight).toBe(1);
    log.length = 0;
    shared!.deliverMany([{ type: 'INSERT', data: 'x', idsJson: '[7]' }]);
    shared!.flush();
    expect(log.sort()).toEqual(['a publish 2.0.0 x', 'c direct x']);
  });

  it('moves a member whose claims changed, and drops empty groups', () => {
    const log: string[] = [];
    const groups = new SubscriberGroups<FanoutMember>();
    const a = member('a', '2.0.0', { role: 'anon' }, log);
    const b = member('b', '2.0.0', { role: 'anon' }, log);
    groups.join(a);
    groups.join(b);
    b.claims = { role: 'authenticated', sub: 'u2' };
    groups.rejoin(b);
    expect(groups.list().map((g) => g.weight)).toEqual([1, 1]);
    groups.leave(a);
    groups.leave(b);
    expect(groups.count).toBe(0);
    expect(log.filter((l) => l.includes('exit'))).toHaveLength(3);
  });

  it('leaves out a member that fell behind (it was told and is leaving) and writes to the rest', () => {
    const log: string[] = [];
    const groups = new SubscriberGroups<FanoutMember>();
    let bKeepsUp = true;
    const a = member('a', '2.0.0', { role: 'anon' }, log);
    const b = member('b', '2.0.0', { role: 'anon' }, log, () => bKeepsUp);
    const c = member('c', '2.0.0', { role: 'anon' }, log);
    for (const m of [a, b, c]) groups.join(m);
    const [group] = groups.list();
    log.length = 0;
    group!.deliverMany([{ type: 'INSERT', data: 'x', idsJson: '[7]' }]);
    group!.flush();
    expect(log).toEqual(['a publish 2.0.0 x']);
    // b fell behind and is leaving, but its channel has not left the group yet: a is written to directly...
    bKeepsUp = false;
    groups.leave(c);
    log.length = 0;
    group!.deliverMany([{ type: 'INSERT', data: 'y', idsJson: '[7]' }]);
    group!.flush();
    expect(log.filter((l) => !l.includes('exit'))).toEqual(['a direct y']);
    // ...and nothing is written when no member keeps up.
    groups.leave(a);
    log.length = 0;
    group!.deliverMany([{ type: 'INSERT', data: 'z', idsJson: '[7]' }]);
    group!.flush();
    expect(log.filter((l) => !l.includes('exit'))).toEqual([]);
  });
});
