import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { TenantRuntime, type DatabasePreparer, type TenantSettings } from './tenant.js';

/**
 * Finds the tenant of a request from its Host header and owns the tenants' runtimes on this node.
 * Until the management API lands, the only tenant is the default one from the environment.
 */
export class TenantRegistry {
  private readonly runtimes = new Map<string, TenantRuntime>();
  private readonly known = new Map<string, TenantSettings>();

  constructor(
    readonly defaultTenantId: string,
    private readonly log: Logger,
    private readonly prepareDatabase: DatabasePreparer,
  ) {}

  static fromConfig(config: Config, databaseUrl: string, log: Logger, prepare: DatabasePreparer): TenantRegistry {
    const registry = new TenantRegistry(config.tenantId, log, prepare);
    registry.upsert({
      externalId: config.tenantId,
      databaseUrl,
      jwtSecret: config.jwtSecret,
      jwtJwks: config.jwtJwks,
      privateOnly: false,
      suspend: false,
      presenceEnabled: false,
      limits: { ...config.tenantDefaults },
      dbPoolSize: config.dbPoolSize,
    });
    return registry;
  }

  upsert(settings: TenantSettings): void {
    this.known.set(settings.externalId, settings);
  }

  /** The tenant id a Host header names: an IP address or `localhost` means the default tenant. */
  tenantIdForHost(host: string): string {
    const name = stripPort(host).toLowerCase();
    if (name === '' || name === 'localhost' || isIpAddress(name)) return this.defaultTenantId;
    const dot = name.indexOf('.');
    return dot === -1 ? name : name.slice(0, dot);
  }

  /** The running tenant for a Host, started on first use; null when no such tenant exists. */
  resolve(host: string): TenantRuntime | null {
    return this.get(this.tenantIdForHost(host));
  }

  get(tenantId: string): TenantRuntime | null {
    const running = this.runtimes.get(tenantId);
    if (running) return running;
    const settings = this.known.get(tenantId);
    if (!settings) return null;
    const runtime = new TenantRuntime(settings, this.log, this.prepareDatabase);
    this.runtimes.set(tenantId, runtime);
    return runtime;
  }

  /** The tenant's runtime if it is running here; never starts one. */
  peek(tenantId: string): TenantRuntime | null {
    return this.runtimes.get(tenantId) ?? null;
  }

  running(): TenantRuntime[] {
    return [...this.runtimes.values()];
  }

  async stop(): Promise<void> {
    await Promise.all(this.running().map((t) => t.stop()));
    this.runtimes.clear();
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
