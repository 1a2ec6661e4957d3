/**
 * The state a cluster of nodes shares beyond broadcasts (issue 15): presence replicated between the nodes, tenant
 * ownership of the replication streams, and Postgres Changes served by each tenant's owner to subscribers on every
 * node. Built only when the node has Redis; without it nothing here exists and every node runs alone as before.
 */
import type { ClusterMembers } from '../cluster/bus.js';
import { RedisLeases } from '../cluster/leases.js';
import type { Membership } from '../cluster/membership.js';
import { Ownership } from '../cluster/ownership.js';
import { membersView, RedisBus } from '../cluster/redis-bus.js';
import type { RedisConnections } from '../cluster/redis.js';
import type { Config } from '../config/index.js';
import type { ClusterMetrics } from '../observability/cluster-metrics.js';
import type { Logger } from '../observability/logger.js';
import { PresenceSync } from '../presence/cluster-sync.js';
import type { ChangesEngine } from '../replication/changes-engine.js';
import type { LocalPublisher } from '../shared/messages.js';
import { changesEngine } from './changes.js';
import { ChangesOwnerSide } from './changes-owner.js';
import { ChangesRoutes } from './changes-routes.js';
import { parseChangesWire, type ToOwner, type ToSubscriberNode } from './changes-wire.js';
import { OwnedStreams } from './owned-streams.js';
import type { TenantRegistry } from './registry.js';
import type { TenantRuntime } from './tenant.js';

/** A tenant with sockets on some node within this long needs an owner. */
const ACTIVE_MS = 30_000;

export interface ClusterStateDeps {
  config: Config;
  log: Logger;
  registry: TenantRegistry;
  /** This node's pub/sub (its local deliveries). */
  local: LocalPublisher;
  redis: RedisConnections;
  membership: Membership;
  metrics: ClusterMetrics;
}

export class ClusterState {
  readonly bus: RedisBus;
  readonly members: ClusterMembers;
  readonly ownership: Ownership;
  readonly owned: OwnedStreams;
  readonly routes: ChangesRoutes;
  /** What the owner's engines publish to: local members, and other nodes' through the owner side's relay. */
  readonly changesPublisher: LocalPublisher;
  private readonly presence: PresenceSync;
  private readonly ownerSide: ChangesOwnerSide;
  private readonly leases: RedisLeases;
  private stopMembers: (() => void) | null = null;
  /** The last announcement of each tenant's owner, as heard here. */
  private readonly announced = new Map<string, { node: string; up: boolean; at: number }>();

  constructor(private readonly deps: ClusterStateDeps) {
    const { config, log, registry, redis, metrics } = deps;
    const clusterLog = log.child({ node: config.nodeName });
    this.bus = new RedisBus(redis, clusterLog);
    this.members = membersView(deps.membership);
    this.leases = new RedisLeases(redis.command, (tenant, rest) => redis.key(`t:${tenant}`, `:${rest}`));
    const self = config.nodeName;
    const send = (node: string, msg: ToOwner | ToSubscriberNode) => {
      metrics.relayedOut.inc();
      this.bus.publish(this.bus.nodeChannel(node), JSON.stringify(msg));
    };
    this.ownerSide = new ChangesOwnerSide({
      self,
      send,
      runTenant: (t) => this.runTenant(t),
      peekTenant: (t) => registry.peek(t),
      engineOf: (r) => this.engineOf(r),
      log: clusterLog,
    });
    const relayed = this.ownerSide.publisher(deps.local);
    this.changesPublisher = {
      publishLocal: (msg, exclude) => {
        relayed.publishLocal(msg, exclude);
        // This node's own members of the group got it: what they got decides where a next owner continues them.
        this.routes.observeLocalGroup(msg);
      },
      changesRoom: () => deps.local.changesRoom?.() ?? null,
      changesDrained: () => deps.local.changesDrained?.() ?? null,
    };
    this.routes = new ChangesRoutes({
      self,
      send,
      holder: (tenant) => this.leases.holder(tenant),
      engineOf: (r) => this.engineOf(r),
      local: deps.local,
      log: clusterLog,
    });
    this.ownership = new Ownership({
      leases: this.leases,
      members: this.members,
      candidates: () => this.activeTenants(),
      work: (this.owned = new OwnedStreams(
        // Without Redis the events for other nodes cannot leave: nothing is handed out or confirmed meanwhile, and
        // the slot keeps it for whoever owns the tenant once Redis is back.
        {
          fence: (t) => this.ownership.fence(t),
          valid: (t) => this.ownership.valid(t) && redis.command.status === 'ready',
          published: () => this.bus.settled(),
        },
        (t) => this.runTenant(t),
        clusterLog,
        (tenant, running) => this.ownerRunning(tenant, running),
      )),
      ttlMs: config.clusterOwnershipTtlMs,
      log: clusterLog,
      onChange: (tenant, event) => metrics.ownershipChanges.inc({ tenant, event }),
    });
    this.presence = new PresenceSync({
      bus: this.bus,
      members: this.members,
      channel: (tenant) => this.bus.tenantChannel(tenant, 'presence'),
      running: () => registry.running().map((t) => t.presence),
      publisher: deps.local,
      batchMs: config.clusterPresenceBatchMs,
      log: clusterLog,
      onMessage: (direction) => (direction === 'out' ? metrics.relayedOut : metrics.relayedIn).inc(),
    });
  }

  async start(): Promise<void> {
    const receive = (payload: string) => this.receive(payload);
    await this.bus.listen(this.bus.nodeChannel(this.deps.config.nodeName), receive).catch((err: unknown) =>
      this.deps.log.warn({ err }, 'cluster bus not listening yet (Redis away); it will on reconnect'),
    );
    this.stopMembers = this.members.onChange(({ left }) => {
      for (const node of left) this.ownerSide.nodeLeft(node);
    });
    this.deps.membership.ownedTenants = () => this.ownership.owned();
    await this.presence.start();
    this.ownership.start();
  }

  /** Streams stop and leases go first, so other nodes take over at once; then presence and the bus. */
  async stop(): Promise<void> {
    this.stopMembers?.();
    await this.ownership.stop();
    await this.presence.stop();
    await this.bus.close();
  }

  private receive(payload: string): void {
    const msg = parseChangesWire(payload);
    if (msg === null) {
      this.deps.metrics.dropped.inc({ reason: 'undecodable' });
      return;
    }
    if (msg.from !== this.deps.config.nodeName) this.deps.metrics.relayedIn.inc();
    switch (msg.t) {
      case 'owner':
        this.announced.set(msg.tenant, { node: msg.from, up: msg.up, at: Date.now() });
        this.routes.ownerAnnounced(msg.tenant, msg.from, msg.fence);
        return;
      case 'sub':
      case 'unsub':
      case 'claims':
        this.ownerSide.handle(msg);
        return;
      default:
        this.routes.receive(msg);
    }
  }

  private ownerRunning(tenant: string, running: boolean): void {
    const fence = this.ownership.fence(tenant);
    if (!running || fence === null) return this.ownerSide.stopped(tenant);
    // Every renewal repeats it: a node that missed one hears the next.
    this.routes.ownerAnnounced(tenant, this.deps.config.nodeName, fence);
    const up = this.deps.registry.peek(tenant)?.replication?.status === 'up';
    // To each node's own channel, where this owner's events for it go too: a node hears of the new owner only after
    // everything the one before sent it (one channel keeps its order, also across Redis Cluster shards).
    const announcement = JSON.stringify({ t: 'owner', from: this.deps.config.nodeName, tenant, fence, up });
    for (const node of this.members.live()) if (node !== this.deps.config.nodeName) this.bus.publish(this.bus.nodeChannel(node), announcement);
  }

  /**
   * Whether the tenant's stream of realtime.messages is up somewhere in the cluster: here when this node owns the
   * tenant, else as its owner last announced (within two lease periods).
   */
  replicationUp(tenant: string): boolean {
    if (this.ownership.valid(tenant)) return this.deps.registry.peek(tenant)?.replication?.status === 'up';
    const last = this.announced.get(tenant);
    return last !== undefined && last.up && Date.now() - last.at < 2 * this.deps.config.clusterOwnershipTtlMs;
  }

  private runTenant(tenant: string): TenantRuntime | null {
    const runtime = this.deps.registry.get(tenant);
    // The owner keeps the tenant running while it owns it, sockets here or not.
    this.deps.registry.supervisor(tenant)?.touch();
    return runtime;
  }

  private engineOf(runtime: TenantRuntime): ChangesEngine {
    return changesEngine(runtime, this.deps.config, this.changesPublisher);
  }

  /** Tenants with sockets on any node lately: this node's are added, the set is read whole. */
  private async activeTenants(): Promise<string[]> {
    const { redis, registry } = this.deps;
    const key = redis.key('cluster', ':active-tenants');
    const now = Date.now();
    const mine = registry.running().filter((t) => t.sockets.size > 0);
    if (mine.length > 0) await redis.command.zadd(key, ...mine.flatMap((t) => [now, t.id]));
    await redis.command.zremrangebyscore(key, '-inf', now - ACTIVE_MS);
    const all = await redis.command.zrange(key, 0, -1);
    return all.filter((t) => registry.record(t) !== null);
  }
}

