/**
 * The fan-out against a real uWS app and real WebSocket clients: Postgres Changes groups by serializer, broadcasts
 * with the sender excluded by connection id and channels that replayed served one by one.
 */
import type { TemplatedApp, us_listen_socket, WebSocket as UwsSocket } from 'uWebSockets.js';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fanout, PUBLISH_MAX_EVENTS, type BatchSocket } from '../../src/channels/fanout.js';
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
let nextId = 1;

/** A server-side socket as the fan-out sees it, and the frames its client received. */
interface Peer {
  socket: BatchSocket;
  client: WebSocket;
  frames: string[];
  /** What the socket answers when asked whether it keeps up with its writes. */
  keepsUp: boolean;
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
    closed: false,
    send: (frame) => void ws.send(frame, typeof frame !== 'string'),
    sendUncounted: (frame) => {
      ws.send(frame, false);
      return typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
    },
    cork: (fn) => void ws.cork(fn),
    keepsUp: () => peer.keepsUp,
  };
  return peer;
}

beforeAll(async () => {
  app = uws.App();
  app.ws('/*', { open: (ws) => opened.shift()!(ws) });
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
    expect(a.frames.slice(2)).toEqual([v2Change(3), encodeV2Raw(null, null, 'realtime:room', 'UPDATE', '{"id":4}')]);
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
  it('writes a batch larger than one publish per event suits to each member in order, after what was published before', async () => {
    const fanout = new Fanout(app);
    const [a, b, c, slow] = [await connect('2.0.0'), await connect('2.0.0'), await connect('1.0.0'), await connect('2.0.0')];
    for (const p of [a, b, c, slow]) fanout.joinChanges(p.socket, 't1|pgc|big');
    const count = PUBLISH_MAX_EVENTS * 2 + 5;
    const ids = Array.from({ length: count }, (_, i) => i + 2);
    // A small batch first (published), then a large one (written per socket) in the same loop turn, once one member
    // fell behind (it was told and is leaving).
    let bytes = fanout.deliverChanges('t1|pgc|big', 'room', { type: 'changes', legacy: false, items: [change(1)] });
    slow.keepsUp = false;
    bytes += fanout.deliverChanges('t1|pgc|big', 'room', { type: 'changes', legacy: false, items: ids.map(change) });
    await until(() => a.frames.length === count + 1 && b.frames.length === count + 1 && c.frames.length === count + 1, 5000, 'frames');
    expect(a.frames).toEqual([1, ...ids].map(v2Change));
    expect(b.frames).toEqual(a.frames);
    expect(c.frames).toEqual([1, ...ids].map(v1Change));
    const size = (frames: string[]) => frames.reduce((n, f) => n + Buffer.byteLength(f), 0);
    await until(() => slow.frames.length === 1, 5000, 'frames');
    expect(bytes).toBe(size(a.frames) + size(b.frames) + size(c.frames) + size(slow.frames));
    // The member that fell behind got nothing of the large batch.
    expect(slow.frames).toEqual([v2Change(1)]);
    for (const p of [a, b, c, slow]) p.client.close();
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
