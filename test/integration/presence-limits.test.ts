import type { RealtimeChannel } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/raw-client.js';
import { sleep, startTestServer, waitForEvent, type TestServer } from '../support/server.js';

/** Presence limits: each trips with upstream's exact `system` message, then phx_close. */

type Frame = [string | null, string | null, string, string, Record<string, unknown>];

const track = (topic: string, ref: string, meta: unknown): Frame =>
  ['1', ref, topic, 'presence', { type: 'presence', event: 'track', payload: meta }] as Frame;

function wsUrl(t: TestServer): string {
  return `ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=2.0.0`;
}

async function joined(t: TestServer, topic: string, enabled = false): Promise<RawClient> {
  const c = await RawClient.connect(wsUrl(t));
  c.send(['1', '1', topic, 'phx_join', { config: { presence: { enabled, key: '' } } }]);
  expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
  return c;
}

/** The shutdown sequence: system error with the message, then phx_close for the join_ref. */
async function expectShutdown(c: RawClient, topic: string, message: string): Promise<void> {
  const system = await c.nextText((m) => (m as Frame)[3] === 'system');
  expect(system).toEqual(['1', null, topic, 'system', { extension: 'system', status: 'error', message, channel: topic.slice('realtime:'.length) }]);
  expect(await c.nextText((m) => (m as Frame)[3] === 'phx_close')).toEqual(['1', '1', topic, 'phx_close', {}]);
}

describe('client presence rate, track size', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ CLIENT_PRESENCE_MAX_CALLS: '2', CLIENT_PRESENCE_WINDOW_MS: '400', TENANT_MAX_PAYLOAD_SIZE_IN_KB: '1' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('shuts the channel down on the presence message over CLIENT_PRESENCE_MAX_CALLS per window, per channel', async () => {
    const topic = 'realtime:limit-client';
    const c = await joined(t, topic);
    const other = await joined(t, topic, true);
    await other.nextText((m) => (m as Frame)[3] === 'presence_state');
    c.send(track(topic, '2', { n: 1 }));
    expect((await c.reply('2'))[4]).toEqual({ status: 'ok', response: {} });
    // Any presence message counts, even an unknown event.
    c.send(['1', '3', topic, 'presence', { type: 'presence', event: 'nope' }]);
    expect((await c.reply('3'))[4]).toEqual({ status: 'error', response: {} });
    c.send(track(topic, '4', { n: 2 }));
    await expectShutdown(c, topic, 'Client presence rate limit exceeded');
    // Its entry went with the channel; the other member's own limit is untouched.
    await other.nextText((m) => (m as Frame)[3] === 'presence_diff' && Object.keys((m as Frame)[4].leaves as object).length === 1);
    other.send(track(topic, '5', {}));
    expect((await other.reply('5'))[4]).toEqual({ status: 'ok', response: {} });
    c.close();
    other.close();
  });

  it('forgets calls older than CLIENT_PRESENCE_WINDOW_MS', async () => {
    const topic = 'realtime:limit-window';
    const c = await joined(t, topic);
    c.send(track(topic, '2', { n: 1 }));
    c.send(track(topic, '3', { n: 2 }));
    await c.reply('3');
    await sleep(450);
    c.send(track(topic, '4', { n: 3 }));
    expect((await c.reply('4'))[4]).toEqual({ status: 'ok', response: {} });
    c.close();
  });

  it('takes the tenant override of the client limit', async () => {
    const tenant = t.server.ctx.registry.get('realtime-dev')!;
    tenant.settings.maxClientPresenceEventsPerWindow = 1;
    try {
      const topic = 'realtime:limit-override';
      const c = await joined(t, topic);
      c.send(track(topic, '2', { n: 1 }));
      await c.reply('2');
      c.send(track(topic, '3', { n: 2 }));
      await expectShutdown(c, topic, 'Client presence rate limit exceeded');
      c.close();
    } finally {
      tenant.settings.maxClientPresenceEventsPerWindow = null;
    }
  });

  it('shuts the channel down on a meta over the tenant payload limit', async () => {
    const topic = 'realtime:limit-size';
    const c = await joined(t, topic);
    c.send(track(topic, '2', { blob: 'x'.repeat(1200) }));
    expect((await c.reply('2'))[4]).toEqual({ status: 'ok', response: {} });
    c.send(track(topic, '3', { blob: 'x'.repeat(2000) }));
    await expectShutdown(c, topic, 'Track message size exceeded');
    c.close();
  });
});

describe('tenant presence rate', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ TENANT_MAX_PRESENCE_EVENTS_PER_SECOND: '0' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('shuts down a track, or a join about to get presence_state, while the tenant is over its presence rate', async () => {
    const topic = 'realtime:limit-tenant';
    // The tenant is under its limit until the first presence event: this join gets its state.
    const first = await joined(t, topic, true);
    expect(await first.nextText()).toEqual(['1', null, topic, 'presence_state', {}]);
    first.send(track(topic, '2', { n: 1 }));
    await expectShutdown(first, topic, 'Too many presence messages per second');
    const second = await joined(t, topic, true);
    await expectShutdown(second, topic, 'Too many presence messages per second');
    first.close();
    second.close();
  });

  it('reaches supabase-js as a system message and a closed channel', async () => {
    // Over the limit of 0 whatever ran before.
    t.server.ctx.registry.get('realtime-dev')!.presenceEvents.add(1);
    const channel: RealtimeChannel = t.client().channel('limit-tenant-js', { config: { presence: { enabled: true } } });
    const system = waitForEvent<{ message: string }>((cb) => channel.on('system', {}, (p) => cb(p as { message: string })), 8000, 'system');
    const closed = waitForEvent<string>((cb) => channel.subscribe((status) => status === 'CLOSED' && cb(status)), 8000, 'close');
    expect((await system).message).toBe('Too many presence messages per second');
    expect(await closed).toBe('CLOSED');
  });
});
