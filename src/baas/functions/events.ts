/**
 * The one door other modules use to trigger functions: auth (`user.created`, `user.signed_in`, …), storage
 * (`object.created`, `object.removed`, … with the bucket as `scope`) and database changes (`INSERT`/`UPDATE`/`DELETE`
 * with `schema.table` as `scope`). Give each event a stable `id` when the source may report it twice: a repeat is
 * then recognised and not delivered again.
 */
import type { AppContext } from '../../context.js';
import { setModuleEventSink } from '../../http/module-events.js';
import type { FunctionEvent, TriggerEngine } from './triggers/engine.js';

export type { FunctionEvent } from './triggers/engine.js';

const engines = new WeakMap<AppContext, TriggerEngine>();

export function registerTriggerEngine(ctx: AppContext, engine: TriggerEngine): void {
  engines.set(ctx, engine);
  // Auth and storage report through the module-events port; the engine is its listener.
  setModuleEventSink(ctx, { wants: (tenant, kind) => engine.wants(tenant, kind), emit: (tenant, event) => engine.emit(tenant, event) });
}

export function triggerEngineOf(ctx: AppContext): TriggerEngine | undefined {
  return engines.get(ctx);
}

/** Records the event for every matching trigger of the tenant's functions; resolves to how many were recorded. */
export function emitFunctionEvent(ctx: AppContext, tenant: string, event: FunctionEvent): Promise<number> {
  const engine = engines.get(ctx);
  return engine ? engine.emit(tenant, event) : Promise.resolve(0);
}
