/**
 * The fan-out against a real uWS app and real WebSocket clients: Postgres Changes groups by serializer, broadcasts
 * with the sender excluded by connection id and channels that replayed served one by one.
 */
import type { TemplatedApp, us_listen_socket, WebSocket as UwsSocket } from 'uWebSockets.js';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { framedSize, PACE_BACKLOG_FRAMES, PACE_ROOM_FRAMES, TURN_MAX_FRAMES } from '../../src/channels/changes-fanout.js';
import { Fanout, type BatchSocket } from '../../src/channels/fanout.js';
import { encodeV1Raw, encodeV2Raw } from '../../src/channels/protocol/index.js';
import { uws } from '../../src/http/uws.js';
import type { ChangesEnvelope } from '../../src/shared/messages.js';
import type { Vsn } from '../../src/shared/serializer.js';
import { topicKey } from '../../src/shared/topic-keys.js';
import { until } from '../support/channels.js';

let app: TemplatedApp;
let listenSocket: us_listen_socket;
let port: number;
const opened: ((ws: UwsSocket<unknown>) => void)[] = [];
/** Server-side sockets that closed: uWS has dropped them, and the fan-out must no longer touch them. */
const closedSockets = new Set<UwsSocket<unknown>>();
let nextId = 1;

/** A server-side socket as the fan-out sees it, and the frames its client received. */
interface Peer {
  socket: BatchSocket;
  client: WebSocket;
  frames: string[];
  /** What the socket answers when asked whether it keeps up with its writes. */
  keepsUp: boolean;
  /** Runs when it is asked and does not keep up: a real socket is then told, and its channels leave. */
  behind?: () => void;
}

async function connect(vsn: Vsn): Promise<Peer> {
  const server = new Promise<UwsSocket<unknown>>((resolve) => opened.push(resolve));
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  const frames: string[] = [];
  client.on('message', (data: Buffer) => frames.push(data.toString('utf8')));
  const ws = await server;
  const peer = { client, frames, keepsUp: true } as Peer;
  peer.socket = {
    id: nextId++,
    vsn,
    ws,
    get closed() {
      return closedSockets.has(ws);
    },
    send: (frame) => void ws.send(frame, typeof frame !== 'string'),
    sendUncounted: (frame) => {
      ws.send(frame, false);
      return typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
    },
    cork: (fn) => void ws.cork(fn),
    keepsUp: () => {
      if (!peer.keepsUp && peer.behind) {
        const behind = peer.behind;
        peer.behind = undefined;
        behind();
      }
      return peer.keepsUp;
    },
  };
  return peer;
}

beforeAll(async () => {
  app = uws.App();
  app.ws('/*', { open: (ws) => opened.shift()!(ws), close: (ws) => void closedSockets.add(ws) });
  listenSocket = await new Promise((resolve) => app.listen('127.0.0.1', 0, (s) => resolve(s)));
  port = uws.us_socket_local_port(listenSocket as never);
});
afterAll(() => {
  uws.us_listen_socket_close(listenSocket);
});

const change = (id: number) => ({ type: 'INSERT', data: `{"record":{"id":${id}}}`, idsJson: '[7]' });
const v2Change = (id: number) => encodeV2Raw(null, null, 'realtime:room', 'postgres_changes', `{"ids":[7],"data":{"record":{"id":${id}}}}`);
const v1Change = (id: number) => encodeV1Raw('realtime:room', 'postgres_changes', `{"ids":[7],"data":{"record":{"id":${id}}}}`, null);

describe('fan-out of Postgres Changes groups', () => {
  it('gives every member its serializer frame of each event, in order, whether it shares its serializer or not', async () => {
    const fanout = new Fanout(app);
    const [a, b, c] = [await connect('2.0.0'), await connect('2.0.0'), await connect('1.0.0')];
    for (const p of [a, b, c]) fanout.joinChanges(p.socket, 't1|pgc|g1');
    const env: ChangesEnvelope = { type: 'changes', legacy: false, items: [change(1), change(2)] };
    const bytes = fanout.deliverChanges('t1|pgc|g1', 'room', env);
    await until(() => a.frames.length === 2 && b.frames.length === 2 && c.frames.length === 2, 5000, 'frames');
    expect(a.frames).toEqual([v2Change(1), v2Change(2)]);
    expect(b.frames).toEqual(a.frames);
    expect(c.frames).toEqual([v1Change(1), v1Change(2)]);
    const size = (frames: string[]) => frames.reduce((n, f) => n + Buffer.byteLength(f), 0);
    expect(bytes).toBe(size(a.frames) + size(b.frames) + size(c.frames));

    // The legacy form names the event after the change type, and a member that left gets nothing more.
    fanout.leaveChanges(b.socket, 't1|pgc|g1');
    fanout.joinChanges(a.socket, 't1|pgc|legacy');
    fanout.deliverChanges('t1|pgc|g1', 'room', { type: 'changes', legacy: false, items: [change(3)] });
    fanout.deliverChanges('t1|pgc|legacy', 'room', { type: 'changes', legacy: true, items: [{ type: 'UPDATE', data: '{"id":4}', idsJson: null }] });
    await until(() => a.frames.length === 4 && c.frames.length === 3, 5000, 'frames');
    // Two groups (two channels in life): each in order, not one before the other.
    expect(a.frames.slice(2).sort()).toEqual([v2Change(3), encodeV2Raw(null, null, 'realtime:room', 'UPDATE', '{"id":4}')].sort());
    expect(c.frames[2]).toBe(v1Change(3));

    for (const p of [a, c]) fanout.leaveChanges(p.socket, 't1|pgc|g1');
    fanout.leaveChanges(a.socket, 't1|pgc|legacy');
    expect(fanout.deliverChanges('t1|pgc|g1', 'room', env)).toBe(0);
    // b left before the third event: a and c have theirs, b still has only the first two.
    expect(b.frames).toHaveLength(2);
    for (const p of [a, b, c]) p.client.close();
  });

  it('leaves out a member that fell behind (it was told and is leaving) and writes to the rest', async () => {
    const fanout = new Fanout(app);
    const [a, b, c] = [await connect('2.0.0'), await connect('2.0.0'), await connect('2.0.0')];
    for (const p of [a, b, c]) fanout.joinChanges(p.socket, 't1|pgc|slow');
    // b fell behind and is leaving, but its channel has not left the group yet: a is written to directly...
    b.keepsUp = false;
    fanout.leaveChanges(c.socket, 't1|pgc|slow');
    const bytes = fanout.deliverChanges('t1|pgc|slow', 'room', { type: 'changes', legacy: false, items: [change(1)] });
    await until(() => a.frames.length === 1, 5000, 'frames');
    expect(a.frames).toEqual([v2Change(1)]);
    expect(bytes).toBe(Buffer.byteLength(v2Change(1)));
    // ...and nothing is written when no member keeps up.
    a.keepsUp = false;
    expect(fanout.deliverChanges('t1|pgc|slow', 'room', { type: 'changes', legacy: false, items: [change(2)] })).toBe(0);
    fanout.joinChanges(c.socket, 't1|pgc|slow');
    fanout.deliverChanges('t1|pgc|slow', 'room', { type: 'changes', legacy: false, items: [change(3)] });
    await until(() => c.frames.length === 1, 5000, 'frames');
    expect(c.frames).toEqual([v2Change(3)]);
    expect(a.frames).toHaveLength(1);
    expect(b.frames).toEqual([]);
    for (const p of [a, b, c]) p.client.close();
  });
  it('paces a batch larger than a loop turn takes over several turns: every member gets each event in order, after what was published before', async () => {
    const fanout = new Fanout(app);
    const [a, b, c, slow] = [await connect('2.0.0'), await connect('2.0.0'), await connect('1.0.0'), await connect('2.0.0')];
    for (const p of [a, b, c, slow]) fanout.joinChanges(p.socket, 't1|pgc|big');
    const count = TURN_MAX_FRAMES * 3 + 5;
    const ids = Array.from({ length: count }, (_, i) => i + 2);
    // A small batch first, then a large one in the same loop turn, once one member fell behind (it is told and its
    // channel leaves when asked).
    let bytes = fanout.deliverChanges('t1|pgc|big', 'room', { type: 'changes', legacy: false, items: [change(1)] });
    slow.keepsUp = false;
    // As a real socket: told first (its send drains what uWS holds for it), then its channel leaves.
    slow.behind = () => {
      slow.socket.send('told');
      fanout.leaveChanges(slow.socket, 't1|pgc|big');
    };
    bytes += fanout.deliverChanges('t1|pgc|big', 'room', { type: 'changes', legacy: false, items: ids.map(change) });
    // The member leaving waits until this turn's frame is written (uWS forgets what it holds for a socket leaving its
    // last topic), so the large batch queues behind its leaving, for the next turns.
    expect(fanout.changes.waitingFrames).toBe(count);
    await until(() => a.frames.length === count + 1 && b.frames.length === count + 1 && c.frames.length === count + 1, 5000, 'frames');
    expect(a.frames).toEqual([1, ...ids].map(v2Change));
    expect(b.frames).toEqual(a.frames);
    expect(c.frames).toEqual([1, ...ids].map(v1Change));
    const size = (frames: string[]) => frames.reduce((n, f) => n + Buffer.byteLength(f), 0);
    await until(() => slow.frames.length === 2, 5000, 'frames');
    // The member that fell behind got what came before it was told, and nothing of the large batch.
    expect(slow.frames).toEqual([v2Change(1), 'told']);
    expect(bytes).toBe(size(a.frames) + size(b.frames) + size(c.frames) + size(slow.frames.slice(0, 1)));
    for (const p of [a, b, c, slow]) p.client.close();
  });
});

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const batch = (ids: number[]): ChangesEnvelope => ({ type: 'changes', legacy: false, items: ids.map(change) });
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe('pacing of Postgres Changes over loop turns', () => {
  it('publishes one turn of a group per loop turn: at most TURN_MAX_FRAMES frames, and less than the cork buffer', async () => {
    const fanout = new Fanout(app);
    const [a, b] = [await connect('2.0.0'), await connect('2.0.0')];
    for (const p of [a, b]) fanout.joinChanges(p.socket, 't1|pgc|pace');
    const count = TURN_MAX_FRAMES * 2 + 7;
    fanout.deliverChanges('t1|pgc|pace', 'room', batch(range(1, count)));
    expect(fanout.changes.waitingFrames).toBe(count - TURN_MAX_FRAMES);
    await nextTurn();
    expect(fanout.changes.waitingFrames).toBe(count - 2 * TURN_MAX_FRAMES);
    await nextTurn();
    expect(fanout.changes.waitingFrames).toBe(0);

    // Large frames: as many as fit under uWS's 16 KiB cork buffer go in one turn.
    const big = (id: number) => ({ type: 'INSERT', data: `{"record":{"id":${id},"text":"${'x'.repeat(2000)}"}}`, idsJson: '[7]' });
    const bigFrame = (id: number) => encodeV2Raw(null, null, 'realtime:room', 'postgres_changes', `{"ids":[7],"data":${big(id).data}}`);
    const perTurn = Math.floor((16 * 1024 - 1) / framedSize(Buffer.byteLength(bigFrame(1))));
    expect(perTurn).toBeLessThan(TURN_MAX_FRAMES);
    fanout.deliverChanges('t1|pgc|pace', 'room', { type: 'changes', legacy: false, items: range(100, 20).map(big) });
    expect(fanout.changes.waitingFrames).toBe(20 - perTurn);
    await nextTurn();
    expect(fanout.changes.waitingFrames).toBe(20 - 2 * perTurn);
    await nextTurn();
    expect(fanout.changes.waitingFrames).toBe(Math.max(0, 20 - 3 * perTurn));
    await until(() => a.frames.length === count + 20 && b.frames.length === count + 20, 5000, 'frames');
    expect(a.frames).toEqual([...range(1, count).map(v2Change), ...range(100, 20).map(bigFrame)]);
    expect(b.frames).toEqual(a.frames);
    for (const p of [a, b]) p.client.close();
  });

  it('gives a member that joins while frames wait only what was delivered after, and one that leaves all that was delivered before', async () => {
    const fanout = new Fanout(app);
    const [stays, leaves, joins] = [await connect('2.0.0'), await connect('2.0.0'), await connect('2.0.0')];
    for (const p of [stays, leaves]) fanout.joinChanges(p.socket, 't1|pgc|moves');
    const first = range(1, TURN_MAX_FRAMES * 3);
    fanout.deliverChanges('t1|pgc|moves', 'room', batch(first));
    expect(fanout.changes.waitingFrames).toBeGreaterThan(0);
    fanout.joinChanges(joins.socket, 't1|pgc|moves');
    fanout.leaveChanges(leaves.socket, 't1|pgc|moves');
    // With frames waiting, even a small batch (and one for a single member) queues behind them.
    fanout.deliverChanges('t1|pgc|moves', 'room', batch([500]));
    fanout.leaveChanges(stays.socket, 't1|pgc|moves');
    fanout.deliverChanges('t1|pgc|moves', 'room', batch([501]));
    expect(fanout.changes.waitingFrames).toBeGreaterThan(2);
    await until(() => joins.frames.length === 2 && stays.frames.length === first.length + 1 && leaves.frames.length === first.length, 5000, 'frames');
    expect(stays.frames).toEqual([...first, 500].map(v2Change));
    expect(leaves.frames).toEqual(first.map(v2Change));
    expect(joins.frames).toEqual([500, 501].map(v2Change));
    // Once nothing waits, a member alone is written to directly, and the one that left gets nothing more.
    fanout.deliverChanges('t1|pgc|moves', 'room', batch([502]));
    expect(fanout.changes.waitingFrames).toBe(0);
    await until(() => joins.frames.length === 3, 5000, 'frames');
    await nextTurn();
    expect(stays.frames).toHaveLength(first.length + 1);
    // The last member leaving right after a publish (its leaving waits for that turn's write) drops the group.
    fanout.deliverChanges('t1|pgc|moves', 'room', batch([503, 504]));
    fanout.leaveChanges(joins.socket, 't1|pgc|moves');
    expect(fanout.changes.groupCount).toBe(1);
    await until(() => joins.frames.length === 5, 5000, 'frames');
    await until(() => fanout.changes.groupCount === 0, 5000, 'the group to be dropped');
    for (const p of [stays, leaves, joins]) p.client.close();
  });

  it('has no room for more changes while PACE_ROOM_FRAMES frames wait, and room again once paced under it', async () => {
    const fanout = new Fanout(app);
    const [a, b] = [await connect('2.0.0'), await connect('2.0.0')];
    for (const p of [a, b]) fanout.joinChanges(p.socket, 't1|pgc|room');
    expect(fanout.changes.room()).toBeNull();
    const ids = range(1, PACE_ROOM_FRAMES + TURN_MAX_FRAMES * 2);
    fanout.deliverChanges('t1|pgc|room', 'room', batch(ids));
    const room = fanout.changes.room();
    expect(room).not.toBeNull();
    let settled = false;
    void room!.then(() => (settled = true));
    await nextTurn();
    expect(settled).toBe(false);
    await room;
    expect(fanout.changes.waitingFrames).toBeLessThan(PACE_ROOM_FRAMES);
    expect(fanout.changes.waitingFrames).toBeGreaterThan(0);
    await until(() => a.frames.length === ids.length && b.frames.length === ids.length, 10_000, 'frames');
    expect(a.frames).toEqual(ids.map(v2Change));
    expect(fanout.changes.room()).toBeNull();
    for (const p of [a, b]) p.client.close();
  });

  it('says when the frames waiting now have been published, not waiting for those queued after', async () => {
    const fanout = new Fanout(app);
    const [a, b] = [await connect('2.0.0'), await connect('1.0.0')];
    const c = await connect('1.0.0');
    for (const p of [a, b, c]) fanout.joinChanges(p.socket, 't1|pgc|drained');
    expect(fanout.changes.drained()).toBeNull();
    const first = range(1, TURN_MAX_FRAMES * 3);
    fanout.deliverChanges('t1|pgc|drained', 'room', batch(first));
    const waitingFirst = fanout.changes.waitingFrames;
    expect(waitingFirst).toBeGreaterThan(0);
    const drained = fanout.changes.drained();
    let done = false;
    void drained!.then(() => (done = true));
    const second = range(1000, TURN_MAX_FRAMES * 4);
    fanout.deliverChanges('t1|pgc|drained', 'room', batch(second));
    await nextTurn();
    expect(done).toBe(false);
    await drained;
    // The first batch has left (the second waits behind it in the same group); the second is still partly waiting.
    expect(fanout.changes.waitingFrames).toBeGreaterThan(0);
    expect(fanout.changes.waitingFrames).toBeLessThanOrEqual(second.length);
    await until(() => b.frames.length === first.length + second.length && c.frames.length === b.frames.length, 5000, 'frames');
    expect(b.frames).toEqual([...first, ...second].map(v1Change));
    // a is alone with its serializer: written to directly, nothing of it waits.
    expect(a.frames).toEqual([...first, ...second].map(v2Change));
    expect(fanout.changes.drained()).toBeNull();
    for (const p of [a, b, c]) p.client.close();
  });

  it('publishes a backlog past PACE_BACKLOG_FRAMES at once, in order', async () => {
    const fanout = new Fanout(app);
    const [a, b] = [await connect('2.0.0'), await connect('1.0.0')];
    const c = await connect('1.0.0');
    for (const p of [a, b, c]) fanout.joinChanges(p.socket, 't1|pgc|backlog');
    const ids = range(1, PACE_BACKLOG_FRAMES + TURN_MAX_FRAMES + 1);
    fanout.deliverChanges('t1|pgc|backlog', 'room', batch(ids));
    expect(fanout.changes.waitingFrames).toBe(0);
    await until(() => a.frames.length === ids.length && b.frames.length === ids.length && c.frames.length === ids.length, 5000, 'frames');
    expect(b.frames).toEqual(ids.map(v1Change));
    expect(c.frames).toEqual(b.frames);
    expect(a.frames).toEqual(ids.map(v2Change));
    for (const p of [a, b, c]) p.client.close();
  });
});

describe('fan-out of broadcasts', () => {
  it('excludes the sender by its connection id, and skips for a channel that replayed what it already has', async () => {
    const fanout = new Fanout(app);
    const key = topicKey('t1', 'room', false);
    const [sender, v2, v1] = [await connect('2.0.0'), await connect('2.0.0'), await connect('1.0.0')];
    fanout.join(sender.socket, key, null);
    fanout.join(v2.socket, key, null);
    // A channel that replayed messages is served one by one, skipping the ids it already has.
    fanout.join(v1.socket, key, new Set(['seen']));
    const env = { type: 'json', event: 'broadcast', payloadJson: '{"n":1}' } as const;
    const stats = fanout.deliver(key, 'realtime:room', env, fanout.sender(sender.socket));
    expect(stats.deliveries).toBe(2);
    await until(() => v2.frames.length === 1 && v1.frames.length === 1, 5000, 'frames');
    expect(v2.frames).toEqual([encodeV2Raw(null, null, 'realtime:room', 'broadcast', '{"n":1}')]);
    expect(v1.frames).toEqual([encodeV1Raw('realtime:room', 'broadcast', '{"n":1}', null)]);
    const seen = { type: 'user', userEvent: 'e', encoding: 1, payload: Buffer.from('{}'), metaJson: '{"id":"seen"}' } as const;
    expect(fanout.deliver(key, 'realtime:room', seen, null).deliveries).toBe(2);
    await until(() => sender.frames.length === 1 && v2.frames.length === 2, 5000, 'frames');
    expect(v1.frames).toHaveLength(1);

    // Once they left, nothing reaches them.
    for (const p of [sender, v2, v1]) fanout.leave(p.socket, key);
    expect(fanout.deliver(key, 'realtime:room', env, null)).toEqual({ deliveries: 0, bytes: 0 });
    for (const p of [sender, v2, v1]) p.client.close();
  });
});
