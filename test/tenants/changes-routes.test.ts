import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import type { LiveSubscriber } from '../../src/replication/changes-engine.js';
import type { OutgoingChange, PubSubMessage } from '../../src/shared/messages.js';
import { ChangesRoutes } from '../../src/tenants/changes-routes.js';
import { parseChangesWire, type ToOwner } from '../../src/tenants/changes-wire.js';
import type { TenantRuntime } from '../../src/tenants/tenant.js';

const log = createLogger('silent');
const runtime = { id: 't1', streamOwner: null } as unknown as TenantRuntime;

function subscriber(): LiveSubscriber & { got: OutgoingChange[]; keys: Set<string>; notes: string[] } {
  const got: OutgoingChange[] = [];
  const keys = new Set<string>();
  const notes: string[] = [];
  return {
    instance: 'inst-1',
    topic: 'room',
    legacy: false,
    bindings: [{ id: 1, event: '*', schema: 'public', table: 'todos', filters: [], select: null }] as never,
    claims: { role: 'authenticated' },
    deliverMany: (items) => void got.push(...items),
    flush: () => undefined,
    enterFanout: (key) => void keys.add(key),
    exitFanout: (key) => void keys.delete(key),
    notify: (_status, message) => void notes.push(message),
    got,
    keys,
    notes,
  };
}

function harness(holder: { node: string }, start: string | null = null) {
  const sent: { node: string; msg: ToOwner }[] = [];
  const local: PubSubMessage[] = [];
  const routes = new ChangesRoutes({
    self: 'node-s',
    send: (node, msg) => {
      sent.push({ node, msg });
      // The owner answers every request at once.
      if (msg.t === 'sub') queueMicrotask(() => routes.receive({ t: 'reply', from: node, tenant: msg.tenant, id: msg.id, problem: null, retry: null, start }));
    },
    holder: async () => ({ node: holder.node, fence: holder.node === 'node-o1' ? 1 : 2 }),
    engineOf: () => {
      throw new Error('no local engine in this test');
    },
    local: { publishLocal: (msg) => void local.push(msg) },
    log,
  });
  return { routes, sent, local };
}

const event = (id: number, lsn: bigint) => ({ type: 'INSERT', data: `{"id":${id}}`, idsJson: '[1]', lsn: lsn.toString() });

describe('Postgres Changes routed to the tenant owner', () => {
  it("takes events only from the owner it routes to, and tells a new owner the last commit it got", async () => {
    const holder = { node: 'node-o1' };
    const { routes, sent, local } = harness(holder);
    const sub = subscriber();
    expect(await routes.subscribe(runtime, sub)).toBeNull();
    expect(sent[0]).toMatchObject({ node: 'node-o1', msg: { t: 'sub', instance: 'inst-1', after: null } });

    routes.receive({ t: 'items', from: 'node-o1', tenant: 't1', instance: 'inst-1', items: [event(1, 100n)] });
    routes.receive({ t: 'enter', from: 'node-o1', tenant: 't1', instance: 'inst-1', key: 't1|pgc|g1' });
    routes.receive({ t: 'group', from: 'node-o1', tenant: 't1', key: 't1|pgc|g1', topic: 'room', legacy: false, items: [event(2, 200n)] });
    // Another node (a replaced owner woken up) is not listened to.
    routes.receive({ t: 'items', from: 'node-x', tenant: 't1', instance: 'inst-1', items: [event(9, 900n)] });
    routes.receive({ t: 'group', from: 'node-x', tenant: 't1', key: 't1|pgc|g1', topic: 'room', legacy: false, items: [event(9, 900n)] });
    expect(sub.got.map((c) => c.data)).toEqual(['{"id":1}']);
    expect(local.map((m) => (m.env as unknown as { items: OutgoingChange[] }).items.map((c) => c.data))).toEqual([['{"id":2}']]);
    expect(sub.keys).toEqual(new Set(['t1|pgc|g1']));

    // A new owner: the old groups are left, and the subscription moves saying what it got last.
    holder.node = 'node-o2';
    routes.ownerAnnounced('t1', 'node-o1', 1);
    expect(sent).toHaveLength(1);
    routes.ownerAnnounced('t1', 'node-o2', 2);
    await new Promise((r) => setTimeout(r, 10));
    expect(sub.keys.size).toBe(0);
    expect(sent.at(-1)).toMatchObject({ node: 'node-o2', msg: { t: 'sub', instance: 'inst-1', after: '200' } });
    routes.receive({ t: 'items', from: 'node-o1', tenant: 't1', instance: 'inst-1', items: [event(3, 300n)] });
    routes.receive({ t: 'items', from: 'node-o2', tenant: 't1', instance: 'inst-1', items: [event(3, 300n)] });
    expect(sub.got.map((c) => c.data)).toEqual(['{"id":1}', '{"id":3}']);
    expect(sub.got[1]!.commitLsn).toBe(300n);

    // The same node owning the tenant again (its lease had lapsed): a new engine, so the subscription moves too.
    const before = sent.length;
    routes.ownerAnnounced('t1', 'node-o2', 3);
    await new Promise((r) => setTimeout(r, 10));
    expect(sent.slice(before)).toMatchObject([{ node: 'node-o2', msg: { t: 'sub', instance: 'inst-1', after: '300' } }]);

    routes.unsubscribe(sub, false);
    expect(sent.at(-1)).toMatchObject({ node: 'node-o2', msg: { t: 'unsub', instance: 'inst-1', keep: false } });
  });

  it('moves a subscription that got nothing yet saying where it started, not as owed everything held', async () => {
    const holder = { node: 'node-o1' };
    // The owner recorded it owing it the commits from 500 on.
    const { routes, sent } = harness(holder, '500');
    const sub = subscriber();
    expect(await routes.subscribe(runtime, sub)).toBeNull();
    holder.node = 'node-o2';
    routes.ownerAnnounced('t1', 'node-o2', 2);
    await new Promise((r) => setTimeout(r, 10));
    expect(sent.at(-1)).toMatchObject({ node: 'node-o2', msg: { t: 'sub', instance: 'inst-1', after: '499' } });
    // Events got meanwhile still count: the newest one wins.
    routes.receive({ t: 'items', from: 'node-o2', tenant: 't1', instance: 'inst-1', items: [event(7, 700n)] });
    routes.ownerAnnounced('t1', 'node-o2', 3);
    await new Promise((r) => setTimeout(r, 10));
    expect(sent.at(-1)).toMatchObject({ node: 'node-o2', msg: { t: 'sub', instance: 'inst-1', after: '700' } });
  });

  it('is confirmed by the owner it moved to when the owner changes before the first answer, whose late answer is ignored', async () => {
    const sent: { node: string; msg: ToOwner }[] = [];
    let holderNode = 'node-o1';
    const routes = new ChangesRoutes({
      self: 'node-s',
      // Nobody answers by itself: the test does, in the order it wants.
      send: (node, msg) => void sent.push({ node, msg }),
      holder: async () => ({ node: holderNode, fence: holderNode === 'node-o1' ? 1 : 2 }),
      engineOf: () => {
        throw new Error('no local engine in this test');
      },
      local: { publishLocal: () => undefined },
      log,
    });
    const sub = subscriber();
    let outcome: string | null | undefined;
    const subscribing = routes.subscribe(runtime, sub).then((r) => (outcome = r));
    await new Promise((r) => setTimeout(r, 10));
    const first = sent[0]!.msg as Extract<ToOwner, { t: 'sub' }>;
    expect(sent[0]!.node).toBe('node-o1');
    // The owner (paused) has not answered; another takes over.
    holderNode = 'node-o2';
    routes.ownerAnnounced('t1', 'node-o2', 2);
    await new Promise((r) => setTimeout(r, 10));
    const second = sent.at(-1)!.msg as Extract<ToOwner, { t: 'sub' }>;
    expect(sent.at(-1)!.node).toBe('node-o2');
    expect(second.after).toBeNull();
    // The first owner wakes up and answers (as a stale owner would, or even as if it had served it): not confirmed.
    routes.receive({ t: 'reply', from: 'node-o1', tenant: 't1', id: first.id, problem: null, retry: null, start: '100' });
    routes.receive({ t: 'reply', from: 'node-o1', tenant: 't1', id: first.id, problem: null, retry: 'this node does not run the tenant\'s streams', start: null });
    await new Promise((r) => setTimeout(r, 10));
    expect(outcome).toBeUndefined();
    routes.receive({ t: 'reply', from: 'node-o2', tenant: 't1', id: second.id, problem: null, retry: null, start: '500' });
    await subscribing;
    expect(outcome).toBeNull();
    // Where it starts is the answer of the owner that serves it.
    routes.ownerAnnounced('t1', 'node-o2', 3);
    await new Promise((r) => setTimeout(r, 10));
    expect(sent.at(-1)).toMatchObject({ node: 'node-o2', msg: { t: 'sub', after: '499' } });
  });

  it('lets every owner that may hold it go when a subscription fails before it is confirmed', async () => {
    const sent: { node: string; msg: ToOwner }[] = [];
    const routes = new ChangesRoutes({
      self: 'node-s',
      send: (node, msg) => {
        sent.push({ node, msg });
        if (msg.t === 'sub') queueMicrotask(() => routes.receive({ t: 'reply', from: node, tenant: msg.tenant, id: msg.id, problem: null, retry: 'database away', start: null }));
      },
      holder: async () => ({ node: 'node-o1', fence: 1 }),
      engineOf: () => {
        throw new Error('no local engine in this test');
      },
      local: { publishLocal: () => undefined },
      log,
    });
    await expect(routes.subscribe(runtime, subscriber())).rejects.toThrow('database away');
    expect(sent.map((m) => [m.node, m.msg.t])).toEqual([
      ['node-o1', 'sub'],
      ['node-o1', 'unsub'],
    ]);
    expect(sent[1]!.msg).toMatchObject({ keep: false });
  });

  it('drops malformed bus messages', () => {
    expect(parseChangesWire('nope')).toBeNull();
    expect(parseChangesWire('{"t":"items","from":"a","tenant":"t","instance":"i","items":[{"type":"INSERT","data":"{}","idsJson":null,"lsn":"x1"}]}')).toBeNull();
    expect(parseChangesWire('{"t":"sub","from":"a","tenant":"t","id":1,"instance":"i","topic":"r","legacy":false,"bindings":[],"claims":{},"after":"12"}')).not.toBeNull();
    expect(parseChangesWire('{"t":"sub","from":"a","tenant":"t","id":1,"instance":"i","topic":"r","legacy":false,"bindings":[],"claims":{}}')).toBeNull();
    expect(parseChangesWire('{"t":"reply","from":"a","tenant":"t","id":1,"problem":null,"retry":null,"start":"42"}')).not.toBeNull();
    expect(parseChangesWire('{"t":"reply","from":"a","tenant":"t","id":1,"problem":null,"retry":null,"start":"-1"}')).toBeNull();
  });
});
