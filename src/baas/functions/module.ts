/**
 * Functions as WebAssembly (spec baas-api.md §5, issue 19): `ANY /functions/v1/<name>[/…]` runs a deployed WASI
 * command module (the WAGI convention) or a JavaScript/TypeScript function inside QuickJS-in-WebAssembly, on a pool
 * of warm worker threads with a time budget enforced from outside the guest and a memory cap; the management API
 * deploys them (management.ts); triggers invoke them on cron ticks and on events other modules emit (events.ts).
 */
import type { AppContext } from '../../context.js';
import type { Module } from '../../http/module.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../../http/uws.js';
import { registerTriggerEngine, triggerEngineOf } from './events.js';
import { PREFIX, serveInvocation } from './invoke.js';
import { mountFunctionsApi } from './management.js';
import { FunctionsService } from './service.js';
import { databaseTriggerChild } from './triggers/database.js';
import { TriggerEngine } from './triggers/engine.js';
import type { TenantRuntime } from '../../tenants/tenant.js';

class FunctionsModule implements Module {
  readonly name = 'functions';

  mount(app: TemplatedApp, ctx: AppContext): void {
    const service = new FunctionsService(ctx);
    const triggers = new TriggerEngine(service, ctx.registry, ctx.log, ctx.config.functionsTimeoutMs);
    registerTriggerEngine(ctx, triggers);
    triggers.start().catch((err: unknown) => ctx.log.error({ err, error_code: 'FunctionTriggersStartFailed' }, 'function triggers did not start'));
    // Stopped with the registry, which closes the control database they use.
    ctx.registry.onStop(async () => {
      triggers.stop();
      await service.close();
    });
    const handler = (res: HttpResponse, req: HttpRequest) => serveInvocation(ctx, service, res, req);
    app.any(`${PREFIX}*`, handler);
    mountFunctionsApi(app, ctx, service, triggers);
  }

  tenantChildren(tenant: TenantRuntime, ctx: AppContext) {
    const engine = triggerEngineOf(ctx);
    return engine ? [databaseTriggerChild(tenant, engine)] : [];
  }
}

export const functionsModule: Module = new FunctionsModule();
