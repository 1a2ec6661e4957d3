import type { ClusterMetrics } from '../observability/cluster-metrics.js';
import type { Logger } from '../observability/logger.js';
import { MAX_RECONNECT_DELAY_MS, type RedisConnections } from './redis.js';

/** One live node as /api/cluster shows it, plus the instance id that tells a restart under the same name apart. */
export interface Member {
  name: string;
  region: string;
  /** ISO 8601, when this process started. */
  started_at: string;
  /** ISO 8601, the member's last heartbeat (its own clock). */
  last_seen: string;
  /** WebSocket connections on the node. */
  connections: number;
  /** Tenants whose replication the node owns. */
  tenants: string[];
  /** Random per process: a node restarted under the same name is a new member (the old one left). */
  instance: string;
}

/** What this node reports about itself at each heartbeat. */
export interface SelfReport {
  connections(): number;
}

export type MemberListener = (member: Member) => void;

export interface MembershipOptions {
  name: string;
  region: string;
  /** Hex of this process's instance id (the pub/sub origin). */
  instance: string;
  heartbeatMs: number;
  ttlMs: number;
}

/**
 * Reads the live members and forgets names whose entry expired, in one step (the membership keys share the
 * `{cluster}` hash tag, so this runs on one Redis Cluster shard). A name is removed only if its entry is gone at that
 * moment, so a node that re-announces concurrently is never dropped.
 */
const READ_LIVE = `
local names = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, name in ipairs(names) do
  local v = redis.call('GET', ARGV[1] .. name)
  if v then out[#out + 1] = v else redis.call('SREM', KEYS[1], name) end
end
return out`;

/**
 * Who is in the cluster. Each node writes its entry with a TTL (`CLUSTER_MEMBER_TTL_MS`) every heartbeat
 * (`CLUSTER_HEARTBEAT_MS`) and reads everyone's: a join is seen within one heartbeat, a death (even `kill -9`) within
 * the TTL plus one heartbeat, a graceful stop within one heartbeat (its entry is deleted). Listeners hear `joined`
 * and `left` once per member instance. While Redis is away the last known set stands and nothing is announced: a
 * node cannot tell a dead peer from a lost Redis; once Redis is back the node re-announces itself at once and the
 * differences are announced, members missing from a Redis that came back (empty, after a restart) being given time
 * to re-announce before they count as gone: each peer reconnects on its own backoff, up to MAX_RECONNECT_DELAY_MS after
 * this node did, and beats as soon as it is back (a TTL covers a beat that fails), so the grace is that plus one TTL.
 */
export class Membership {
  /** Where ownership code tells which tenants this node owns (shown in /api/cluster and heartbeats). */
  ownedTenants: () => string[] = () => [];
  private readonly startedAt = new Date().toISOString();
  private known = new Map<string, Member>();
  private readonly joinedListeners: MemberListener[] = [];
  private readonly leftListeners: MemberListener[] = [];
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> | null = null;
  private stopped = false;
  /** Until when members missing from a Redis that came back are kept (see the class comment). */
  private graceUntil = 0;
  /** Redis was lost since the last heartbeat that read the members: the next one that does starts the grace. */
  private redisAway = false;
  /** Heartbeats in a row that found our entry written by another instance (see beat()). */
  private twinBeats = 0;

  constructor(
    private readonly redis: RedisConnections | null,
    private readonly options: MembershipOptions,
    private readonly report: SelfReport,
    private readonly metrics: ClusterMetrics,
    private readonly log: Logger,
  ) {
    metrics.memberCount = () => this.members().length;
  }

  get name(): string {
    return this.options.name;
  }

  /** Starts heartbeating; resolves after the first attempt (which fails quietly while Redis is away). */
  async start(): Promise<void> {
    if (this.redis === null) return;
    // The grace is started by the heartbeat that reads members again, on the command connection, which may be back
    // before the subscriber connection (whose readiness only triggers an early heartbeat here).
    this.redis.command.on('close', () => (this.redisAway = true));
    this.redis.onReady(() => void this.heartbeat());
    this.timer = setInterval(() => void this.heartbeat(), this.options.heartbeatMs);
    this.timer.unref();
    await this.heartbeat();
  }

  onJoined(listener: MemberListener): void {
    this.joinedListeners.push(listener);
  }

  onLeft(listener: MemberListener): void {
    this.leftListeners.push(listener);
  }

  /** This node as of now. */
  self(): Member {
    const now = new Date().toISOString();
    return {
      name: this.options.name,
      region: this.options.region,
      started_at: this.startedAt,
      last_seen: now,
      connections: this.report.connections(),
      tenants: this.ownedTenants(),
      instance: this.options.instance,
    };
  }

  /** The live members, this node first (always, even while Redis is away), the others by name. */
  members(): Member[] {
    const others = [...this.known.values()].filter((m) => m.name !== this.options.name).sort((a, b) => a.name.localeCompare(b.name));
    return [this.self(), ...others];
  }

  /** Whether a member of that name is live (as of the last heartbeat). */
  isLive(name: string): boolean {
    return name === this.options.name || this.known.has(name);
  }

  /** One heartbeat now (and the next on schedule): what reconnect handlers and tests call. */
  heartbeat(): Promise<void> {
    this.beating ??= this.beat().finally(() => (this.beating = null));
    return this.beating;
  }

  /** Leaves the cluster: the entry is deleted, so the others see this node go at their next heartbeat. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.beating;
    if (this.redis === null || this.redis.command.status !== 'ready') return;
    await Promise.all([
      this.redis.command.del(this.memberKey(this.options.name)),
      this.redis.command.srem(this.namesKey(), this.options.name),
    ]).catch(() => undefined);
  }

  private namesKey(): string {
    return (this.redis as RedisConnections).key('cluster', ':members');
  }

  private memberKey(name: string): string {
    return (this.redis as RedisConnections).key('cluster', `:member:${name}`);
  }

  private async beat(): Promise<void> {
    const redis = this.redis;
    if (redis === null || this.stopped) return;
    if (redis.command.status !== 'ready') {
      this.redisAway = true;
      return;
    }
    try {
      this.metrics.redisRoundTrip.observe((await redis.roundTrip()) / 1000);
      const me = this.self();
      // Our entry written by another instance since our last beat: once is a restart within the TTL, twice in a row
      // is two live nodes sharing one NODE_NAME, overwriting each other (and each other's ownerships).
      const prior = parseMember((await redis.command.get(this.memberKey(me.name))) ?? '');
      this.twinBeats = prior !== null && prior.instance !== me.instance ? this.twinBeats + 1 : 0;
      if (this.twinBeats === 2) {
        this.log.error({ error_code: 'DuplicateNodeName', node: me.name }, 'another live node uses this NODE_NAME: give every node its own');
      }
      await redis.command.set(this.memberKey(me.name), JSON.stringify(me), 'PX', this.options.ttlMs);
      await redis.command.sadd(this.namesKey(), me.name);
      const raw = (await redis.command.eval(READ_LIVE, 1, this.namesKey(), redis.key('cluster', ':member:'))) as string[];
      if (this.redisAway) {
        this.redisAway = false;
        this.graceUntil = Date.now() + MAX_RECONNECT_DELAY_MS + this.options.ttlMs;
      }
      if (!this.stopped) this.update(raw.map(parseMember).filter((m): m is Member => m !== null));
    } catch (err) {
      this.redisAway = true;
      this.log.debug({ err }, 'cluster heartbeat failed; next one on schedule');
    }
  }

  /** The new live set: announces who left and who joined (a new instance under a known name is both). */
  private update(live: Member[]): void {
    const next = new Map<string, Member>();
    for (const m of live) if (m.name !== this.options.name) next.set(m.name, m);
    // A Redis that restarted empty knows nobody until each node has reconnected and beaten: no one is gone for that.
    if (Date.now() < this.graceUntil) {
      for (const [name, old] of this.known) if (!next.has(name)) next.set(name, old);
    }
    const left: Member[] = [];
    const joined: Member[] = [];
    for (const [name, old] of this.known) {
      const now = next.get(name);
      if (!now || now.instance !== old.instance) left.push(old);
    }
    for (const [name, now] of next) {
      const old = this.known.get(name);
      if (!old || old.instance !== now.instance) joined.push(now);
    }
    this.known = next;
    for (const m of left) {
      this.log.info({ member: m.name, instance: m.instance }, 'cluster member left');
      for (const listener of this.leftListeners) this.notify(listener, m);
    }
    for (const m of joined) {
      this.log.info({ member: m.name, instance: m.instance, region: m.region }, 'cluster member joined');
      for (const listener of this.joinedListeners) this.notify(listener, m);
    }
  }

  private notify(listener: MemberListener, member: Member): void {
    try {
      listener(member);
    } catch (err) {
      this.log.error({ err, member: member.name, error_code: 'ClusterListenerFailed' }, 'cluster membership listener failed');
    }
  }
}

/** An entry as another node wrote it; null when it is not one (another program's key, a different version). */
function parseMember(text: string): Member | null {
  try {
    const v = JSON.parse(text) as Partial<Member>;
    if (typeof v.name !== 'string' || typeof v.instance !== 'string') return null;
    return {
      name: v.name,
      region: typeof v.region === 'string' ? v.region : 'local',
      started_at: typeof v.started_at === 'string' ? v.started_at : '',
      last_seen: typeof v.last_seen === 'string' ? v.last_seen : '',
      connections: typeof v.connections === 'number' ? v.connections : 0,
      tenants: Array.isArray(v.tenants) ? v.tenants.filter((t): t is string => typeof t === 'string') : [],
      instance: v.instance,
    };
  } catch {
    return null;
  }
}
