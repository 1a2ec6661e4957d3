import net from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisPubSub } from '../../src/cluster/redis-pubsub.js';
import { RedisConnections } from '../../src/cluster/redis.js';
import { ClusterMetrics } from '../../src/observability/cluster-metrics.js';
import { createLogger } from '../../src/observability/logger.js';
import type { PubSubMessage } from '../../src/shared/messages.js';
import { topicKey } from '../../src/shared/topic-keys.js';
import { SHARED_REDIS_URL, uniquePrefix } from '../support/redis.js';

const log = createLogger('silent');
const closers: (() => Promise<unknown> | void)[] = [];

afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

/** A TCP relay in front of the shared Redis that keeps every chunk a client wrote, as the relay read it. */
async function relay(): Promise<{ url: string; chunks: Buffer[] }> {
  const target = new URL(SHARED_REDIS_URL);
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (d) => {
      chunks.push(d);
      upstream.write(d);
    });
    upstream.on('data', (d) => client.write(d));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return { url: `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`, chunks };
}

async function node(url: string, prefix: string, deliver: (msg: PubSubMessage) => void): Promise<RedisPubSub> {
  const redis = new RedisConnections({ url }, prefix, log);
  closers.push(() => redis.close());
  expect(await redis.whenReady(5000)).toBe(true);
  const origin = Buffer.from(Array.from({ length: 8 }, () => Math.floor(Math.random() * 256)));
  const pubsub = new RedisPubSub({ deliver }, redis, origin, new ClusterMetrics(new Registry()), log);
  closers.push(() => pubsub.close());
  return pubsub;
}

const count = (hay: Buffer, needle: string): number => {
  let n = 0;
  for (let at = hay.indexOf(needle); at !== -1; at = hay.indexOf(needle, at + 1)) n++;
  return n;
};

describe('redis pub/sub: publishes of one loop turn', () => {
  it('are written to Redis in one write, in order, and reach the other node intact', async () => {
    const prefix = uniquePrefix('batch');
    const proxied = await relay();
    const received: string[] = [];
    const a = await node(proxied.url, prefix, () => undefined);
    const b = await node(SHARED_REDIS_URL, prefix, (msg) => received.push(msg.env.type === 'json' ? msg.env.payloadJson : '?'));
    const key = topicKey('t1', 'room', false);
    b.subscribe(key);
    await b.flushed();
    proxied.chunks.length = 0;
    const sent = Array.from({ length: 20 }, (_, i) => `{"i":${i}}`);
    for (const payloadJson of sent) a.publish({ tenantId: 't1', key, subTopic: 'room', env: { type: 'json', event: 'e', payloadJson } }, null);
    await a.flushed();
    await b.drained();
    expect(received).toEqual(sent);
    const withPublish = proxied.chunks.filter((c) => count(c, 'publish') > 0);
    expect(withPublish).toHaveLength(1);
    expect(count(withPublish[0]!, 'publish')).toBe(20);
  });
});
