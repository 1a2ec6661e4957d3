import { describe, expect, it } from 'vitest';
import type { LocalPublisher, PubSubMessage } from '../../src/shared/messages.js';
import { isPresenceTopicKey, presenceTopicKey, topicKey } from '../../src/shared/topic-keys.js';
import { parsePresenceState, PresenceChanges } from '../../src/presence/crdt.js';
import { newReplicaId, presenceTopic, TenantPresence } from '../../src/presence/tenant-presence.js';

class RecordingPubSub implements LocalPublisher {
  readonly sent: PubSubMessage[] = [];
  publishLocal(msg: PubSubMessage): void {
    this.sent.push(msg);
  }
  diffs(): unknown[] {
    return this.sent.map((m) => (m.env.type === 'json' ? JSON.parse(m.env.payloadJson) : null));
  }
}

const wire = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

describe('presence topic keys', () => {
  it('live in their own namespace, told apart without allocation', () => {
    const key = presenceTopicKey('t1', 'room', false);
    expect(key).not.toBe(topicKey('t1', 'room', false));
    expect(isPresenceTopicKey(key)).toBe(true);
    expect(isPresenceTopicKey(presenceTopicKey('t1', 'a|b-presence|c', true))).toBe(true);
    expect(isPresenceTopicKey(topicKey('t1', 'room', false))).toBe(false);
    expect(isPresenceTopicKey(topicKey('t1', 'x-presence|y', false))).toBe(false);
    expect(isPresenceTopicKey(topicKey('t1', '-presence', true))).toBe(false);
    expect(isPresenceTopicKey('nonsense')).toBe(false);
  });

  it('replica ids differ per instance', () => {
    expect(newReplicaId()).not.toBe(newReplicaId());
    expect(newReplicaId()).toContain(`-${process.pid}/`);
  });
});

describe('TenantPresence', () => {
  it('publishes one presence_diff per changed topic, to the presence key of that topic', () => {
    const p = new TenantPresence('t1', 'node-a');
    const bus = new RecordingPubSub();
    const changes = new PresenceChanges()
      .addTrack(p.track(presenceTopic(false, 'room'), 'c1', 'alice', { n: 1 }))
      .addTrack(p.track(presenceTopic(true, 'room'), 'c2', 'bob', {}));
    expect(p.publish(bus, changes)).toBe(2);
    expect(bus.sent.map((m) => [m.tenantId, m.key, m.subTopic, m.env.type === 'json' && m.env.event])).toEqual([
      ['t1', presenceTopicKey('t1', 'room', false), 'room', 'presence_diff'],
      ['t1', presenceTopicKey('t1', 'room', true), 'room', 'presence_diff'],
    ]);
    const ref = p.replica.entries(presenceTopic(false, 'room'))[0].ref;
    expect(bus.diffs()[0]).toEqual({ joins: { alice: { metas: [{ n: 1, phx_ref: ref }] } }, leaves: {} });
    expect(p.stateJson(presenceTopic(false, 'room'))).toBe(JSON.stringify({ alice: { metas: [{ n: 1, phx_ref: ref }] } }));
    expect(p.stateJson(presenceTopic(false, 'empty'))).toBe('{}');
  });

  it('replicates through takeDelta/mergeRemote, fanning the merged changes out on the receiving node', () => {
    const a = new TenantPresence('t1', 'node-a');
    const b = new TenantPresence('t1', 'node-b');
    const bus = new RecordingPubSub();
    const topic = presenceTopic(false, 'room');
    a.track(topic, 'c1', 'alice', { s: 'online' });
    a.track(topic, 'c1', 'alice', { s: 'away' });
    b.mergeRemote(parsePresenceState(wire(a.takeDelta())), bus);
    expect(a.takeDelta()).toBeNull();
    // Two local operations, one delta: the receiving node sees only the result.
    expect(bus.diffs()).toEqual([{ joins: { alice: { metas: [expect.objectContaining({ s: 'away' })] } }, leaves: {} }]);
    expect(b.stateJson(topic)).toBe(a.stateJson(topic));

    a.untrackAll('c1');
    b.mergeRemote(parsePresenceState(wire(a.takeDelta())), bus);
    expect(bus.diffs()[1]).toEqual({ joins: {}, leaves: { alice: { metas: [expect.objectContaining({ s: 'away' })] } } });
    expect(b.size).toBe(0);
  });

  it('drops a dead node with leave diffs, and catches a new node up from a snapshot', () => {
    const a = new TenantPresence('t1', 'node-a');
    const b = new TenantPresence('t1', 'node-b');
    const bus = new RecordingPubSub();
    const topic = presenceTopic(false, 'room');
    a.track(topic, 'c1', 'alice', {});
    b.mergeRemote(parsePresenceState(wire(a.snapshot())), bus);
    expect(b.size).toBe(1);
    b.removeReplica('node-a', bus);
    expect(b.size).toBe(0);
    expect(bus.diffs()[1]).toEqual({ joins: {}, leaves: { alice: { metas: [expect.any(Object)] } } });
  });
});
