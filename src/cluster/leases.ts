import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** A lease this node holds: its token (what renewals and release must show) and its fencing number. */
export interface Lease {
  readonly token: string;
  readonly fence: number;
}

/** Who holds a tenant's lease, as read from Redis. */
export interface LeaseHolder {
  node: string;
  fence: number;
}

// Every script touches the lease and the fencing counter of one tenant, which share a hash tag: one Cluster slot.
// The fencing number is at least Redis' clock in milliseconds: a Redis that restarts empty (or a failover that lost
// the counter) still hands out numbers above every earlier one, which the tenant databases remember.
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local fence = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, now)
redis.call('SET', KEYS[2], string.format('%d', fence))
fence = string.format('%d', fence)
local value = ARGV[1] .. '|' .. fence .. '|' .. ARGV[2]
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
return value`;
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * Tenant leases in Redis: `SET NX PX` with a random token, renewed and released only by whoever shows the token,
 * and a fencing number from a per-tenant counter that only ever grows, so every new holder has a higher number than
 * all before it, even after Redis lost its data (the counter never goes below Redis' clock in milliseconds).
 */
export class RedisLeases {
  constructor(
    private readonly redis: Redis | Cluster,
    /** The key of a tenant's lease or counter: `<prefix>{t:<tenant>}<rest>` (RedisConnections.key). */
    private readonly key: (tenant: string, rest: string) => string,
  ) {}

  private keys(tenant: string): [string, string] {
    return [this.key(tenant, 'owner'), this.key(tenant, 'fence')];
  }

  /** Takes the lease when nobody holds it; null when someone does. */
  async acquire(tenant: string, node: string, ttlMs: number): Promise<Lease | null> {
    const [lease, fence] = this.keys(tenant);
    const value = (await this.redis.eval(ACQUIRE, 2, lease, fence, node, randomBytes(9).toString('base64url'), String(ttlMs))) as string | null;
    if (value === null) return null;
    return { token: value, fence: parseHolder(value)!.fence };
  }

  /** Extends the lease; false when it is not ours any more (expired, taken). */
  async renew(tenant: string, lease: Lease, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.keys(tenant)[0], lease.token, String(ttlMs))) === 1;
  }

  /** Gives the lease up, if it is still ours. */
  async release(tenant: string, lease: Lease): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.keys(tenant)[0], lease.token);
  }

  async holder(tenant: string): Promise<LeaseHolder | null> {
    const value = await this.redis.get(this.keys(tenant)[0]);
    return value === null ? null : parseHolder(value);
  }
}

/** `node|fence|random` -> node and fence (node names cannot contain `|`). */
export function parseHolder(value: string): LeaseHolder | null {
  const parts = value.split('|');
  if (parts.length !== 3) return null;
  const fence = Number(parts[1]);
  return Number.isSafeInteger(fence) && fence > 0 ? { node: parts[0]!, fence } : null;
}
