import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterMembers } from '../../src/cluster/bus.js';
import { RedisLeases } from '../../src/cluster/leases.js';
import { Ownership, rendezvousOwner, type OwnedWork } from '../../src/cluster/ownership.js';
import { createLogger } from '../../src/observability/logger.js';

const log = createLogger('silent');
const prefix = `test-ownership-${randomBytes(4).toString('hex')}:`;
let redis: Redis;
let leases: RedisLeases;

beforeAll(() => {
  redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: false });
  leases = new RedisLeases(redis, (tenant, rest) => `${prefix}{t:${tenant}}${rest}`);
});

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

const until = async (cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('rendezvous owner', () => {
  const names = fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { minLength: 1, maxLength: 8 });
  it('is a live member, the same whatever the order, and moves only when its own node leaves or a better one joins', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9_-]{1,20}$/), names, fc.stringMatching(/^[a-z0-9-]{1,12}$/), (tenant, nodes, extra) => {
        const owner = rendezvousOwner(tenant, nodes)!;
        expect(nodes).toContain(owner);
        expect(rendezvousOwner(tenant, [...nodes].reverse())).toBe(owner);
        for (const other of nodes) if (other !== owner) expect(rendezvousOwner(tenant, nodes.filter((n) => n !== other))).toBe(owner);
        if (!nodes.includes(extra)) expect([owner, extra]).toContain(rendezvousOwner(tenant, [...nodes, extra]));
      }),
    );
  });

  it('spreads tenants over the nodes', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      const owner = rendezvousOwner(`tenant-${i}`, ['a', 'b', 'c'])!;
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    for (const n of ['a', 'b', 'c']) expect(counts.get(n)).toBeGreaterThan(150);
  });

  it('has no owner without members', () => {
    expect(rendezvousOwner('t', [])).toBeNull();
  });
});

describe('Redis tenant leases', () => {
  it('are exclusive, renewed and released only with their token, and every holder gets a higher fencing number', async () => {
    const a = await leases.acquire('t1', 'node-a', 300);
    expect(a).not.toBeNull();
    expect(await leases.acquire('t1', 'node-b', 300)).toBeNull();
    expect(await leases.holder('t1')).toEqual({ node: 'node-a', fence: a!.fence });
    expect(await leases.renew('t1', { token: 'node-b|1|x', fence: 1 }, 300)).toBe(false);
    await leases.release('t1', { token: 'node-b|1|x', fence: 1 });
    expect(await leases.holder('t1')).not.toBeNull();
    expect(await leases.renew('t1', a!, 300)).toBe(true);
    // Expired: the next holder's number is higher.
    await until(async () => (await leases.holder('t1')) === null, 'the lease to expire');
    const b = await leases.acquire('t1', 'node-b', 300);
    expect(b!.fence).toBeGreaterThan(a!.fence);
    expect(await leases.renew('t1', a!, 300)).toBe(false);
    await leases.release('t1', b!);
    expect(await leases.holder('t1')).toBeNull();
  });
});

describe('fencing numbers', () => {
  it('keep growing after Redis lost its data (a restart without persistence)', async () => {
    const before = await leases.acquire('t-lost', 'node-a', 5000);
    await leases.release('t-lost', before!);
    const again = await leases.acquire('t-lost', 'node-a', 5000);
    expect(again!.fence).toBeGreaterThan(before!.fence);
    await redis.del(`${prefix}{t:t-lost}owner`, `${prefix}{t:t-lost}fence`);
    // A restart takes longer than the millisecond of Redis' clock the numbers are counted in.
    await new Promise((r) => setTimeout(r, 5));
    const after = await leases.acquire('t-lost', 'node-b', 5000);
    expect(after!.fence).toBeGreaterThan(again!.fence);
    expect(Number.isSafeInteger(after!.fence)).toBe(true);
    await leases.release('t-lost', after!);
  });
});

class Members implements ClusterMembers {
  private readonly listeners: ((c: { joined: readonly string[]; left: readonly string[] }) => void)[] = [];
  constructor(
    readonly self: string,
    private readonly view: { nodes: string[] },
  ) {}
  live(): readonly string[] {
    return this.view.nodes;
  }
  isLive(name: string): boolean {
    return this.live().includes(name);
  }
  onChange(listener: (c: { joined: readonly string[]; left: readonly string[] }) => void): () => void {
    this.listeners.push(listener);
    return () => undefined;
  }
}

describe('tenant ownership', () => {
  it('has one owner at a time: hands over when a preferred node joins, and is taken over once a dead owner\'s lease expires', async () => {
    // A tenant that the two nodes split as the test needs: b is preferred once both are live.
    let tenant = 'x';
    for (let i = 0; rendezvousOwner(tenant, ['node-a', 'node-b']) !== 'node-b'; i++) tenant = `tenant-${i}`;
    const view = { nodes: ['node-a'] };
    let running = 0;
    let maxRunning = 0;
    const timeline: string[] = [];
    const work = (node: string): OwnedWork => ({
      async start(t, fence) {
        await new Promise((r) => setTimeout(r, 30));
        running++;
        maxRunning = Math.max(maxRunning, running);
        timeline.push(`${node} start ${t} ${fence}`);
      },
      async stop(t) {
        await new Promise((r) => setTimeout(r, 30));
        running--;
        timeline.push(`${node} stop ${t}`);
      },
    });
    const opts = { leases, candidates: async () => [tenant], ttlMs: 300, log };
    const a = new Ownership({ ...opts, members: new Members('node-a', view), work: work('node-a') });
    const b = new Ownership({ ...opts, members: new Members('node-b', view), work: work('node-b') });
    a.start();
    await until(() => a.owned().includes(tenant), 'a to own the tenant');
    const first = a.fence(tenant)!;
    // b joins: it is preferred, a stops first and releases, b takes it.
    view.nodes = ['node-a', 'node-b'];
    b.start();
    await until(() => b.owned().includes(tenant), 'b to take the tenant over');
    expect(a.owned()).toEqual([]);
    expect(b.fence(tenant)!).toBeGreaterThan(first);
    expect(maxRunning).toBe(1);
    // b dies without releasing (its timer stops, as a SIGKILL would): a takes over after the TTL.
    (b as unknown as { stopped: boolean; timer: NodeJS.Timeout }).stopped = true;
    clearInterval((b as unknown as { timer: NodeJS.Timeout }).timer);
    view.nodes = ['node-a'];
    await until(() => a.owned().includes(tenant), 'a to take over from the dead owner');
    // The dead owner's own clock says its lease is gone before a could have taken it.
    expect(b.valid(tenant)).toBe(false);
    expect(timeline.slice(0, 3)).toEqual([`node-a start ${tenant} ${first}`, `node-a stop ${tenant}`, expect.stringMatching(/^node-b start /)]);
    await a.stop();
    expect(await leases.holder(tenant)).toBeNull();
  });
});
