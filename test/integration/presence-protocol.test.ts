import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePresenceState } from '../../src/presence/crdt.js';
import { presenceTopic, TenantPresence } from '../../src/presence/tenant-presence.js';
import { RawClient } from '../support/raw-client.js';
import { sleep, startTestServer, type TestServer } from '../support/server.js';

/** Exact presence frames on the wire, with bare WebSocket clients. */

let t: TestServer;
let url: (vsn?: string) => string;
beforeAll(async () => {
  t = await startTestServer();
  url = (vsn = '2.0.0') => `ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=${vsn}`;
});
afterAll(async () => {
  await t?.stop();
});

type Frame = [string | null, string | null, string, string, Record<string, unknown>];
type Metas = Record<string, { metas: Record<string, unknown>[] }>;
type Diff = { joins: Metas; leaves: Metas };

const presenceConfig = (enabled: boolean, key = '') => ({ config: { presence: { enabled, key } } });
const track = (topic: string, joinRef: string, ref: string, meta: unknown): Frame =>
  [joinRef, ref, topic, 'presence', { type: 'presence', event: 'track', payload: meta }] as Frame;
const untrack = (topic: string, joinRef: string, ref: string): Frame =>
  [joinRef, ref, topic, 'presence', { type: 'presence', event: 'untrack' }] as Frame;

async function joined(topic: string, joinRef: string, payload: unknown, vsn = '2.0.0'): Promise<RawClient> {
  const c = await RawClient.connect(url(vsn));
  c.send([joinRef, joinRef, topic, 'phx_join', payload]);
  expect((await c.reply(joinRef))[4]).toEqual({ status: 'ok', response: { postgres_changes: [] } });
  return c;
}

const isEvent = (event: string) => (m: unknown) => (m as Frame)[3] === event;
const nextDiff = async (c: RawClient, ms?: number) => (await c.nextText(isEvent('presence_diff'), ms)) as Frame;
const diffOf = (f: Frame) => f[4] as unknown as Diff;

/** Lets in-flight frames arrive before asserting that nothing (more) came. */
const settle = () => sleep(150);

describe('presence over vsn 2.0.0 (exact frames)', () => {
  it('pushes presence_state after the join reply with the join_ref; none when presence is off', async () => {
    const a = await joined('realtime:p-state', '3', presenceConfig(true));
    expect(await a.nextText()).toEqual(['3', null, 'realtime:p-state', 'presence_state', {}]);
    const b = await joined('realtime:p-state', '4', presenceConfig(false));
    await settle();
    expect(b.frames).toEqual([]);
    a.close();
    b.close();
  });

  it('track: reply ok {}, and one presence_diff [null,null,topic,...] to every presence member including the tracker', async () => {
    const topic = 'realtime:p-track';
    const a = await joined(topic, '1', presenceConfig(true, 'alice'));
    await a.nextText(isEvent('presence_state'));
    const b = await joined(topic, '7', presenceConfig(true, 'bob'));
    expect(await b.nextText(isEvent('presence_state'))).toEqual(['7', null, topic, 'presence_state', {}]);
    const off = await joined(topic, '1', presenceConfig(false));

    a.send(track(topic, '1', '2', { name: 'alice', n: 1 }));
    expect(await a.reply('2')).toEqual(['1', '2', topic, 'phx_reply', { status: 'ok', response: {} }]);
    const da = await nextDiff(a);
    expect(da.slice(0, 4)).toEqual([null, null, topic, 'presence_diff']);
    expect(Object.keys(da[4])).toEqual(['joins', 'leaves']);
    const ref = diffOf(da).joins.alice.metas[0].phx_ref as string;
    expect(typeof ref).toBe('string');
    expect(da[4]).toEqual({ joins: { alice: { metas: [{ name: 'alice', n: 1, phx_ref: ref }] } }, leaves: {} });
    expect(await nextDiff(b)).toEqual(da);

    // A late joiner sees the tracked entry in its state, with the same phx_ref.
    const late = await joined(topic, '9', presenceConfig(true));
    expect(await late.nextText(isEvent('presence_state'))).toEqual(['9', null, topic, 'presence_state', { alice: { metas: [{ name: 'alice', n: 1, phx_ref: ref }] } }]);
    await settle();
    expect(off.frames).toEqual([]);
    for (const c of [a, b, off, late]) c.close();
  });

  it('identical re-track is a no-op; a changed meta is one diff (leave + join with phx_ref_prev); untrack leaves', async () => {
    const topic = 'realtime:p-update';
    const a = await joined(topic, '1', presenceConfig(true, 'u1'));
    const b = await joined(topic, '1', presenceConfig(true));
    a.send(track(topic, '1', '2', { s: 'online', tags: [1, 2] }));
    const first = diffOf(await nextDiff(b)).joins.u1.metas[0];
    await a.reply('2');

    a.send(track(topic, '1', '3', { tags: [1, 2], s: 'online' }));
    expect((await a.reply('3'))[4]).toEqual({ status: 'ok', response: {} });
    await settle();
    expect(b.frames.filter((f) => typeof f === 'string' && f.includes('presence_diff'))).toEqual([]);

    a.send(track(topic, '1', '4', { s: 'away' }));
    await a.reply('4');
    const upd = diffOf(await nextDiff(b));
    const newRef = upd.joins.u1.metas[0].phx_ref;
    expect(newRef).not.toBe(first.phx_ref);
    expect(upd).toEqual({
      joins: { u1: { metas: [{ s: 'away', phx_ref: newRef, phx_ref_prev: first.phx_ref }] } },
      leaves: { u1: { metas: [{ s: 'online', tags: [1, 2], phx_ref: first.phx_ref }] } },
    });

    a.send(untrack(topic, '1', '5'));
    expect((await a.reply('5'))[4]).toEqual({ status: 'ok', response: {} });
    expect(diffOf(await nextDiff(b))).toEqual({ joins: {}, leaves: { u1: { metas: [{ s: 'away', phx_ref: newRef }] } } });

    // After untrack, the same meta again is a new join.
    a.send(track(topic, '1', '6', { s: 'away' }));
    const again = diffOf(await nextDiff(b));
    expect(again.leaves).toEqual({});
    expect(again.joins.u1.metas).toEqual([{ s: 'away', phx_ref: expect.any(String) }]);
    expect(again.joins.u1.metas[0].phx_ref).not.toBe(newRef);
    a.close();
    b.close();
  });

  it('answers a non-object meta with the upstream reason and an unknown event with an empty error; the socket stays', async () => {
    const topic = 'realtime:p-errors';
    const a = await joined(topic, '1', presenceConfig(false));
    a.send(track(topic, '1', '2', 'not a map'));
    expect(await a.reply('2')).toEqual(['1', '2', topic, 'phx_reply', { status: 'error', response: { reason: 'Presence track payload must be a map' } }]);
    a.send(track(topic, '1', '3', [1, 2]));
    expect((await a.reply('3'))[4]).toEqual({ status: 'error', response: { reason: 'Presence track payload must be a map' } });
    a.send(['1', '4', topic, 'presence', { type: 'presence', event: 'dance' }]);
    expect(await a.reply('4')).toEqual(['1', '4', topic, 'phx_reply', { status: 'error', response: {} }]);
    // Event names are case-insensitive; an absent payload tracks {}.
    a.send(['1', '5', topic, 'presence', { type: 'presence', event: 'TRACK' }]);
    expect((await a.reply('5'))[4]).toEqual({ status: 'ok', response: {} });
    const d = diffOf(await nextDiff(a));
    expect(Object.values(d.joins)[0].metas).toEqual([{ phx_ref: expect.any(String) }]);
    a.send([null, '6', 'phoenix', 'heartbeat', {}]);
    expect((await a.reply('6'))[4]).toEqual({ status: 'ok', response: {} });
    a.close();
  });

  it('a track on a presence-disabled channel turns diffs on (no presence_state); untrack never does', async () => {
    const topic = 'realtime:p-auto';
    const a = await joined(topic, '1', presenceConfig(false, 'a'));
    const b = await joined(topic, '1', presenceConfig(false, 'b'));
    const watcher = await joined(topic, '1', presenceConfig(true));
    b.send(untrack(topic, '1', '2'));
    await b.reply('2');
    a.send(track(topic, '1', '2', { x: 1 }));
    await a.reply('2');
    const own = diffOf(await nextDiff(a));
    expect(Object.keys(own.joins)).toEqual(['a']);
    expect(diffOf(await nextDiff(watcher)).joins.a).toBeDefined();
    await settle();
    expect(a.frames).toEqual([]);
    // b untracked only: still no presence frames for it.
    expect(b.frames).toEqual([]);
    b.send(track(topic, '1', '3', { y: 2 }));
    await b.reply('3');
    expect(Object.keys(diffOf(await nextDiff(a)).joins)).toEqual(['b']);
    expect(Object.keys(diffOf(await nextDiff(b)).joins)).toEqual(['b']);
    for (const c of [a, b, watcher]) c.close();
  });

  it('removes the entries of a left channel, a rejoined topic and a terminated socket at once', async () => {
    const topic = 'realtime:p-gone';
    const watcher = await joined(topic, '1', presenceConfig(true));
    await watcher.nextText(isEvent('presence_state'));
    const leaver = await joined(topic, '1', presenceConfig(false, 'leaver'));
    const rejoiner = await joined(topic, '1', presenceConfig(false, 'rejoiner'));
    const dropped = await joined(topic, '1', presenceConfig(false, 'dropped'));
    for (const c of [leaver, rejoiner, dropped]) {
      c.send(track(topic, '1', '2', { here: true }));
      await c.reply('2');
      await nextDiff(watcher);
    }

    leaver.send(['1', '3', topic, 'phx_leave', {}]);
    expect(Object.keys(diffOf(await nextDiff(watcher)).leaves)).toEqual(['leaver']);
    await leaver.nextText(isEvent('phx_close'));
    // The leaver stopped receiving diffs with its channel: not even its own leave reaches it.
    await settle();
    expect(leaver.frames.filter((f) => String(f).includes('"leaves":{"leaver"'))).toEqual([]);

    rejoiner.send(['5', '5', topic, 'phx_join', presenceConfig(true, 'rejoiner')]);
    expect(Object.keys(diffOf(await nextDiff(watcher)).leaves)).toEqual(['rejoiner']);
    expect((await rejoiner.reply('5'))[4]).toMatchObject({ status: 'ok' });
    const state = (await rejoiner.nextText(isEvent('presence_state'))) as Frame;
    expect(state[0]).toBe('5');
    expect(Object.keys(state[4])).toEqual(['dropped']);

    const started = Date.now();
    dropped.ws.terminate();
    expect(Object.keys(diffOf(await nextDiff(watcher)).leaves)).toEqual(['dropped']);
    expect(Date.now() - started).toBeLessThan(2000);
    for (const c of [watcher, leaver, rejoiner]) c.close();
  });

  it('answers a presence push with a stale join_ref, with the channel join_ref', async () => {
    const topic = 'realtime:p-stale';
    const a = await joined(topic, '4', presenceConfig(true, 'k'));
    a.send(track(topic, '1', '8', { v: 1 }));
    expect(await a.reply('8')).toEqual(['4', '8', topic, 'phx_reply', { status: 'ok', response: {} }]);
    expect(Object.keys(diffOf(await nextDiff(a)).joins)).toEqual(['k']);
    a.close();
  });

  it('fans out the diffs of a merged remote delta, and lists remote entries in presence_state (cluster hook)', async () => {
    const topic = 'realtime:p-remote';
    const tenant = t.server.ctx.registry.get('realtime-dev')!;
    const a = await joined(topic, '1', presenceConfig(true));
    await a.nextText(isEvent('presence_state'));
    const otherNode = new TenantPresence('realtime-dev', 'other-node');
    otherNode.track(presenceTopic(false, 'p-remote'), '7:1', 'far', { from: 'afar' });
    const viaWire = () => parsePresenceState(JSON.parse(JSON.stringify(otherNode.takeDelta())));
    tenant.presence.mergeRemote(viaWire(), t.server.ctx.pubsub);
    const d = diffOf(await nextDiff(a));
    expect(d).toEqual({ joins: { far: { metas: [{ from: 'afar', phx_ref: expect.any(String) }] } }, leaves: {} });
    const late = await joined(topic, '2', presenceConfig(true));
    expect(((await late.nextText(isEvent('presence_state'))) as Frame)[4]).toEqual(d.joins);
    otherNode.untrackAll('7:1');
    tenant.presence.mergeRemote(viaWire(), t.server.ctx.pubsub);
    expect(diffOf(await nextDiff(a))).toEqual({ joins: {}, leaves: d.joins });
    a.close();
    late.close();
  });

  it('follows the tenant presence_enabled default', async () => {
    const tenant = t.server.ctx.registry.get('realtime-dev')!;
    tenant.settings.presenceEnabled = true;
    try {
      const a = await joined('realtime:p-tenant', '1', { config: {} });
      expect(await a.nextText()).toEqual(['1', null, 'realtime:p-tenant', 'presence_state', {}]);
      a.close();
    } finally {
      tenant.settings.presenceEnabled = false;
    }
  });
});

describe('presence over vsn 1.0.0 (exact frames)', () => {
  const v1Join = (topic: string, ref: string, payload: unknown) => JSON.stringify({ topic, event: 'phx_join', payload, ref, join_ref: ref });

  it('pushes presence_state and diffs as V1 objects, to V1 and V2 members alike', async () => {
    const topic = 'realtime:p-v1';
    const a = await RawClient.connect(url('1.0.0'));
    a.send(v1Join(topic, '1', presenceConfig(true, 'one')));
    expect(await a.nextText()).toEqual({ topic, event: 'phx_reply', payload: { status: 'ok', response: { postgres_changes: [] } }, ref: '1' });
    expect(await a.nextText()).toEqual({ topic, event: 'presence_state', payload: {}, ref: null });
    const b = await joined(topic, '1', presenceConfig(true, 'two'));
    await b.nextText(isEvent('presence_state'));

    a.send(JSON.stringify({ topic, event: 'presence', payload: { type: 'presence', event: 'track', payload: { v: 1 } }, ref: '2' }));
    expect(await a.nextText((m) => (m as { ref?: string }).ref === '2')).toEqual({ topic, event: 'phx_reply', payload: { status: 'ok', response: {} }, ref: '2' });
    const v1 = (await a.nextText((m) => (m as { event?: string }).event === 'presence_diff')) as { payload: Diff };
    const ref = v1.payload.joins.one.metas[0].phx_ref;
    expect(v1).toEqual({ topic, event: 'presence_diff', payload: { joins: { one: { metas: [{ v: 1, phx_ref: ref }] } }, leaves: {} }, ref: null });
    expect(await nextDiff(b)).toEqual([null, null, topic, 'presence_diff', v1.payload]);
    a.close();
    b.close();
  });
});
