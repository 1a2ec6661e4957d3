/**
 * Interest: pub/sub is told when this node gets its first channel of a topic and when its last one goes, which a
 * cluster driver needs to bring a topic's messages only to the nodes that have its channels. Presence keys are
 * node-local and are never reported.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topicKey } from '../../src/shared/topic-keys.js';
import { until } from '../support/channels.js';
import { RawClient } from '../support/raw-client.js';
import { startTestServer, type TestServer } from '../support/server.js';

let t: TestServer;
let url: (vsn: string, key?: string) => string;
const calls: string[] = [];

beforeAll(async () => {
  t = await startTestServer();
  url = (vsn, key = t.anonKey) => `ws://127.0.0.1:${t.port}/socket/websocket?apikey=${key}&vsn=${vsn}`;
  const db = new pg.Client({ connectionString: t.db.url });
  await db.connect();
  await db.query(`CREATE POLICY "interest read" ON realtime.messages FOR SELECT TO authenticated USING (realtime.topic() = 'interest')`);
  await db.end();
  const pubsub = t.server.ctx.pubsub;
  const subscribe = pubsub.subscribe.bind(pubsub);
  const unsubscribe = pubsub.unsubscribe.bind(pubsub);
  pubsub.subscribe = (key) => {
    calls.push(`+${key}`);
    subscribe(key);
  };
  pubsub.unsubscribe = (key) => {
    calls.push(`-${key}`);
    unsubscribe(key);
  };
});
afterAll(async () => {
  await t?.stop();
});

/** A V2 join (a V1 one when `vsn` says so) and its reply status. */
async function join(c: RawClient, vsn: '1.0.0' | '2.0.0', topic: string, ref: string, config: unknown): Promise<unknown> {
  if (vsn === '2.0.0') {
    c.send([ref, ref, topic, 'phx_join', config]);
    return ((await c.reply(ref))[4] as { status: string }).status;
  }
  c.send(JSON.stringify({ topic, event: 'phx_join', payload: config, ref }));
  return ((await c.nextText((m) => (m as { ref?: string }).ref === ref)) as { payload: { status: string } }).payload.status;
}

async function leave(c: RawClient, topic: string, ref: string): Promise<void> {
  c.send([null, ref, topic, 'phx_leave', {}]);
  await c.reply(ref);
}

describe('pub/sub interest', () => {
  it('is told of the first and the last channel of a topic on this node, whatever the serializer', async () => {
    const key = topicKey(t.server.ctx.config.tenantId, 'room', false);
    calls.length = 0;
    const a = await RawClient.connect(url('2.0.0'));
    const b = await RawClient.connect(url('1.0.0'));
    expect(await join(a, '2.0.0', 'realtime:room', '1', { config: { presence: { enabled: true } } })).toBe('ok');
    expect(calls).toEqual([`+${key}`]);
    expect(await join(b, '1.0.0', 'realtime:room', '1', { config: {} })).toBe('ok');
    await leave(a, 'realtime:room', '2');
    expect(calls).toEqual([`+${key}`]);
    // The last one goes with its socket.
    b.close();
    await until(() => calls.length === 2, 5000, 'unsubscribe');
    expect(calls).toEqual([`+${key}`, `-${key}`]);
    expect(await join(a, '2.0.0', 'realtime:room', '3', { config: {} })).toBe('ok');
    expect(calls).toEqual([`+${key}`, `-${key}`, `+${key}`]);
    a.close();
    await until(() => calls.length === 4, 5000, 'unsubscribe');
  });

  it('counts a channel served one by one after a replay too', async () => {
    const key = topicKey(t.server.ctx.config.tenantId, 'interest', true);
    const token = await t.sign({ role: 'authenticated', sub: '5a6c2f1e-1b7f-4a37-9a36-4f5bd8a6a0c1', exp: Math.floor(Date.now() / 1000) + 600 });
    calls.length = 0;
    const replaying = await RawClient.connect(url('2.0.0', token));
    const live = await RawClient.connect(url('2.0.0', token));
    expect(await join(replaying, '2.0.0', 'realtime:interest', '1', { config: { private: true, broadcast: { replay: { since: 0 } } } })).toBe('ok');
    expect(await join(live, '2.0.0', 'realtime:interest', '1', { config: { private: true } })).toBe('ok');
    await leave(live, 'realtime:interest', '2');
    expect(calls).toEqual([`+${key}`]);
    await leave(replaying, 'realtime:interest', '2');
    expect(calls).toEqual([`+${key}`, `-${key}`]);
    replaying.close();
    live.close();
  });
});
