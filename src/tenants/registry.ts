import pg from 'pg';
import type { Logger } from '../observability/logger.js';
import { dropTenantChangesSlots } from '../replication/changes-slot.js';
import type { TenantMetrics } from '../observability/metrics.js';
import { toRuntimeSettings, type TenantRecord } from './record.js';
import type { TenantStore } from './store.js';
import { TenantSupervisor, type ChildSpec, type SupervisorOptions } from './supervisor.js';
import { TenantRuntime, type DatabasePreparer } from './tenant.js';

export interface RegistryOptions {
  defaultTenantId: string;
  dbPoolSize: number;
  supervisor: SupervisorOptions;
  /** How often tenant records are re-read from the control plane (changes made through other nodes). */
  refreshMs: number;
  /** Children every tenant runs under its supervisor (database, replication, janitor...). */
  children: (runtime: TenantRuntime) => ChildSpec[];
  rates: { tickMs: number; windowMs: number };
  claimValidators: Record<string, unknown>;
  /** A tenant's metric series (the server's Metrics.forTenant). */
  metrics: (tenantId: string) => TenantMetrics;
  /** This node's name (NODE_NAME): presence replica ids start with it. */
  nodeName?: string;
}

/** Changes that invalidate every connected socket's authorization: upstream disconnects them (close 1012). */
function needsDisconnect(a: TenantRecord, b: TenantRecord): boolean {
  return (
    a.jwtSecret !== b.jwtSecret ||
    JSON.stringify(a.jwtJwks) !== JSON.stringify(b.jwtJwks) ||
    a.privateOnly !== b.privateOnly ||
    a.suspend !== b.suspend
  );
}

function needsRestart(a: TenantRecord, b: TenantRecord): boolean {
  return needsDisconnect(a, b) || JSON.stringify(a.extensions.map((e) => e.settings)) !== JSON.stringify(b.extensions.map((e) => e.settings));
}

export const SERVER_REQUESTED_DISCONNECT = 'Server requested disconnect';

/**
 * Knows every tenant (records from the control plane, cached in memory so a Host lookup never waits on I/O) and
 * owns the supervisors of the tenants running on this node.
 */
export class TenantRegistry {
  private readonly records = new Map<string, TenantRecord>();
  private readonly supervisors = new Map<string, TenantSupervisor>();
  private refreshTimer: NodeJS.Timeout | null = null;
  private readonly keepAlivePredicates: ((tenantId: string) => boolean)[] = [];

  constructor(
    private readonly store: TenantStore,
    private readonly log: Logger,
    private readonly prepareDatabase: DatabasePreparer,
    private readonly opts: RegistryOptions,
  ) {}

  get defaultTenantId(): string {
    return this.opts.defaultTenantId;
  }

  async load(): Promise<void> {
    for (const record of await this.store.list()) this.records.set(record.externalId, record);
    this.refreshTimer = setInterval(() => void this.refresh(), this.opts.refreshMs);
    this.refreshTimer.unref();
  }

  /** The tenant id a Host header names: an IP address or `localhost` means the default tenant. */
  tenantIdForHost(host: string): string {
    const name = stripPort(host).toLowerCase();
    if (name === '' || name === 'localhost' || isIpAddress(name)) return this.opts.defaultTenantId;
    const dot = name.indexOf('.');
    return dot === -1 ? name : name.slice(0, dot);
  }

  /** The running tenant for a Host, started on first use; null when no such tenant exists. */
  resolve(host: string): TenantRuntime | null {
    return this.get(this.tenantIdForHost(host));
  }

  get(tenantId: string): TenantRuntime | null {
    const running = this.supervisors.get(tenantId);
    if (running) return running.runtime;
    const record = this.records.get(tenantId);
    if (!record) return null;
    const runtime = new TenantRuntime(toRuntimeSettings(record, this.opts.dbPoolSize, this.opts.claimValidators), this.log, this.prepareDatabase, this.opts.metrics(tenantId), this.opts.rates, this.opts.nodeName);
    const supervisor = new TenantSupervisor(
      runtime,
      this.opts.supervisor,
      (s) => {
        if (this.supervisors.get(tenantId) === s) this.supervisors.delete(tenantId);
      },
      () => this.keepAlivePredicates.some((wanted) => wanted(tenantId)),
    );
    this.supervisors.set(tenantId, supervisor);
    for (const child of this.opts.children(runtime)) supervisor.supervise(child);
    return runtime;
  }

  /** A running tenant for which `wanted` is true is not stopped when idle (a module's background work needs it). */
  keepRunning(wanted: (tenantId: string) => boolean): void {
    this.keepAlivePredicates.push(wanted);
  }

  /** The tenant's runtime if it is running here; never starts one. */
  peek(tenantId: string): TenantRuntime | null {
    return this.supervisors.get(tenantId)?.runtime ?? null;
  }

  supervisor(tenantId: string): TenantSupervisor | null {
    return this.supervisors.get(tenantId) ?? null;
  }

  record(tenantId: string): TenantRecord | null {
    return this.records.get(tenantId) ?? null;
  }

  list(): TenantRecord[] {
    return [...this.records.values()];
  }

  running(): TenantRuntime[] {
    return [...this.supervisors.values()].map((s) => s.runtime);
  }

  /** Stores a created or changed tenant and applies the change to its running runtime. */
  async save(record: TenantRecord): Promise<TenantRecord> {
    const stored = await this.store.save(record);
    await this.apply(stored);
    return stored;
  }

  async delete(tenantId: string): Promise<void> {
    const record = this.records.get(tenantId);
    await this.store.delete(tenantId);
    this.records.delete(tenantId);
    await this.stopTenant(tenantId, SERVER_REQUESTED_DISCONNECT);
    if (record) await this.dropSlotsOf(record);
  }

  /** A deleted tenant's Postgres Changes slots would keep WAL for nobody: dropped, as upstream drops its slots. */
  private async dropSlotsOf(record: TenantRecord): Promise<void> {
    const log = this.log.child({ tenant: record.externalId });
    const client = new pg.Client({ connectionString: toRuntimeSettings(record, 1).databaseUrl, connectionTimeoutMillis: 5000 });
    client.on('error', (err) => log.debug({ err }, 'slot cleanup connection error'));
    try {
      await client.connect();
      const dropped = await dropTenantChangesSlots(client, record.externalId, log);
      if (dropped.length > 0) log.info({ dropped }, 'dropped the deleted tenant\'s replication slots');
    } catch (err) {
      // The tenant is gone either way; a slot left behind (database unreachable) is for its operator to drop.
      log.warn({ err, error_code: 'UnableToDropReplicationSlots' }, 'could not drop the deleted tenant\'s replication slots');
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Disconnects the tenant's sockets and stops its runtime; the next request starts it afresh. */
  private readonly stopHooks: (() => Promise<void>)[] = [];

  async stopTenant(tenantId: string, message: string | null): Promise<void> {
    const supervisor = this.supervisors.get(tenantId);
    if (!supervisor) return;
    this.supervisors.delete(tenantId);
    for (const socket of [...supervisor.runtime.sockets]) socket.disconnect(1012, message);
    await supervisor.stop();
  }

  private async apply(next: TenantRecord): Promise<void> {
    const previous = this.records.get(next.externalId);
    this.records.set(next.externalId, next);
    const supervisor = this.supervisors.get(next.externalId);
    if (!previous || !supervisor) return;
    if (needsRestart(previous, next)) {
      await this.stopTenant(next.externalId, needsDisconnect(previous, next) ? SERVER_REQUESTED_DISCONNECT : null);
      return;
    }
    // Limits and flags apply in place: sockets stay connected.
    const settings = toRuntimeSettings(next, this.opts.dbPoolSize, this.opts.claimValidators);
    Object.assign(supervisor.runtime.settings.limits, settings.limits);
    Object.assign(supervisor.runtime.settings, { ...settings, limits: supervisor.runtime.settings.limits });
  }

  /** Picks up changes made through other nodes. */
  private async refresh(): Promise<void> {
    try {
      const records = await this.store.list();
      const seen = new Set<string>();
      for (const record of records) {
        seen.add(record.externalId);
        const known = this.records.get(record.externalId);
        if (!known || known.updatedAt !== record.updatedAt || JSON.stringify(known) !== JSON.stringify(record)) await this.apply(record);
      }
      for (const id of [...this.records.keys()]) {
        if (seen.has(id)) continue;
        this.records.delete(id);
        await this.stopTenant(id, SERVER_REQUESTED_DISCONNECT);
      }
    } catch (err) {
      this.log.warn({ err, error_code: 'TenantCacheRefreshFailed' }, 'refreshing tenants from the control plane failed');
    }
  }

  /** Runs `hook` when the registry stops, after the tenants and before the control database closes. */
  onStop(hook: () => Promise<void>): void {
    this.stopHooks.push(hook);
  }

  async stop(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    await Promise.all([...this.supervisors.values()].map((s) => s.stop()));
    this.supervisors.clear();
    for (const hook of this.stopHooks.splice(0)) await hook().catch((err: unknown) => this.log.warn({ err }, 'a stop hook failed'));
    await this.store.close();
  }
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.lastIndexOf(':');
  return colon !== -1 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}

function isIpAddress(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || name.startsWith('[') || name.includes(':');
}
