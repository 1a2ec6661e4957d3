/**
 * In a cluster, a tenant's replication streams (broadcast from the database, Postgres Changes) run only on the node
 * that owns the tenant (cluster/ownership.ts). Each tenant's supervisor runs one gate child in place of the two
 * stream children: the gate starts them when this node becomes the owner and stops them (completely) before the
 * ownership is given up.
 */
import type { OwnedWork } from '../cluster/ownership.js';
import type { Logger } from '../observability/logger.js';
import { streamFence } from '../replication/stream-fence.js';
import type { ChildSpec, RunningChild } from './supervisor.js';
import type { TenantRuntime } from './tenant.js';

/** What the gate asks of ownership. */
export interface OwnerCheck {
  /** This node's fencing number for the tenant while its lease is surely valid; null otherwise. */
  fence(tenant: string): number | null;
  valid(tenant: string): boolean;
  /** Settles once what this node sent to other nodes so far reached them (the bus); null when nothing waits. */
  published?(): Promise<void> | null;
}

/** How long a gate waits before trying again to start streams that failed to start (database away). */
const RETRY_MS = 1000;

/** One tenant's gate: its stream children run exactly while this node owns the tenant. */
class StreamsGate {
  private running: { fence: number; children: RunningChild[] } | null = null;
  private chain: Promise<void> = Promise.resolve();
  private retry: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly runtime: TenantRuntime,
    private readonly owner: OwnerCheck,
    private readonly inner: readonly ChildSpec[],
  ) {}

  /** Brings the children in line with ownership now; calls are serialized. */
  sync(): Promise<void> {
    this.chain = this.chain.then(() => this.apply()).catch((err: unknown) => this.runtime.log.error({ err }, 'owned streams gate failed'));
    return this.chain;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    await this.sync();
  }

  private async apply(): Promise<void> {
    const fence = this.closed ? null : this.owner.fence(this.runtime.id);
    if (this.running !== null && this.running.fence !== fence) await this.stopChildren();
    if (fence === null || this.running !== null) return;
    const tenant = this.runtime.id;
    const owner = { tenant, fence, valid: () => this.owner.valid(tenant) };
    this.runtime.streamOwner = {
      fence: streamFence(owner, 'changes'),
      broadcastFence: streamFence(owner, 'broadcast'),
      valid: () => this.owner.valid(tenant),
      published: this.owner.published ? () => this.owner.published!() : undefined,
    };
    const children: RunningChild[] = [];
    try {
      for (const spec of this.inner) children.push(await spec.start());
      this.running = { fence, children };
    } catch (err) {
      this.runtime.log.warn({ err }, 'owned streams failed to start; trying again');
      for (const child of children.reverse()) await child.stop().catch(() => undefined);
      this.runtime.streamOwner = null;
      this.retry ??= setTimeout(() => {
        this.retry = null;
        void this.sync();
      }, RETRY_MS);
      this.retry.unref();
    }
  }

  private async stopChildren(): Promise<void> {
    const running = this.running;
    this.running = null;
    if (running) for (const child of [...running.children].reverse()) await child.stop().catch((err: unknown) => this.runtime.log.warn({ err }, 'stopping an owned stream failed'));
    // A Postgres Changes engine created by a subscription after the children started stops too.
    await this.runtime.changes?.stop(false, false);
    this.runtime.streamOwner = null;
  }
}

/** The gates of the tenants running on this node, and the work ownership runs through them. */
export class OwnedStreams implements OwnedWork {
  private readonly gates = new Map<string, StreamsGate>();

  constructor(
    private readonly owner: OwnerCheck,
    /** Starts the tenant here if it is not running (TenantRegistry.get); null for an unknown tenant. */
    private readonly runTenant: (tenant: string) => TenantRuntime | null,
    private readonly log: Logger,
    /** Called once this node's streams of a tenant run (announce the owner), or stopped. */
    private readonly onRunning: (tenant: string, running: boolean) => void = () => undefined,
  ) {}

  /** The child each tenant's supervisor runs in place of `inner` (the stream children). */
  child(runtime: TenantRuntime, inner: readonly ChildSpec[]): ChildSpec {
    return {
      name: 'owned_streams',
      start: async () => {
        const gate = new StreamsGate(runtime, this.owner, inner);
        this.gates.set(runtime.id, gate);
        await gate.sync();
        return {
          exited: new Promise<never>(() => undefined),
          stop: async () => {
            if (this.gates.get(runtime.id) === gate) this.gates.delete(runtime.id);
            await gate.close();
          },
        };
      },
    };
  }

  /** Called when the lease is taken and at every renewal: the tenant runs here, with its streams. */
  async start(tenant: string): Promise<void> {
    const runtime = this.runTenant(tenant);
    if (runtime === null) {
      this.log.warn({ tenant }, 'owning a tenant this node does not know');
      return;
    }
    const gate = this.gates.get(tenant);
    if (gate) await gate.sync();
    // Commits that waited while ownership was unsure (Redis away for a moment) go out now.
    runtime.changes?.resume();
    if (runtime.streamOwner !== null) this.onRunning(tenant, true);
  }

  async stop(tenant: string): Promise<void> {
    await this.gates.get(tenant)?.sync();
    this.onRunning(tenant, false);
  }
}
