import type { Logger } from '../observability/logger.js';
import type { TenantRuntime } from './tenant.js';

export type SupervisorState = 'starting' | 'ready' | 'degraded' | 'stopping' | 'stopped';

/** A supervised part of a tenant's runtime: started, watched, and restarted with backoff when it fails. */
export interface ChildSpec {
  name: string;
  start(): Promise<RunningChild>;
}

export interface RunningChild {
  /** Settles when the child dies on its own; the supervisor then restarts it. */
  readonly exited: Promise<unknown>;
  stop(): Promise<void>;
}

export interface SupervisorOptions {
  backoffMinMs: number;
  backoffMaxMs: number;
  /** Stop the tenant after this long without sockets. */
  idleStopMs: number;
  idleCheckMs: number;
}

interface ChildSlot {
  spec: ChildSpec;
  running: RunningChild | null;
  failures: number;
  timer: NodeJS.Timeout | null;
  lastError: string | null;
}

/**
 * Owns one tenant's runtime on this node, with an explicit lifecycle: starts lazily, restarts failed children
 * with exponential backoff, catches faults at the tenant boundary (the tenant degrades and recovers, nobody
 * else notices), and stops after a period without users.
 */
export class TenantSupervisor {
  state: SupervisorState = 'starting';
  private readonly children = new Map<string, ChildSlot>();
  private faultTimer: NodeJS.Timeout | null = null;
  private faultCount = 0;
  private idleSince = Date.now();
  private readonly idleTimer: NodeJS.Timeout;
  private readonly log: Logger;

  constructor(
    readonly runtime: TenantRuntime,
    private readonly opts: SupervisorOptions,
    private readonly onStopped: (sup: TenantSupervisor) => void,
    /** True while something other than sockets needs the tenant running (e.g. its database triggers). */
    private readonly keepAlive: () => boolean = () => false,
  ) {
    this.log = runtime.log;
    runtime.onFault = (err, where) => this.fault(err, where);
    this.idleTimer = setInterval(() => this.checkIdle(), opts.idleCheckMs);
    this.idleTimer.unref();
  }

  /** False once stopping: a method re-checks it after every await. */
  private get alive(): boolean {
    return this.state !== 'stopping' && this.state !== 'stopped';
  }

  /** Adds and starts a child; its failures degrade the tenant until a restart succeeds. */
  supervise(spec: ChildSpec): void {
    if (!this.alive || this.children.has(spec.name)) return;
    const slot: ChildSlot = { spec, running: null, failures: 0, timer: null, lastError: null };
    this.children.set(spec.name, slot);
    void this.startChild(slot);
  }

  childUp(name: string): boolean {
    return this.children.get(name)?.running != null;
  }

  private async startChild(slot: ChildSlot): Promise<void> {
    slot.timer = null;
    if (!this.alive) return;
    try {
      const running = await slot.spec.start();
      if (!this.alive) {
        await running.stop();
        return;
      }
      slot.running = running;
      slot.failures = 0;
      slot.lastError = null;
      this.refreshState();
      running.exited.then(
        () => this.childFailed(slot, new Error('exited')),
        (err: unknown) => this.childFailed(slot, err),
      );
    } catch (err) {
      this.childFailed(slot, err);
    }
  }

  private childFailed(slot: ChildSlot, err: unknown): void {
    if (!this.alive || !this.children.has(slot.spec.name)) return;
    slot.running = null;
    slot.failures += 1;
    slot.lastError = (err as Error)?.message ?? String(err);
    const delay = Math.min(this.opts.backoffMaxMs, this.opts.backoffMinMs * 2 ** (slot.failures - 1));
    this.log.warn({ child: slot.spec.name, error_code: 'TenantChildFailed', reason: slot.lastError, retry_in_ms: delay }, 'tenant child failed');
    this.refreshState();
    slot.timer = setTimeout(() => void this.startChild(slot), delay);
    slot.timer.unref();
  }

  /** An exception escaped a handler of this tenant: degrade now, recover after a quiet backoff. */
  fault(err: unknown, where: string): void {
    if (!this.alive) return;
    this.faultCount += 1;
    this.log.error({ err, where, error_code: 'TenantFault' }, 'tenant handler failed; tenant degraded');
    this.state = 'degraded';
    if (this.faultTimer) clearTimeout(this.faultTimer);
    const delay = Math.min(this.opts.backoffMaxMs, this.opts.backoffMinMs * 2 ** Math.min(this.faultCount - 1, 10));
    this.faultTimer = setTimeout(() => {
      this.faultTimer = null;
      this.faultCount = 0;
      this.refreshState();
    }, delay);
    this.faultTimer.unref();
  }

  private refreshState(): void {
    if (!this.alive) return;
    const childrenUp = [...this.children.values()].every((c) => c.running !== null);
    const next = childrenUp && this.faultTimer === null ? 'ready' : 'degraded';
    if (next !== this.state) this.log.info({ from: this.state, to: next }, 'tenant state changed');
    this.state = next;
  }

  private checkIdle(): void {
    // A tenant still starting counts as used: the connection that started it may not be among its sockets yet (its
    // token is being checked), and a start slower than the idle period must not end in a stop under that connection.
    if (this.runtime.sockets.size > 0 || (this.state === 'starting' && this.children.size > 0) || this.keepAlive()) {
      this.idleSince = Date.now();
      return;
    }
    if (Date.now() - this.idleSince >= this.opts.idleStopMs) {
      this.log.info('tenant idle; stopping');
      void this.stop();
    }
  }

  /** Marks the tenant as used (REST calls keep a tenant running as sockets do). */
  touch(): void {
    this.idleSince = Date.now();
  }

  health(): { state: SupervisorState; children: Record<string, { up: boolean; failures: number; lastError: string | null }> } {
    const children: Record<string, { up: boolean; failures: number; lastError: string | null }> = {};
    for (const [name, c] of this.children) children[name] = { up: c.running !== null, failures: c.failures, lastError: c.lastError };
    return { state: this.state, children };
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.state = 'stopping';
    clearInterval(this.idleTimer);
    if (this.faultTimer) clearTimeout(this.faultTimer);
    const slots = [...this.children.values()];
    this.children.clear();
    await Promise.all(
      slots.map(async (slot) => {
        if (slot.timer) clearTimeout(slot.timer);
        await slot.running?.stop().catch((err: unknown) => this.log.warn({ err, child: slot.spec.name }, 'stopping child failed'));
      }),
    );
    await this.runtime.stop();
    this.state = 'stopped';
    this.onStopped(this);
  }
}
