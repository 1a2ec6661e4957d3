import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failedHandshake, RawClient } from '../support/raw-client.js';
import { sleep, startTestServer, type TestServer } from '../support/server.js';

let t: TestServer;
let ws: (vsn?: string, key?: string) => string;
beforeAll(async () => {
  t = await startTestServer();
  ws = (vsn = '2.0.0', key = t.anonKey) => `ws://127.0.0.1:${t.port}/socket/websocket?apikey=${key}&vsn=${vsn}`;
});
afterAll(async () => {
  await t?.stop();
});

const join = (topic: string, ref = '1', payload: unknown = { config: {} }) => [ref, ref, topic, 'phx_join', payload];

describe('handshake', () => {
  const exp = () => Math.floor(Date.now() / 1000) + 60;

  it('refuses a missing token with 401 API key is missing', async () => {
    expect(await failedHandshake(`ws://127.0.0.1:${t.port}/socket/websocket?vsn=2.0.0`)).toEqual({ status: 401, body: { error: 'API key is missing' } });
  });

  it('refuses a non-JWT, an expired token, missing claims and a bad signature with upstream texts', async () => {
    expect(await failedHandshake(ws('2.0.0', 'not-a-jwt'))).toEqual({ status: 401, body: { error: 'The token provided is not a valid JWT' } });
    const expired = await t.sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) - 10 });
    expect(await failedHandshake(ws('2.0.0', expired))).toEqual({ status: 401, body: { error: 'Token has expired' } });
    const noRole = await t.sign({ exp: exp() });
    expect(await failedHandshake(ws('2.0.0', noRole))).toEqual({ status: 401, body: { error: 'Fields `role` and `exp` are required in JWT' } });
    const otherSecret = await t.sign({ role: 'anon', exp: exp() }, 'another-secret-that-is-at-least-32-chars');
    expect(await failedHandshake(ws('2.0.0', otherSecret))).toEqual({ status: 401, body: { error: 'Failed to validate JWT signature' } });
  });

  it('answers an unknown tenant host with 404 Tenant not found', async () => {
    const res = await failedHandshake(ws(), { host: `nope.localhost:${t.port}` });
    expect(res).toEqual({ status: 404, body: { error: 'Tenant not found' } });
  });

  it('refuses an unsupported protocol version with 403', async () => {
    expect(await failedHandshake(ws('3.0.0'))).toMatchObject({ status: 403 });
  });

  it('prefers the x-api-key header over the apikey query parameter', async () => {
    const c = await RawClient.connect(ws('2.0.0', 'not-a-jwt'), { 'x-api-key': t.anonKey });
    c.send(join('realtime:xkey'));
    expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
    c.close();
    expect(await failedHandshake(ws(), { 'x-api-key': 'not-a-jwt' })).toMatchObject({ status: 401 });
  });

  it('serves the socket under /realtime/v1/websocket too, and defaults to vsn 1.0.0', async () => {
    const c = await RawClient.connect(`ws://127.0.0.1:${t.port}/realtime/v1/websocket?apikey=${t.anonKey}`);
    c.send('{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"7"}');
    expect(await c.nextText()).toEqual({ topic: 'phoenix', event: 'phx_reply', payload: { status: 'ok', response: {} }, ref: '7' });
    c.close();
  });
});

describe('frames on an open socket', () => {
  it('answers heartbeats with the same ref', async () => {
    const c = await RawClient.connect(ws());
    c.send([null, '2', 'phoenix', 'heartbeat', {}]);
    expect(await c.reply('2')).toEqual([null, '2', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
    c.close();
  });

  it('drops malformed frames and keeps the socket usable', async () => {
    const c = await RawClient.connect(ws());
    for (const bad of ['', 'not json', '"string"', '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}', '[null,"1"]']) c.send(bad);
    c.send(Uint8Array.of(9, 1, 2));
    c.send(Uint8Array.of(3, 200, 1));
    c.send([null, '3', 'phoenix', 'heartbeat', {}]);
    expect(await c.reply('3')).toEqual([null, '3', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
    expect(c.closeCode).toBeNull();
    c.close();
  });

  it('joins with the postgres_changes entries echoed in order with deterministic ids', async () => {
    const c = await RawClient.connect(ws());
    const changes = [
      { event: 'INSERT', schema: 'public', table: 'todos' },
      { event: 'DELETE', schema: 'public', table: 'todos', filter: 'user_id=eq.7' },
      { event: 'INSERT', schema: 'public', table: 'todos' },
    ];
    c.send(join('realtime:pg', '1', { config: { postgres_changes: changes } }));
    const [, , , , payload] = await c.reply('1');
    const echoed = (payload as { response: { postgres_changes: { id: number }[] } }).response.postgres_changes;
    expect(echoed.map(({ id: _id, ...rest }) => rest)).toEqual(changes);
    expect(echoed.every((e) => Number.isInteger(e.id) && e.id >= 0 && e.id < 2 ** 27)).toBe(true);
    expect(echoed[0].id).toBe(echoed[2].id);
    expect(echoed[0].id).not.toBe(echoed[1].id);
    c.close();
  });

  it('tolerates invalid config types and string booleans', async () => {
    const c = await RawClient.connect(ws());
    c.send(join('realtime:loose', '1', { config: { broadcast: { ack: 'maybe', self: 'True' }, presence: 'x' } }));
    expect((await c.reply('1'))[4]).toEqual({ status: 'ok', response: { postgres_changes: [] } });
    c.send([ '1', '2', 'realtime:loose', 'broadcast', { type: 'broadcast', event: 'e', payload: { n: 1 } } ]);
    // self was "True": the sender receives its own broadcast.
    expect(await c.nextText((m) => (m as unknown[])[3] === 'broadcast')).toEqual([null, null, 'realtime:loose', 'broadcast', { type: 'broadcast', event: 'e', payload: { n: 1 } }]);
    c.close();
  });

  it('refuses an empty topic name and answers other topics as unmatched', async () => {
    const c = await RawClient.connect(ws());
    c.send(join('realtime:', '1'));
    expect((await c.reply('1'))[4]).toEqual({ status: 'error', response: { reason: 'TopicNameRequired: You must provide a topic name' } });
    c.send(join('room:other', '2'));
    expect((await c.reply('2'))[4]).toEqual({ status: 'error', response: { reason: 'unmatched topic' } });
    c.close();
  });

  it('refuses a private channel the caller may not read, with the upstream reason', async () => {
    const c = await RawClient.connect(ws());
    c.send(join('realtime:secret', '1', { config: { private: true } }));
    expect((await c.reply('1'))[4]).toEqual({
      status: 'error',
      response: { reason: 'Unauthorized: You do not have permissions to read from this Channel topic: secret' },
    });
    c.close();
  });

  it('refuses replay on a public channel', async () => {
    const c = await RawClient.connect(ws());
    c.send(join('realtime:rp', '1', { config: { broadcast: { replay: { since: 0, limit: 5 } } } }));
    expect((await c.reply('1'))[4]).toEqual({ status: 'error', response: { reason: 'UnableToReplayMessages: Replay is not allowed for public channels' } });
    c.close();
  });

  it('closes the old channel when a topic is joined again on the same socket', async () => {
    const c = await RawClient.connect(ws());
    c.send(join('realtime:again', '1'));
    await c.reply('1');
    c.send(join('realtime:again', '5'));
    expect(await c.nextText((m) => (m as unknown[])[3] === 'phx_close')).toEqual(['1', '1', 'realtime:again', 'phx_close', {}]);
    expect((await c.reply('5'))[4]).toMatchObject({ status: 'ok' });
    c.close();
  });

  it('answers a push on an unjoined topic with phx_close and a leave with ok', async () => {
    const c = await RawClient.connect(ws());
    c.send(['9', '10', 'realtime:never', 'broadcast', { type: 'broadcast', event: 'e', payload: {} }]);
    expect(await c.nextText()).toEqual(['9', '9', 'realtime:never', 'phx_close', {}]);
    c.send(['9', '11', 'realtime:never', 'phx_leave', {}]);
    expect((await c.reply('11'))[4]).toEqual({ status: 'ok', response: {} });
    c.close();
  });

  it('replies to a leave, then closes the channel', async () => {
    const c = await RawClient.connect(ws());
    c.send(join('realtime:bye'));
    await c.reply('1');
    c.send(['1', '2', 'realtime:bye', 'phx_leave', {}]);
    expect((await c.reply('2'))[4]).toEqual({ status: 'ok', response: {} });
    expect(await c.nextText((m) => (m as unknown[])[3] === 'phx_close')).toEqual(['1', '1', 'realtime:bye', 'phx_close', {}]);
    c.close();
  });
});

describe('channel tokens', () => {
  it('shuts the channel down when its token expires', async () => {
    const short = await t.sign({ role: 'authenticated', exp: Math.floor(Date.now() / 1000) + 2 });
    const c = await RawClient.connect(ws());
    c.send(join('realtime:expiring', '1', { config: {}, access_token: short }));
    expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
    const system = (await c.nextText((m) => (m as unknown[])[3] === 'system', 5000)) as unknown[];
    expect(system.slice(0, 4)).toEqual(['1', null, 'realtime:expiring', 'system']);
    expect(system[4]).toMatchObject({ extension: 'system', status: 'error', channel: 'expiring' });
    expect((system[4] as { message: string }).message).toMatch(/^Token has expired \d+ seconds ago$/);
    expect(await c.nextText((m) => (m as unknown[])[3] === 'phx_close')).toEqual(['1', '1', 'realtime:expiring', 'phx_close', {}]);
    c.close();
  });

  it('shuts the channel down on an invalid access_token and ignores sb_ keys', async () => {
    const c = await RawClient.connect(ws());
    c.send(join('realtime:refresh'));
    await c.reply('1');
    c.send(['1', '2', 'realtime:refresh', 'access_token', { access_token: 'sb_publishable_abc' }]);
    c.send(['1', '3', 'realtime:refresh', 'access_token', { access_token: await t.sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 600 }) }]);
    await sleep(200);
    expect(c.frames).toEqual([]);
    c.send(['1', '4', 'realtime:refresh', 'access_token', { access_token: '' }]);
    const system = (await c.nextText()) as unknown[];
    expect(system[4]).toEqual({ extension: 'system', status: 'error', message: 'The token provided is not a valid JWT', channel: 'refresh' });
    expect(await c.nextText()).toEqual(['1', '1', 'realtime:refresh', 'phx_close', {}]);
    c.close();
  });

  it('refuses a join whose token lacks claims or expired since connect', async () => {
    const c = await RawClient.connect(ws());
    c.send(join('realtime:claims', '1', { config: {}, access_token: await t.sign({ exp: Math.floor(Date.now() / 1000) + 60 }) }));
    expect((await c.reply('1'))[4]).toEqual({ status: 'error', response: { reason: 'InvalidJWTToken: Fields `role` and `exp` are required in JWT' } });
    const expired = await t.sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) - 5 });
    c.send(join('realtime:claims', '2', { config: {}, access_token: expired }));
    const reason = ((await c.reply('2'))[4] as { response: { reason: string } }).response.reason;
    expect(reason).toMatch(/^InvalidJWTToken: Token has expired \d+ seconds ago$/);
    c.close();
  });
});
