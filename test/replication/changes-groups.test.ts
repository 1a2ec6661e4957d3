import { describe, expect, it } from 'vitest';
import type { Binding } from '../../src/replication/changes/index.js';
import { SubscriberGroups, type FanoutMember } from '../../src/replication/changes-groups.js';
import type { LocalPublisher, OutgoingChange, PubSubMessage } from '../../src/shared/messages.js';

const binding = { id: 7, event: 'INSERT', schema: 'public', table: 't', filters: [], select: null } as unknown as Binding;

function member(name: string, claims: Record<string, unknown>, log: string[]): FanoutMember {
  const queued: OutgoingChange[] = [];
  return {
    instance: name,
    topic: 'room',
    legacy: false,
    bindings: [binding],
    claims,
    deliverMany: (items) => void queued.push(...items),
    flush: () => void log.push(`${name} direct ${queued.splice(0).map((i) => i.data).join(',')}`),
    enterFanout: (key) => void log.push(`${name} enter ${key}`),
    exitFanout: (key) => void log.push(`${name} exit ${key}`),
  };
}

class Published implements LocalPublisher {
  readonly messages: PubSubMessage[] = [];
  publishLocal(msg: PubSubMessage, exclude: number | null): void {
    expect(exclude).toBeNull();
    this.messages.push(msg);
  }
}

describe('subscriber groups', () => {
  it('groups equal claims (distinct objects), and publishes a group batch once, on this node, for its topic key', () => {
    const log: string[] = [];
    const published = new Published();
    const groups = new SubscriberGroups<FanoutMember>('t1', published);
    const a = member('a', { role: 'anon' }, log);
    const b = member('b', { role: 'anon' }, log);
    const c = member('c', { role: 'anon' }, log);
    const other = member('o', { role: 'authenticated', sub: 'u1' }, log);
    for (const m of [a, b, c, other]) groups.join(m);
    expect(groups.count).toBe(2);
    const [shared, alone] = groups.list();
    expect(shared!.weight).toBe(3);
    expect(alone!.weight).toBe(1);
    expect(shared!.fanoutKey).toMatch(/^t1\|pgc\|group-[0-9a-f]+-\d+$/);
    expect(alone!.fanoutKey).not.toBe(shared!.fanoutKey);
    expect(log).toEqual([...['a', 'b', 'c'].map((n) => `${n} enter ${shared!.fanoutKey}`), `o enter ${alone!.fanoutKey}`]);
    const items = [{ type: 'INSERT', data: 'x', idsJson: '[7]' }, { type: 'INSERT', data: 'y', idsJson: '[7]' }];
    shared!.deliverMany(items.slice(0, 1));
    shared!.deliverMany(items.slice(1));
    shared!.flush();
    shared!.flush();
    expect(published.messages).toEqual([{ tenantId: 't1', key: shared!.fanoutKey, subTopic: 'room', env: { type: 'changes', legacy: false, items } }]);
  });

  it('moves a member whose claims changed, and drops empty groups', () => {
    const log: string[] = [];
    const groups = new SubscriberGroups<FanoutMember>('t1', new Published());
    const a = member('a', { role: 'anon' }, log);
    const b = member('b', { role: 'anon' }, log);
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
});
