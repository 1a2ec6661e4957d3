import type { RealtimeChannel } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/raw-client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { subscribed, until } from '../support/channels.js';

/** Presence as unmodified supabase-js sees it: presenceState(), join/leave/sync events, over both serializers. */

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.stop();
});

interface Member {
  channel: RealtimeChannel;
  joins: string[];
  leaves: string[];
  syncs: number;
}

/** A client on its own socket, listening to presence (which turns presence on at join, as realtime-js does). */
async function member(vsn: '1.0.0' | '2.0.0', room: string, key?: string): Promise<Member> {
  const channel = t.client({ vsn }).channel(room, { config: { presence: { key: key ?? '' } } });
  const m: Member = { channel, joins: [], leaves: [], syncs: 0 };
  channel.on('presence', { event: 'join' }, ({ key: k }) => m.joins.push(k as string));
  channel.on('presence', { event: 'leave' }, ({ key: k }) => m.leaves.push(k as string));
  channel.on('presence', { event: 'sync' }, () => m.syncs++);
  expect(await subscribed(channel)).toBe('SUBSCRIBED');
  return m;
}

const keys = (m: Member) => Object.keys(m.channel.presenceState()).sort();
const stateJson = (m: Member) => JSON.stringify(m.channel.presenceState(), Object.keys(m.channel.presenceState()).sort());

describe.each(['2.0.0', '1.0.0'] as const)('supabase-js presence over vsn %s', (vsn) => {
  it('two clients see each other join and leave, with the same presenceState', async () => {
    const room = `pair-${vsn}`;
    const a = await member(vsn, room, 'alice');
    const b = await member(vsn, room, 'bob');
    expect(await a.channel.track({ name: 'alice' })).toBe('ok');
    expect(await b.channel.track({ name: 'bob' })).toBe('ok');
    await until(() => keys(a).length === 2 && keys(b).length === 2, 5000, 'both see both');
    expect(keys(a)).toEqual(['alice', 'bob']);
    expect(a.channel.presenceState()).toEqual(b.channel.presenceState());
    expect(a.channel.presenceState().bob).toEqual([{ name: 'bob', presence_ref: expect.any(String) }]);
    expect(a.joins).toContain('bob');
    expect(b.joins).toContain('alice');

    expect(await b.channel.untrack()).toBe('ok');
    await until(() => keys(a).length === 1 && keys(b).length === 1, 5000, 'untrack seen');
    expect(a.leaves).toEqual(['bob']);
    await b.channel.unsubscribe();
    await until(() => a.leaves.length === 1 && keys(a).join() === 'alice');
    await a.channel.unsubscribe();
  });

  it('ten clients converge on the same state; the rest see the leaves of those that go', async () => {
    const room = `ten-${vsn}`;
    const members: Member[] = [];
    for (let i = 0; i < 10; i++) members.push(await member(vsn, room, `u${i}`));
    await Promise.all(members.map((m, i) => m.channel.track({ i })));
    const all = members.map((_, i) => `u${i}`).sort();
    await until(() => members.every((m) => keys(m).join() === all.join()), 8000, 'ten converge');
    const reference = stateJson(members[0]);
    for (const m of members) expect(stateJson(m)).toBe(reference);

    await Promise.all(members.slice(5).map((m) => m.channel.unsubscribe()));
    const rest = all.slice(0, 5);
    await until(() => members.slice(0, 5).every((m) => keys(m).join() === rest.join()), 8000, 'leaves seen');
    for (const m of members.slice(0, 5)) expect(m.leaves.sort()).toEqual(all.slice(5));
    await Promise.all(members.slice(0, 5).map((m) => m.channel.unsubscribe()));
  });

  it('a late joiner gets the full state at join', async () => {
    const room = `late-${vsn}`;
    const early = [await member(vsn, room, 'x'), await member(vsn, room, 'y'), await member(vsn, room, 'z')];
    await Promise.all(early.map((m) => m.channel.track({ at: m.channel.topic })));
    await until(() => early.every((m) => keys(m).length === 3));
    const late = await member(vsn, room);
    await until(() => late.syncs > 0 && keys(late).length === 3, 5000, 'late state');
    expect(late.channel.presenceState()).toEqual(early[0].channel.presenceState());
    for (const m of [...early, late]) await m.channel.unsubscribe();
  });

  it('an update is one diff: one leave and one join of the key, and the new meta replaces the old', async () => {
    const room = `update-${vsn}`;
    const a = await member(vsn, room, 'me');
    const watcher = await member(vsn, room, 'watcher');
    await a.channel.track({ status: 'online' });
    await until(() => keys(watcher).includes('me'));
    const syncsBefore = watcher.syncs;
    const joinsBefore = watcher.joins.length;
    await a.channel.track({ status: 'away' });
    const statusOf = () => (watcher.channel.presenceState<{ status: string }>().me?.[0] as { status?: string } | undefined)?.status;
    await until(() => statusOf() === 'away', 5000, 'update seen');
    expect(watcher.syncs).toBe(syncsBefore + 1);
    expect(watcher.joins.slice(joinsBefore)).toEqual(['me']);
    expect(watcher.leaves).toEqual(['me']);
    expect(watcher.channel.presenceState().me).toEqual([{ status: 'away', presence_ref: expect.any(String) }]);
    // Tracking the same meta again changes nothing.
    await a.channel.track({ status: 'away' });
    await new Promise((r) => setTimeout(r, 150));
    expect(watcher.syncs).toBe(syncsBefore + 1);
    await a.channel.unsubscribe();
    await watcher.channel.unsubscribe();
  });

  it('a client whose socket dies disappears for the others within seconds', async () => {
    const room = `drop-${vsn}`;
    const watcher = await member(vsn, room, 'watcher');
    const raw = await RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=2.0.0`);
    raw.send(['1', '1', `realtime:${room}`, 'phx_join', { config: { presence: { key: 'ghost' } } }]);
    await raw.reply('1');
    raw.send(['1', '2', `realtime:${room}`, 'presence', { type: 'presence', event: 'track', payload: { raw: true } }]);
    await raw.reply('2');
    const js = await member(vsn, room, 'js');
    await js.channel.track({ js: true });
    await until(() => keys(watcher).join() === 'ghost,js', 5000, 'both visible');

    const started = Date.now();
    raw.ws.terminate();
    // supabase-js's own socket, cut without a close handshake (the client reconnects, but does not re-track).
    const jsSocket = (js.channel as unknown as { socket: { socketAdapter: { socket: { conn: { terminate(): void } } } } }).socket;
    jsSocket.socketAdapter.socket.conn.terminate();
    await until(() => keys(watcher).length === 0, 5000, 'dropped clients gone');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(watcher.leaves.sort()).toEqual(['ghost', 'js']);
    await watcher.channel.unsubscribe();
  });
});
