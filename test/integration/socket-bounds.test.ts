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
const TOO_DEEP = 'PayloadTooDeep: The payload must not nest more than 1000 levels deep';

const join = (topic: string, ref = '1', payload: unknown = { config: {} }) => [ref, ref, topic, 'phx_join', payload];
/** JSON text of an object nested `depth` levels deep ({"a":{"a":…1…}}). */
const nestedText = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
const nested = (depth: number): unknown => JSON.parse(nestedText(depth));

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

describe('payload nesting', () => {
  it('answers a broadcast nested 20,000 levels deep with an error; the channel, socket and tenant carry on', async () => {
    const sender = await RawClient.connect(url());
    const receiver = await RawClient.connect(url());
    const config = { config: { broadcast: { ack: true } } };
    sender.send(join('realtime:deep', '1', config));
    receiver.send(join('realtime:deep', '1'));
    expect((await sender.reply('1'))[4]).toMatchObject({ status: 'ok' });
    expect((await receiver.reply('1'))[4]).toMatchObject({ status: 'ok' });

    sender.send(`["1","2","realtime:deep","broadcast",{"type":"broadcast","event":"e","payload":${nestedText(20_000)}}]`);
    expect(await sender.reply('2')).toEqual(['1', '2', 'realtime:deep', 'phx_reply', { status: 'error', response: { reason: TOO_DEEP } }]);
    await stillHealthy(sender);

    // The channel still broadcasts, and the deep message never reached anyone.
    sender.send(['1', '3', 'realtime:deep', 'broadcast', { type: 'broadcast', event: 'e', payload: { n: 1 } }]);
    expect((await sender.reply('3'))[4]).toEqual({ status: 'ok', response: {} });
    const got = await receiver.nextText((m) => (m as unknown[])[3] === 'broadcast');
    expect(got).toEqual([null, null, 'realtime:deep', 'broadcast', { type: 'broadcast', event: 'e', payload: { n: 1 } }]);
    sender.close();
    receiver.close();
  });

  it('answers a V1 push nested too deeply the same way', async () => {
    const c = await RawClient.connect(url('1.0.0'));
    c.send(JSON.stringify({ topic: 'realtime:deep-v1', event: 'phx_join', payload: { config: {} }, ref: '1', join_ref: '1' }));
    expect(await c.nextText()).toMatchObject({ event: 'phx_reply', payload: { status: 'ok' }, ref: '1' });
    c.send(`{"topic":"realtime:deep-v1","event":"broadcast","ref":"2","join_ref":"1","payload":{"type":"broadcast","event":"e","payload":${nestedText(20_000)}}}`);
    expect(await c.nextText()).toEqual({ topic: 'realtime:deep-v1', event: 'phx_reply', payload: { status: 'error', response: { reason: TOO_DEEP } }, ref: '2' });
    c.send('{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"3"}');
    expect(await c.nextText()).toEqual({ topic: 'phoenix', event: 'phx_reply', payload: { status: 'ok', response: {} }, ref: '3' });
    expect(tenantState()).toBe('ready');
    c.close();
  });

  it('refuses a join whose config is nested 20,000 levels deep, then joins normally', async () => {
    const c = await RawClient.connect(url());
    c.send(`["1","1","realtime:deep-join","phx_join",{"config":{"postgres_changes":[{"event":"*","schema":"public","x":${nestedText(20_000)}}]}}]`);
    expect(await c.reply('1')).toEqual(['1', '1', 'realtime:deep-join', 'phx_reply', { status: 'error', response: { reason: TOO_DEEP } }]);
    await stillHealthy(c);
    c.send(join('realtime:deep-join', '2'));
    expect((await c.reply('2'))[4]).toEqual({ status: 'ok', response: { postgres_changes: [] } });
    c.close();
  });

  it('takes payloads right at the bound: every walk over them survives that depth', async () => {
    const c = await RawClient.connect(url());
    const receiver = await RawClient.connect(url());
    const deepest = nested(1000);
    // A postgres_changes entry at the bound (payload, config, list, entry, then 996) is hashed for its id and echoed in the reply.
    c.send(join('realtime:at-bound', '1', { config: { broadcast: { ack: true, self: true }, presence: { enabled: true }, postgres_changes: [{ event: '*', schema: 'public', x: nested(996) }] } }));
    const reply = (await c.reply('1'))[4] as { status: string; response: { postgres_changes: { x: unknown }[] } };
    expect(reply.status).toBe('ok');
    expect(reply.response.postgres_changes[0].x).toEqual(nested(996));
    receiver.send(join('realtime:at-bound', '1'));
    expect((await receiver.reply('1'))[4]).toMatchObject({ status: 'ok' });

    c.send(['1', '2', 'realtime:at-bound', 'broadcast', { type: 'broadcast', event: 'e', payload: nested(998) }]);
    expect((await c.reply('2'))[4]).toEqual({ status: 'ok', response: {} });
    const got = (await receiver.nextText((m) => (m as unknown[])[3] === 'broadcast')) as unknown[];
    expect(got[4]).toEqual({ type: 'broadcast', event: 'e', payload: nested(998) });

    c.send(['1', '3', 'realtime:at-bound', 'presence', { type: 'presence', event: 'track', payload: nested(998) }]);
    expect((await c.reply('3'))[4]).toEqual({ status: 'ok', response: {} });
    c.send(['1', '4', 'realtime:at-bound', 'presence', { type: 'presence', event: 'track', payload: deepest }]);
    expect((await c.reply('4'))[4]).toEqual({ status: 'error', response: { reason: TOO_DEEP } });
    await stillHealthy(c);
    c.close();
    receiver.close();
  });
});
