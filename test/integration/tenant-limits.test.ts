import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failedHandshake, RawClient } from '../support/raw-client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createTenant, type TestTenant } from '../support/tenants.js';

let t: TestServer;
const created: TestTenant[] = [];

beforeAll(async () => {
  // Short rate-counter ticks so limits trip and clear within a test.
  t = await startTestServer({ RATE_COUNTER_TICK_MS: '100', RATE_COUNTER_WINDOW_MS: '1000' });
});
afterAll(async () => {
  await t?.stop();
  await Promise.all(created.map((x) => x.db.drop()));
});

async function tenantWith(id: string, limits: Record<string, number>): Promise<TestTenant> {
  const tenant = await createTenant(t, id, limits);
  created.push(tenant);
  return tenant;
}

function connect(tenant: TestTenant): Promise<RawClient> {
  return RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${tenant.anonKey}&vsn=2.0.0`, { host: `${tenant.id}.localhost:${t.port}` });
}

async function join(c: RawClient, topic: string, ref: string): Promise<unknown> {
  c.send([ref, ref, topic, 'phx_join', { config: {} }]);
  return (await c.reply(ref))[4];
}

describe('tenant limits with upstream messages', () => {
  it('max_concurrent_users: 429 at the handshake and ConnectionRateLimitReached at join', async () => {
    const tenant = await tenantWith('users', { max_concurrent_users: 1 });
    const early = await connect(tenant); // connected before the limit filled, no channel yet
    const first = await connect(tenant);
    expect(await join(first, 'realtime:a', '1')).toMatchObject({ status: 'ok' });
    expect(await join(early, 'realtime:a', '1')).toEqual({ status: 'error', response: { reason: 'ConnectionRateLimitReached: Too many connected users' } });
    const url = `ws://127.0.0.1:${t.port}/socket/websocket?apikey=${tenant.anonKey}&vsn=2.0.0`;
    expect(await failedHandshake(url, { host: `users.localhost:${t.port}` })).toEqual({ status: 429, body: { error: 'Too many connected users' } });
    // A second channel on the counted socket is fine.
    expect(await join(first, 'realtime:b', '2')).toMatchObject({ status: 'ok' });
    first.close();
    early.close();
  });

  it('max_joins_per_second: ClientJoinRateLimitReached and the socket closed with 1001', async () => {
    const tenant = await tenantWith('joins', { max_joins_per_second: 3 });
    const c = await connect(tenant);
    for (let i = 1; i <= 8; i++) c.send([`${i}`, `${i}`, `realtime:j${i}`, 'phx_join', { config: {} }]);
    expect(await c.closed).toBe(1001);
    const replies = c.frames.map((f) => (JSON.parse(f as string) as unknown[])[4]);
    expect(replies).toContainEqual({ status: 'error', response: { reason: 'ClientJoinRateLimitReached: Too many joins per second' } });
  });

  it('max_channels_per_client: ChannelRateLimitReached', async () => {
    const tenant = await tenantWith('chans', { max_channels_per_client: 2 });
    const c = await connect(tenant);
    expect(await join(c, 'realtime:a', '1')).toMatchObject({ status: 'ok' });
    expect(await join(c, 'realtime:b', '2')).toMatchObject({ status: 'ok' });
    expect(await join(c, 'realtime:c', '3')).toEqual({ status: 'error', response: { reason: 'ChannelRateLimitReached: Too many channels' } });
    c.close();
  });

  it('max_events_per_second: subscribers get "Too many messages per second" and phx_close', async () => {
    const tenant = await tenantWith('events', { max_events_per_second: 10 });
    const receiver = await connect(tenant);
    const sender = await connect(tenant);
    expect(await join(receiver, 'realtime:flood', '1')).toMatchObject({ status: 'ok' });
    expect(await join(sender, 'realtime:flood', '1')).toMatchObject({ status: 'ok' });
    for (let i = 0; i < 50; i++) sender.send(['1', null, 'realtime:flood', 'broadcast', { type: 'broadcast', event: 'e', payload: { i } }]);
    const system = (await receiver.nextText((m) => (m as unknown[])[3] === 'system')) as unknown[];
    expect(system[4]).toEqual({ extension: 'system', status: 'error', message: 'Too many messages per second', channel: 'flood' });
    expect(await receiver.nextText((m) => (m as unknown[])[3] === 'phx_close')).toEqual(['1', '1', 'realtime:flood', 'phx_close', {}]);
    receiver.close();
    sender.close();
  });

  it('max_bytes_per_second (enforced, unlike upstream): "Too many bytes per second"', async () => {
    const tenant = await tenantWith('bytes', { max_bytes_per_second: 2000, max_events_per_second: 100000 });
    const receiver = await connect(tenant);
    const sender = await connect(tenant);
    expect(await join(receiver, 'realtime:fat', '1')).toMatchObject({ status: 'ok' });
    expect(await join(sender, 'realtime:fat', '1')).toMatchObject({ status: 'ok' });
    const blob = 'x'.repeat(1000);
    for (let i = 0; i < 10; i++) sender.send(['1', null, 'realtime:fat', 'broadcast', { type: 'broadcast', event: 'e', payload: { blob } }]);
    const system = (await receiver.nextText((m) => (m as unknown[])[3] === 'system')) as unknown[];
    expect(system[4]).toEqual({ extension: 'system', status: 'error', message: 'Too many bytes per second', channel: 'fat' });
    receiver.close();
    sender.close();
  });

  it('max_payload_size_in_kb: an acked oversized broadcast gets payload_size_exceeded', async () => {
    const tenant = await tenantWith('payload', { max_payload_size_in_kb: 1 });
    const c = await connect(tenant);
    c.send(['1', '1', 'realtime:p', 'phx_join', { config: { broadcast: { ack: true } } }]);
    await c.reply('1');
    c.send(['1', '2', 'realtime:p', 'broadcast', { type: 'broadcast', event: 'e', payload: { blob: 'y'.repeat(2000) } }]);
    expect((await c.reply('2'))[4]).toEqual({ status: 'error', response: 'payload_size_exceeded' });
    c.close();
  });
});
