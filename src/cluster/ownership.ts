/**
 * Tenant ownership: exactly one node of the cluster runs a tenant's replication streams (Postgres Changes and
 * broadcast from the database).
 *
 * - Who should own a tenant: rendezvous hashing over the live members (rendezvousOwner), so tenants spread over the
 *   nodes, a node's death moves only its own tenants, and a node that joins takes back exactly the tenants that
 *   hash to it.
 * - Who does: the holder of the tenant's Redis lease (RedisLeases: token, TTL, renewal every TTL/3, a fencing number
 *   that grows with every new holder).
 * - Hand-over: a holder that is no longer the preferred owner stops its streams first and only then releases the
 *   lease, so the preferred node's next attempt finds it free: never two owners at once. A dead owner's lease
 *   simply expires.
 * - This node trusts its lease only until `TTL - margin` after the renewal request that extended it was sent
 *   (valid): a process paused past that (SIGSTOP, a long GC) wakes up not owning, before it can act. What it could
 *   still do to the slot is fenced in Postgres by the fencing number (replication/stream-fence.ts).
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../observability/logger.js';
import type { ClusterMembers } from './bus.js';
import type { Lease, LeaseHolder } from './leases.js';

/** What the node runs for a tenant it owns. */
export interface OwnedWork {
  /** Makes the tenant's streams run under `fence` (called on taking the lease and at every renewal: idempotent). */
  start(tenant: string, fence: number): Promise<void>;
  /** Stops them; resolves once nothing of them runs any more. */
  stop(tenant: string): Promise<void>;
}

/** The lease operations ownership needs (RedisLeases). */
export interface LeaseStore {
  acquire(tenant: string, node: string, ttlMs: number): Promise<Lease | null>;
  renew(tenant: string, lease: Lease, ttlMs: number): Promise<boolean>;
  release(tenant: string, lease: Lease): Promise<void>;
  holder(tenant: string): Promise<LeaseHolder | null>;
}

export interface OwnershipOptions {
  leases: LeaseStore;
  members: ClusterMembers;
  /** The tenants that need an owner now (active anywhere in the cluster). */
  candidates: () => Promise<Iterable<string>>;
  work: OwnedWork;
  /** Lease time to live; renewed every third of it. */
  ttlMs: number;
  log: Logger;
  /** This node took a tenant, gave it up (hand-over, stop) or lost it (lease expired, Redis away): metrics. */
  onChange?: (tenant: string, event: 'acquired' | 'released' | 'lost') => void;
  /** Monotonic milliseconds (performance.now); tests pass their own. */
  clock?: () => number;
}

interface Held {
  lease: Lease;
  /** Monotonic time until which the lease is surely ours. */
  validUntil: number;
}

/** The live member that should own `tenant`: the highest hash of (tenant, node); null without members. */
export function rendezvousOwner(tenant: string, nodes: readonly string[]): string | null {
  let best: string | null = null;
  let bestScore = -1n;
  for (const node of nodes) {
    const score = createHash('sha256').update(tenant).update('\u0000').update(node).digest().readBigUInt64BE(0);
    if (score > bestScore || (score === bestScore && best !== null && node < best)) {
      best = node;
      bestScore = score;
    }
  }
  return best;
}

export class Ownership {
  private readonly held = new Map<string, Held>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private readonly clock: () => number;

  constructor(private readonly opts: OwnershipOptions) {
    this.clock = opts.clock ?? (() => performance.now());
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.opts.ttlMs / 3)));
    this.timer.unref();
    void this.tick();
  }

  /** Tenants this node owns now (for /api/cluster). */
  owned(): string[] {
    return [...this.held.keys()].filter((t) => this.valid(t)).sort();
  }

  /** This node's fencing number for the tenant while its lease is surely valid; null otherwise. */
  fence(tenant: string): number | null {
    return this.valid(tenant) ? this.held.get(tenant)!.lease.fence : null;
  }

  valid(tenant: string): boolean {
    const held = this.held.get(tenant);
    return held !== undefined && this.clock() < held.validUntil;
  }

  /** Who holds the tenant's lease, from Redis. */
  holder(tenant: string): Promise<LeaseHolder | null> {
    return this.opts.leases.holder(tenant);
  }

  /** One round: renew what is held, hand over what should move, take what should be ours. Never overlaps itself. */
  tick(): Promise<void> {
    this.running ??= this.round().finally(() => (this.running = null));
    return this.running;
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    const live = this.opts.members.live();
    const self = this.opts.members.self;
    let candidates: Set<string>;
    try {
      candidates = new Set(await this.opts.candidates());
    } catch (err) {
      this.opts.log.warn({ err }, 'could not read the tenants that need an owner');
      candidates = new Set(this.held.keys());
    }
    for (const tenant of [...this.held.keys()]) {
      if (this.stopped) return;
      const preferred = rendezvousOwner(tenant, live);
      if (!candidates.has(tenant) || (preferred !== null && preferred !== self)) await this.giveUp(tenant, 'handover');
      else await this.renew(tenant);
    }
    for (const tenant of candidates) {
      if (this.stopped) return;
      if (this.held.has(tenant) || rendezvousOwner(tenant, live) !== self) continue;
      await this.take(tenant);
    }
  }

  private async renew(tenant: string): Promise<void> {
    const held = this.held.get(tenant)!;
    const sentAt = this.clock();
    let ok: boolean;
    try {
      ok = await this.opts.leases.renew(tenant, held.lease, this.opts.ttlMs);
    } catch (err) {
      // Redis away: the lease runs out on its own; the streams stop once valid() turns false.
      this.opts.log.warn({ err, tenant }, 'renewing a tenant lease failed');
      if (!this.valid(tenant)) await this.giveUp(tenant, 'lapsed');
      return;
    }
    // Redis extended it at some moment after sentAt: counting from sentAt is on the safe side whatever the delay.
    if (!ok) return this.giveUp(tenant, 'lost');
    held.validUntil = sentAt + this.opts.ttlMs - this.margin;
    // The tenant may have been stopped here meanwhile (idle, settings changed): its streams start again.
    await this.opts.work.start(tenant, held.lease.fence).catch((err: unknown) => this.opts.log.error({ err, tenant }, 'running an owned tenant failed'));
  }

  private async take(tenant: string): Promise<void> {
    const sentAt = this.clock();
    let lease: Lease | null;
    try {
      lease = await this.opts.leases.acquire(tenant, this.opts.members.self, this.opts.ttlMs);
    } catch (err) {
      this.opts.log.warn({ err, tenant }, 'taking a tenant lease failed');
      return;
    }
    if (lease === null) return;
    this.held.set(tenant, { lease, validUntil: sentAt + this.opts.ttlMs - this.margin });
    this.opts.log.info({ tenant, fence: lease.fence }, 'this node owns the tenant\'s replication now');
    this.opts.onChange?.(tenant, 'acquired');
    await this.opts.work.start(tenant, lease.fence).catch((err: unknown) => this.opts.log.error({ err, tenant }, 'starting an owned tenant failed'));
  }

  /** Streams stop first, then the lease goes: the next owner cannot start before this one stopped. */
  private async giveUp(tenant: string, why: 'handover' | 'lost' | 'lapsed' | 'stopping'): Promise<void> {
    const held = this.held.get(tenant);
    if (!held) return;
    held.validUntil = -Infinity;
    await this.opts.work.stop(tenant).catch((err: unknown) => this.opts.log.error({ err, tenant }, 'stopping an owned tenant failed'));
    this.held.delete(tenant);
    if (why === 'handover' || why === 'stopping') await this.opts.leases.release(tenant, held.lease).catch(() => undefined);
    this.opts.log.info({ tenant, why }, 'this node no longer owns the tenant\'s replication');
    this.opts.onChange?.(tenant, why === 'handover' || why === 'stopping' ? 'released' : 'lost');
  }

  /** Safety margin against clock drift between this node and Redis. */
  private get margin(): number {
    return Math.max(20, Math.floor(this.opts.ttlMs / 5));
  }

  /** Stops every owned tenant's streams and releases their leases, so other nodes take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
    for (const tenant of [...this.held.keys()]) await this.giveUp(tenant, 'stopping');
  }
}
