import type { RealtimeChannel } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { subscribed, until } from '../support/channels.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.stop();
});

type Received = { event: string; payload: unknown; type: string; meta?: unknown };

function collect(channel: RealtimeChannel, event = 'msg'): Received[] {
  const got: Received[] = [];
  channel.on('broadcast', { event }, (m) => got.push(m as Received));
  return got;
}

describe.each(['2.0.0', '1.0.0'] as const)('supabase-js broadcast over vsn %s', (vsn) => {
  it('subscribes and exchanges broadcasts between two clients, without echo by default', async () => {
    const a = t.client({ vsn }).channel(`room-${vsn}-a`);
    const b = t.client({ vsn }).channel(`room-${vsn}-a`);
    const gotA = collect(a);
    const gotB = collect(b);
    expect(await subscribed(a)).toBe('SUBSCRIBED');
    expect(await subscribed(b)).toBe('SUBSCRIBED');
    expect(await a.send({ type: 'broadcast', event: 'msg', payload: { hello: 'world', n: 1 } })).toBe('ok');
    await until(() => gotB.length === 1);
    expect(gotB[0]).toMatchObject({ event: 'msg', payload: { hello: 'world', n: 1 }, type: 'broadcast' });
    // Give a stray self-delivery the time to arrive before asserting its absence.
    await b.send({ type: 'broadcast', event: 'msg', payload: { back: true } });
    await until(() => gotA.length === 1);
    expect(gotA).toEqual([expect.objectContaining({ payload: { back: true } })]);
    expect(gotB).toHaveLength(1);
  });

  it('echoes to the sender with self: true and acknowledges with ack: true', async () => {
    const c = t.client({ vsn }).channel(`self-${vsn}`, { config: { broadcast: { self: true, ack: true } } });
    const got = collect(c);
    expect(await subscribed(c)).toBe('SUBSCRIBED');
    expect(await c.send({ type: 'broadcast', event: 'msg', payload: { mine: 1 } })).toBe('ok');
    await until(() => got.length === 1);
    expect(got[0].payload).toEqual({ mine: 1 });
  });

  it('answers an oversized acked broadcast with an error, and the channel keeps working', async () => {
    const small = await startTestServer({ TENANT_MAX_PAYLOAD_SIZE_IN_KB: '1' });
    try {
      const c = small.client({ vsn }).channel('big', { config: { broadcast: { self: true, ack: true } } });
      const got = collect(c);
      expect(await subscribed(c)).toBe('SUBSCRIBED');
      expect(await c.send({ type: 'broadcast', event: 'msg', payload: { blob: 'x'.repeat(2000) } })).toBe('error');
      expect(await c.send({ type: 'broadcast', event: 'msg', payload: { ok: 1 } })).toBe('ok');
      await until(() => got.length === 1);
      expect(got[0].payload).toEqual({ ok: 1 });
    } finally {
      await small.stop();
    }
  });

  it('delivers REST httpSend to subscribers', async () => {
    const sub = t.client({ vsn }).channel(`rest-${vsn}`);
    const got = collect(sub, 'rest');
    expect(await subscribed(sub)).toBe('SUBSCRIBED');
    const sender = t.client({ vsn, key: t.serviceKey }).channel(`rest-${vsn}`);
    const result = await sender.httpSend('rest', { via: 'http' });
    expect(result).toEqual({ success: true });
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ event: 'rest', payload: { via: 'http' }, type: 'broadcast' });
  });

  it('reports CHANNEL_ERROR with the upstream reason for a bad channel token', async () => {
    const client = t.client({ vsn });
    await client.realtime.setAuth('potato');
    const c = client.channel(`bad-${vsn}`);
    expect(await subscribed(c)).toBe('CHANNEL_ERROR: MalformedJWT: The token provided is not a valid JWT');
  });
});

describe('mixed protocol versions and binary payloads', () => {
  it('delivers between V1 and V2 subscribers of one channel, each in its own encoding', async () => {
    const v1 = t.client({ vsn: '1.0.0' }).channel('mixed');
    const v2 = t.client({ vsn: '2.0.0' }).channel('mixed');
    const got1 = collect(v1);
    const got2 = collect(v2);
    expect(await subscribed(v1)).toBe('SUBSCRIBED');
    expect(await subscribed(v2)).toBe('SUBSCRIBED');
    await v2.send({ type: 'broadcast', event: 'msg', payload: { from: 'v2' } });
    await v1.send({ type: 'broadcast', event: 'msg', payload: { from: 'v1' } });
    await until(() => got1.length === 1 && got2.length === 1);
    expect(got1[0]).toMatchObject({ event: 'msg', payload: { from: 'v2' }, type: 'broadcast' });
    expect(got2[0]).toMatchObject({ event: 'msg', payload: { from: 'v1' }, type: 'broadcast' });
  });

  it('carries a binary payload from V2 to V2 byte for byte, and never to V1', async () => {
    const sender = t.client({ vsn: '2.0.0' }).channel('bin');
    const v2 = t.client({ vsn: '2.0.0' }).channel('bin');
    const v1 = t.client({ vsn: '1.0.0' }).channel('bin');
    const got2 = collect(v2, 'blob');
    const got1 = collect(v1, '*');
    for (const c of [sender, v2, v1]) expect(await subscribed(c)).toBe('SUBSCRIBED');
    const bytes = new Uint8Array([0, 1, 2, 250, 255, 128]);
    await sender.send({ type: 'broadcast', event: 'blob', payload: bytes.buffer });
    await sender.send({ type: 'broadcast', event: 'after', payload: { marker: true } });
    await until(() => got2.length === 1 && got1.length === 1);
    expect(new Uint8Array(got2[0].payload as ArrayBuffer)).toEqual(bytes);
    // The V1 socket saw the JSON message sent after the binary one, and nothing else.
    expect(got1.map((m) => m.event)).toEqual(['after']);
  });
});
