import type { AppContext } from '../context.js';
import type { ChildSpec } from '../tenants/supervisor.js';
import type { TenantRuntime } from '../tenants/tenant.js';
import type { TemplatedApp } from './uws.js';

/**
 * A part of the server on the one HTTP app: the Phoenix socket, REST broadcast, the management API, health,
 * metrics, and each BaaS module. A module is its own file or folder and one line in the list of src/modules.ts;
 * nothing else names it. Tenant routes go through the gate (http/gate.ts): tenant by Host, apikey/Authorization,
 * rate headers, CORS, bounded bodies.
 */
export interface Module {
  /** Short and unique: names the module in logs and in its tenant children's names. */
  readonly name: string;
  /** Adds the module's routes to the app, once, before the server listens; modules mount in list order. */
  mount(app: TemplatedApp, ctx: AppContext): void;
  /**
   * What the module runs for each tenant under that tenant's supervisor (pollers, caches, streams): started when the
   * tenant starts, restarted with backoff when one fails, stopped with the tenant.
   */
  tenantChildren?(tenant: TenantRuntime, ctx: AppContext): ChildSpec[];
}

/** Every module's children for one tenant, each named `<module>/<child>`. */
export function moduleChildren(modules: readonly Module[], tenant: TenantRuntime, ctx: AppContext): ChildSpec[] {
  return modules.flatMap((module) =>
    (module.tenantChildren?.(tenant, ctx) ?? []).map((child) => ({ ...child, name: `${module.name}/${child.name}` })),
  );
}

/** Refuses a list in which two modules share a name: their logs and children could not be told apart. */
export function checkModules(modules: readonly Module[]): void {
  const seen = new Set<string>();
  for (const { name } of modules) {
    if (seen.has(name)) throw new Error(`two HTTP modules are named ${JSON.stringify(name)}`);
    seen.add(name);
  }
}
