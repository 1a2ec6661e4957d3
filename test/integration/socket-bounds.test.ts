import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/raw-client.js';
import { startTestServer, type TestServer } from '../support/server.js';

let t: TestServer;
let url: (vsn?: string) => string;
beforeAll(async () => {
  t = await startTestServer();
  url = (vsn = '2.0.0') => `ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=${vsn}`;
});
afterAll(async () => {
  await t?.stop();
});

const TOPIC_TOO_LONG = 'TopicNameTooLong: The topic name must not exceed 246 bytes';

const join = (topic: string, ref = '1', payload: unknown = { config: {} }) => [ref, ref, topic, 'phx_join', payload];

const tenantState = () => t.server.ctx.registry.supervisor(t.server.ctx.config.tenantId)?.state;

/** The socket still answers, and the tenant was never degraded by what came before. */
async function stillHealthy(c: RawClient, ref = 'hb'): Promise<void> {
  c.send([null, ref, 'phoenix', 'heartbeat', {}]);
  expect(await c.reply(ref)).toEqual([null, ref, 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
  expect(c.closeCode).toBeNull();
  expect(tenantState()).toBe('ready');
}

describe('topic length on join', () => {
  it('refuses a 2 MB topic with an error reply and keeps the socket and tenant healthy', async () => {
    const c = await RawClient.connect(url());
    const topic = `realtime:${'a'.repeat(2 * 1024 * 1024)}`;
    c.send(join(topic));
    expect(await c.reply('1')).toEqual(['1', '1', topic, 'phx_reply', { status: 'error', response: { reason: TOPIC_TOO_LONG } }]);
    // Nothing of it was kept: no channel on the tenant.
    expect(t.server.ctx.registry.peek(t.server.ctx.config.tenantId)?.channelsByKey.size).toBe(0);
    await stillHealthy(c);
    c.send(join('realtime:after-long'));
    expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
    c.close();
  });

  it('takes sub-topics up to 246 UTF-8 bytes, as the REST API does, and refuses one byte more', async () => {
    const c = await RawClient.connect(url());
    c.send(join(`realtime:${'a'.repeat(246)}`, '1'));
    expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
    c.send(join(`realtime:${'é'.repeat(123)}`, '2'));
    expect((await c.reply('2'))[4]).toMatchObject({ status: 'ok' });
    c.send(join(`realtime:${'a'.repeat(247)}`, '3'));
    expect((await c.reply('3'))[4]).toEqual({ status: 'error', response: { reason: TOPIC_TOO_LONG } });
    c.send(join(`realtime:${'é'.repeat(123)}a`, '4'));
    expect((await c.reply('4'))[4]).toEqual({ status: 'error', response: { reason: TOPIC_TOO_LONG } });
    await stillHealthy(c);
    c.close();
  });

  it('refuses a long topic on a V1 socket the same way', async () => {
    const c = await RawClient.connect(url('1.0.0'));
    const topic = `realtime:${'b'.repeat(300)}`;
    c.send(JSON.stringify({ topic, event: 'phx_join', payload: { config: {} }, ref: '1', join_ref: '1' }));
    expect(await c.nextText()).toEqual({ topic, event: 'phx_reply', payload: { status: 'error', response: { reason: TOPIC_TOO_LONG } }, ref: '1' });
    c.close();
  });
});
