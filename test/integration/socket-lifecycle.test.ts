import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/raw-client.js';
import { sleep, startTestServer, type TestServer } from '../support/server.js';

let t: TestServer;
let url: string;
beforeAll(async () => {
  t = await startTestServer({ WEBSOCKET_IDLE_TIMEOUT_SECONDS: '8', TENANT_MAX_EVENTS_PER_SECOND: '1000000', TENANT_MAX_BYTES_PER_SECOND: '1000000000' });
  url = `ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=2.0.0`;
});
afterAll(async () => {
  await t?.stop();
});

async function joined(topic: string): Promise<RawClient> {
  const c = await RawClient.connect(url);
  c.send(['1', '1', topic, 'phx_join', { config: {} }]);
  expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
  return c;
}

describe('socket lifecycle', () => {
  it('closes a socket that sends nothing, even while it receives, and keeps one that heartbeats', async () => {
    const silent = await joined('realtime:idle');
    const beating = await joined('realtime:idle');
    const sender = await joined('realtime:idle');
    const started = Date.now();
    let n = 0;
    while (silent.closeCode === null && Date.now() - started < 20_000) {
      beating.send([null, `hb${n}`, 'phoenix', 'heartbeat', {}]);
      sender.send(['1', `s${n++}`, 'realtime:idle', 'broadcast', { type: 'broadcast', event: 'tick', payload: {} }]);
      await sleep(1000);
    }
    expect(silent.closeCode).not.toBeNull();
    // uWS checks idle timeouts with a 4 s resolution, so an 8 s timeout fires between 4 and 12 s.
    expect(Date.now() - started).toBeGreaterThanOrEqual(4000);
    expect(beating.closeCode).toBeNull();
    beating.close();
    sender.close();
  }, 30_000);

  it('never stalls the others for a subscriber that stops reading, and never gives it a silent subset', async () => {
    const stuck = await joined('realtime:slow');
    const healthy = await joined('realtime:slow');
    const sender = await joined('realtime:slow');
    (stuck.ws as unknown as { _socket: Socket })._socket.pause();
    const blob = 'x'.repeat(10_000);
    const count = 2000;
    for (let i = 0; i < count; i++) sender.send(['1', null, 'realtime:slow', 'broadcast', { type: 'broadcast', event: 'b', payload: { i, blob } }]);
    const deadline = Date.now() + 20_000;
    const received = () => healthy.frames.filter((f) => typeof f === 'string' && f.includes('"broadcast"')).length;
    while (received() < count && Date.now() < deadline) await sleep(50);
    expect(received()).toBe(count);
    (stuck.ws as unknown as { _socket: Socket })._socket.resume();
    await sleep(1000);
    // The stuck socket got everything, or a gap-free prefix followed by the "too slow" system message.
    const texts = stuck.frames.filter((f): f is string => typeof f === 'string');
    const got = texts.filter((f) => f.includes('"broadcast"')).map((f) => (JSON.parse(f) as [unknown, unknown, unknown, unknown, { payload: { i: number } }])[4].payload.i);
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => i));
    if (got.length < count) expect(texts.some((f) => f.includes('Client too slow'))).toBe(true);
    for (const c of [stuck, healthy, sender]) c.close();
  }, 30_000);
});

describe('sockets without channels', () => {
  it('closes a socket that has had no channel for NO_CHANNEL_TIMEOUT_IN_MS, and keeps one with a channel', async () => {
    const s = await startTestServer({ NO_CHANNEL_TIMEOUT_IN_MS: '1000' });
    try {
      const url = `ws://127.0.0.1:${s.port}/socket/websocket?apikey=${s.anonKey}&vsn=2.0.0`;
      const bare = await RawClient.connect(url);
      const member = await RawClient.connect(url);
      member.send(['1', '1', 'realtime:keep', 'phx_join', { config: {} }]);
      await member.reply('1');
      const started = Date.now();
      while (bare.closeCode === null && Date.now() - started < 5000) {
        bare.send([null, 'hb', 'phoenix', 'heartbeat', {}]);
        member.send([null, 'hb', 'phoenix', 'heartbeat', {}]);
        await sleep(200);
      }
      expect(bare.closeCode).toBe(1000);
      expect(member.closeCode).toBeNull();
      member.close();
    } finally {
      await s.stop();
    }
  }, 20_000);
});
