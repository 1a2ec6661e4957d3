import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Membership, type Member } from '../../src/cluster/membership.js';
import { MAX_RECONNECT_DELAY_MS, RedisConnections, reconnectDelayMs } from '../../src/cluster/redis.js';
import { ClusterMetrics } from '../../src/observability/cluster-metrics.js';
import { createLogger } from '../../src/observability/logger.js';
import { until } from '../support/channels.js';
import { PrivateRedis, SHARED_REDIS_URL, uniquePrefix } from '../support/redis.js';

const log = createLogger('silent');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A member on the shared Redis; heartbeats are driven by hand (`heartbeat()`), the timer being slow on purpose. */
async function member(prefix: string, name: string, connections = 0, url = SHARED_REDIS_URL) {
  const redis = new RedisConnections({ url }, prefix, log);
  await redis.whenReady(5000);
  const events: string[] = [];
  const m = new Membership(redis, { name, region: 'eu-west-2', instance: `${name}-${Math.random()}`, heartbeatMs: 60_000, ttlMs: 2000 }, { connections: () => connections }, new ClusterMetrics(new Registry()), log);
  m.onJoined((x: Member) => events.push(`joined ${x.name}`));
  m.onLeft((x: Member) => events.push(`left ${x.name}`));
  await m.start();
  let closed = false;
  const close = async () => {
    if (!closed) await redis.close();
    closed = true;
  };
  cleanups.push(async () => {
    await m.stop();
    await close();
  });
  return { m, redis, events, close };
}

describe('membership', () => {
  it('sees a join at the next heartbeat, a graceful stop at once, and a death once its entry expired', async () => {
    const prefix = uniquePrefix('members');
    const a = await member(prefix, 'a', 3);
    const b = await member(prefix, 'b');
    await a.m.heartbeat();
    expect(a.m.members().map((x) => x.name)).toEqual(['a', 'b']);
    expect(b.m.members().map((x) => [x.name, x.connections, x.region])).toEqual([
      ['b', 0, 'eu-west-2'],
      ['a', 3, 'eu-west-2'],
    ]);
    expect(a.events).toEqual(['joined b']);
    expect(b.events).toEqual(['joined a']);

    const c = await member(prefix, 'c');
    await a.m.heartbeat();
    await c.m.stop();
    await a.m.heartbeat();
    expect(a.events).toEqual(['joined b', 'joined c', 'left c']);

    // b dies without a word: its connections close, its entry stays until the TTL runs out.
    await b.close();
    await a.m.heartbeat();
    expect(a.m.isLive('b')).toBe(true);
    await until(async () => {
      await a.m.heartbeat();
      return !a.m.isLive('b');
    }, 10_000, 'b to expire');
    expect(a.events.at(-1)).toBe('left b');
    expect(a.m.members().map((x) => x.name)).toEqual(['a']);
  });

  it('tells a restart under the same name apart: the old instance left, the new one joined', async () => {
    const prefix = uniquePrefix('restart');
    const a = await member(prefix, 'a');
    const b1 = await member(prefix, 'b');
    await a.m.heartbeat();
    await b1.close();
    const b2 = await member(prefix, 'b');
    await a.m.heartbeat();
    expect(a.events).toEqual(['joined b', 'left b', 'joined b']);
    expect(b2.m.members().map((x) => x.name)).toEqual(['b', 'a']);
  });

  it('lists only itself when it runs alone, and reports what the ownership hook says', async () => {
    const m = new Membership(null, { name: 'solo', region: 'local', instance: 'x', heartbeatMs: 1000, ttlMs: 5000 }, { connections: () => 7 }, new ClusterMetrics(new Registry()), log);
    m.ownedTenants = () => ['t1'];
    await m.start();
    const [self, ...others] = m.members();
    expect(others).toEqual([]);
    expect(self).toMatchObject({ name: 'solo', region: 'local', connections: 7, tenants: ['t1'] });
    expect(Number.isNaN(Date.parse(self!.started_at))).toBe(false);
    await m.stop();
  });
});

describe('membership across a Redis restart', () => {
  it('waits for peers that reconnect later than this node before declaring them gone', async () => {
    const redis = await PrivateRedis.start();
    cleanups.push(() => redis.stop());
    const a = await member('late:', 'a', 0, redis.url);
    const b = await member('late:', 'b', 0, redis.url);
    await a.m.heartbeat();
    expect(a.events).toEqual(['joined b']);
    // a's subscriber connection stays away: its command connection, on which it beats, is back first (the grace must
    // start from the heartbeat that reads members again, not from the subscriber's return).
    a.redis.subscriber.disconnect();
    // Redis restarts empty and b does not come back with it: from a, that is a peer still on its reconnect backoff.
    await redis.halt();
    await b.close();
    await redis.resume();
    await until(() => a.redis.command.status === 'ready', 10_000, 'a to reconnect');
    // A TTL (2 s) and then some after a's reconnect: b could still be waiting out its backoff, so it is kept.
    await new Promise((r) => setTimeout(r, 2500));
    await a.m.heartbeat();
    expect([a.m.isLive('b'), a.events]).toEqual([true, ['joined b']]);
    // Past every peer's longest backoff plus a TTL, b is gone.
    await until(async () => {
      await a.m.heartbeat();
      return !a.m.isLive('b');
    }, MAX_RECONNECT_DELAY_MS + 10_000, 'b to be declared gone');
    expect(a.events).toEqual(['joined b', 'left b']);
  }, 30_000);

  it('never waits longer between reconnect attempts than MAX_RECONNECT_DELAY_MS', () => {
    for (let attempt = 1; attempt < 100; attempt++) expect(reconnectDelayMs(attempt)).toBeLessThanOrEqual(MAX_RECONNECT_DELAY_MS);
  });
});

describe('membership: two nodes under one NODE_NAME', () => {
  it('logs DuplicateNodeName once they have overwritten each other twice in a row, not for a restart', async () => {
    const prefix = uniquePrefix('twins');
    const logged: string[] = [];
    const pinoLike = createLogger('silent');
    const recording = Object.assign(Object.create(pinoLike) as typeof pinoLike, {
      error: (obj: { error_code?: string }) => void logged.push(obj.error_code ?? ''),
      info: () => undefined,
      debug: () => undefined,
      child: () => recording,
    });
    const make = async (instance: string) => {
      const redis = new RedisConnections({ url: SHARED_REDIS_URL }, prefix, log);
      await redis.whenReady(5000);
      const m = new Membership(redis, { name: 'twin', region: 'r', instance, heartbeatMs: 60_000, ttlMs: 5000 }, { connections: () => 0 }, new ClusterMetrics(new Registry()), recording);
      cleanups.push(async () => {
        await m.stop();
        await redis.close();
      });
      return m;
    };
    const a = await make('first');
    await a.start();
    const restarted = await make('second'); // one overwrite: a restart under the same name
    await restarted.start();
    await restarted.heartbeat();
    expect(logged).toEqual([]);
    for (let i = 0; i < 2; i++) {
      await a.heartbeat();
      await restarted.heartbeat();
    }
    expect(logged).toContain('DuplicateNodeName');
  });
});
