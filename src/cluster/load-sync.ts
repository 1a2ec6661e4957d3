import type { Logger } from '../observability/logger.js';
import type { Membership } from './membership.js';
import type { RedisConnections } from './redis.js';

/** What a tenant's limits count on one node: connected users and the rolling rates per second. */
export interface TenantLoad {
  users: number;
  joins: number;
  events: number;
  bytes: number;
  presence: number;
}

export const NO_LOAD: Readonly<TenantLoad> = Object.freeze({ users: 0, joins: 0, events: 0, bytes: 0, presence: 0 });

/** A tenant running on this node, as the load sync sees it. */
export interface LoadedTenant {
  readonly id: string;
  /** This node's own figures (never including the other nodes'). */
  localLoad(): TenantLoad;
  /** The other live nodes' figures summed, as of the last sync: what the limit checks add to the local ones. */
  setRemoteLoad(load: TenantLoad): void;
}

const FIELDS = ['users', 'joins', 'events', 'bytes', 'presence'] as const;

function encodeLoad(load: TenantLoad): string {
  return FIELDS.map((f) => (f === 'users' ? String(load[f]) : load[f].toFixed(3))).join(' ');
}

function decodeLoad(text: string | null): TenantLoad | null {
  if (text === null) return null;
  const parts = text.split(' ').map(Number);
  if (parts.length !== FIELDS.length || parts.some((n) => !Number.isFinite(n) || n < 0)) return null;
  const [users, joins, events, bytes, presence] = parts as [number, number, number, number, number];
  return { users, joins, events, bytes, presence };
}

/**
 * Cluster-wide limits by approximate counters: every `CLUSTER_LIMITS_SYNC_MS` each node writes, per tenant it runs,
 * its own users and rates to `<prefix>{t:<tenant>}:load:<node>` (TTL three intervals) and reads the other live
 * members' entries, whose sum each tenant adds to its own figures when it checks a limit. The hot path never waits
 * on Redis: it reads numbers the last sync left.
 *
 * How far off it can be. A node sees the others' figures as of at most one interval plus a Redis round trip ago, so
 * - max_concurrent_users can be passed by the users admitted on the other nodes during that time (with n nodes
 *   admitting at once, up to n - 1 intervals' worth of their joins), and a node the tenant just started on counts
 *   only its own users until its first sync; users leaving are likewise seen late, so a refusal can outlast them by
 *   up to one interval;
 * - the rates are rolling averages over RATE_COUNTER_WINDOW_MS, so a lag of one interval moves the cluster's figure
 *   by at most interval / window of itself (1/60 with the defaults), besides the other nodes' traffic of the last
 *   interval that is not yet counted;
 * - a node that dies keeps counting until its entry expires (three intervals) or it leaves the membership.
 * While Redis is away each node enforces the limits on its own traffic plus the last known remote figures.
 */
export class LoadSync {
  private timer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> | null = null;
  /** Tenants whose entry this node wrote last time: written again (zeroed) once after they go idle here. */
  private written = new Set<string>();

  constructor(
    private readonly redis: RedisConnections,
    private readonly membership: Membership,
    private readonly tenants: () => readonly LoadedTenant[],
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sync(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One round now: write this node's figures, read the others'. Tests call it to be in step. */
  sync(): Promise<void> {
    this.syncing ??= this.round().finally(() => (this.syncing = null));
    return this.syncing;
  }

  private key(tenantId: string, node: string): string {
    return this.redis.key(`t:${tenantId}`, `:load:${node}`);
  }

  private async round(): Promise<void> {
    const command = this.redis.command;
    if (command.status !== 'ready') return;
    const self = this.membership.name;
    const others = this.membership.members().map((m) => m.name).filter((name) => name !== self);
    const ttl = this.intervalMs * 3;
    const written = new Set<string>();
    try {
      // Issued together, answered in one round trip or so: the commands go out back to back on one connection.
      await Promise.all(
        this.tenants().map(async (tenant) => {
          const load = tenant.localLoad();
          const busy = FIELDS.some((f) => load[f] > 0);
          if (busy || this.written.has(tenant.id)) {
            await command.set(this.key(tenant.id, self), encodeLoad(load), 'PX', ttl);
            if (busy) written.add(tenant.id);
          }
          if (others.length === 0) return tenant.setRemoteLoad(NO_LOAD);
          const values = await command.mget(others.map((node) => this.key(tenant.id, node)));
          const sum: TenantLoad = { ...NO_LOAD };
          for (const text of values) {
            const load = decodeLoad(text);
            if (load) for (const f of FIELDS) sum[f] += load[f];
          }
          tenant.setRemoteLoad(sum);
        }),
      );
      this.written = written;
    } catch (err) {
      this.log.debug({ err }, 'cluster load sync failed; next one on schedule');
    }
  }
}
