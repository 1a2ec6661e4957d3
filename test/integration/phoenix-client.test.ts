import { Socket, type Channel } from 'phoenix';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, waitForEvent, type TestServer } from '../support/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.stop();
});

/** The stock phoenix.js 1.8 client (its default vsn 2.0.0 serializer), on the `ws` transport. */
function connect(): Socket {
  const socket = new Socket(`ws://127.0.0.1:${t.port}/socket`, {
    transport: WebSocket as never,
    params: { apikey: t.anonKey },
    heartbeatIntervalMs: 200,
  });
  socket.connect();
  return socket;
}

function joined(channel: Channel): Promise<unknown> {
  return waitForEvent((cb) => {
    channel.join().receive('ok', cb).receive('error', (e: unknown) => cb({ error: e }));
  }, 5000, 'join');
}

describe('phoenix.js 1.8 client', () => {
  it('joins, heartbeats and exchanges text broadcasts', async () => {
    const a = connect();
    const b = connect();
    try {
      const chA = a.channel('realtime:phx', { config: { broadcast: { self: false } } });
      const chB = b.channel('realtime:phx', { config: {} });
      expect(await joined(chA)).toEqual({ postgres_changes: [] });
      expect(await joined(chB)).toEqual({ postgres_changes: [] });
      const got = waitForEvent<unknown>((cb) => chB.on('broadcast', cb), 5000, 'broadcast');
      chA.push('broadcast', { type: 'broadcast', event: 'ping', payload: { n: 42 } });
      expect(await got).toEqual({ type: 'broadcast', event: 'ping', payload: { n: 42 } });
      // Several heartbeats at 200 ms pass without the client timing out and reconnecting.
      const opens: number[] = [];
      a.onOpen(() => {
        opens.push(Date.now());
      });
      await new Promise((r) => setTimeout(r, 900));
      expect(opens).toEqual([]);
      expect(a.isConnected()).toBe(true);
    } finally {
      a.disconnect();
      b.disconnect();
    }
  });
});
