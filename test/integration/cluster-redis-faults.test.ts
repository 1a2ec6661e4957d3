/**
 * Redis goes away and comes back empty (issue 15): the nodes keep serving their own clients, report it in /metrics,
 * reconnect with backoff, subscribe their interest again and re-announce themselves, with no client rejoining.
 */
import type { RealtimeChannel } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_RECONNECT_DELAY_MS } from '../../src/cluster/redis.js';
import { subscribed, until } from '../support/channels.js';
import { scrape, value } from '../support/metrics.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { PrivateRedis } from '../support/redis.js';
import { startTestServer, type TestServer } from '../support/server.js';

let db: TestDatabase;
let redis: PrivateRedis;
const servers: TestServer[] = [];

// Long enough that a node whose event loop stalls for a second on a loaded 2-core machine is not taken for dead
// (that would be a true leave, not the fault under test); the waits below are counted in it.
const MEMBER_TTL_MS = 5000;

beforeAll(async () => {
  db = await createTestDatabase('cluster_faults');
  redis = await PrivateRedis.start();
  for (const name of ['fault-a', 'fault-b']) {
    servers.push(
      await startTestServer(
        { NODE_NAME: name, REDIS_URL: redis.url, CLUSTER_HEARTBEAT_MS: '200', CLUSTER_MEMBER_TTL_MS: String(MEMBER_TTL_MS) },
        { ...db, drop: async () => undefined },
      ),
    );
  }
}, 120_000);

afterAll(async () => {
  for (const s of servers) await s.stop();
  await redis?.stop();
  await db?.drop();
});

const collect = (channel: RealtimeChannel): string[] => {
  const got: string[] = [];
  channel.on('broadcast', { event: '*' }, (m: { event: string }) => got.push(m.event));
  return got;
};

const redisUp = async (s: TestServer) => value((await scrape(s.url)).samples, 'performer_cluster_redis_connected', {});
const members = (s: TestServer) => s.server.ctx.cluster.membership.members().map((m) => m.name);

describe('Redis faults', () => {
  it('serves local clients while Redis is down, then carries traffic between nodes again once it is back', async () => {
    const [a, b] = servers as [TestServer, TestServer];
    for (const s of servers) await until(() => members(s).length === 2, 10_000, 'both members');
    // Nobody leaves across the outage and the restart of an empty Redis (ownership and presence hang on these events).
    const left: string[] = [];
    const leftAt: string[] = []; // what a failure prints: when, relative to the restart, and the member's last beat
    let resumedAt = 0;
    for (const s of servers) {
      s.server.ctx.cluster.membership.onLeft((m) => {
        left.push(m.name);
        leftAt.push(`${m.name} left at ${resumedAt ? Date.now() - resumedAt : 'before the restart'} ms, last beat ${m.last_seen}, now ${new Date().toISOString()}`);
      });
    }
    const onA = a.client().channel('room', { config: { broadcast: { self: true } } });
    const alsoOnA = a.client({ vsn: '1.0.0' }).channel('room');
    const onB = b.client().channel('room');
    const got = [onA, alsoOnA, onB].map(collect);
    for (const c of [onA, alsoOnA, onB]) expect(await subscribed(c)).toBe('SUBSCRIBED');
    await onA.send({ type: 'broadcast', event: 'before', payload: {} });
    await until(() => got.every((g) => g.includes('before')), 10_000, 'the first broadcast everywhere');
    // The cluster families: members, Redis round trips, messages relayed out of a and into b, ownership changes.
    const onMetricsA = await scrape(a.url);
    const onMetricsB = await scrape(b.url);
    expect(value(onMetricsA.samples, 'performer_cluster_members', {})).toBe(2);
    expect(value(onMetricsA.samples, 'performer_cluster_redis_round_trip_seconds_count', {})).toBeGreaterThanOrEqual(1);
    expect(value(onMetricsA.samples, 'performer_cluster_messages_relayed_total', { direction: 'out' })).toBeGreaterThanOrEqual(1);
    expect(value(onMetricsB.samples, 'performer_cluster_messages_relayed_total', { direction: 'in' })).toBeGreaterThanOrEqual(1);
    expect(onMetricsA.text).toContain('# TYPE performer_cluster_ownership_changes_total counter');

    await redis.halt();
    for (const s of servers) await until(async () => (await redisUp(s)) === 0, 10_000, 'the nodes to notice');
    for (const s of servers) {
      const health = await fetch(`${s.url}/healthcheck`);
      expect([health.status, await health.text()]).toEqual([200, 'ok']);
    }
    // Local traffic goes on (the cross-node copy is dropped and counted); the dead Redis is never waited on.
    await onA.send({ type: 'broadcast', event: 'during', payload: {} });
    await until(() => got[0]!.includes('during') && got[1]!.includes('during'), 10_000, 'local delivery during the outage');
    expect(value((await scrape(a.url)).samples, 'performer_cluster_messages_dropped_total', { reason: 'redis_unavailable' })).toBeGreaterThanOrEqual(1);
    // Nobody is declared gone: a node cannot tell a dead peer from a lost Redis.
    expect(members(a)).toEqual(['fault-a', 'fault-b']);

    await redis.resume();
    resumedAt = Date.now();
    for (const s of servers) await until(async () => (await redisUp(s)) === 1, 20_000, 'the nodes to reconnect');
    // The restarted Redis was empty: both nodes announced themselves and their interest again.
    for (const s of servers) await until(() => members(s).length === 2, 10_000, 'membership again');
    await until(async () => {
      const n = await redis.client().pubsub('NUMSUB', 'performer:{t:realtime-dev}realtime-dev|public|room');
      return n[1] === 2;
    }, 10_000, 'interest subscribed again');
    // Past the grace a returning Redis gives (the longest reconnect backoff plus a TTL): still nobody left.
    await new Promise((r) => setTimeout(r, MAX_RECONNECT_DELAY_MS + MEMBER_TTL_MS + 500));
    expect(left, leftAt.join('; ')).toEqual([]);
    await onA.send({ type: 'broadcast', event: 'after', payload: {} });
    await until(() => got.every((g) => g.includes('after')), 10_000, 'the broadcast after the restart everywhere');
    expect(got[2]).toEqual(['before', 'after']);
    expect(got[0]).toEqual(['before', 'during', 'after']);
  });
});
