/**
 * The port through which a module reports what happened (auth: a user signed up; storage: an object was written) to
 * whoever listens, without importing it: today the functions module, whose triggers turn events into invocations.
 * The listener registers itself on the app context at mount; a module looks the sink up when it emits, so mount
 * order does not matter. Without a listener events go nowhere.
 */
import type { AppContext } from '../context.js';

/** An event a module reports: `type` as `user.created` or `object.created`, `id` the same on every report of it. */
export interface ModuleEvent {
  kind: 'auth' | 'storage' | 'database';
  type: string;
  id?: string;
  /** Storage: the bucket; database: `schema.table`. */
  scope?: string;
  record?: unknown;
  old_record?: unknown;
  [key: string]: unknown;
}

export interface ModuleEventSink {
  /** Whether some listener of the tenant wants events of `kind` (so a module can skip building them). */
  wants(tenant: string, kind: ModuleEvent['kind']): boolean;
  /** Records the event for delivery; resolves to how many listeners recorded it. Emit only what has committed. */
  emit(tenant: string, event: ModuleEvent): Promise<number>;
}

const NOBODY: ModuleEventSink = { wants: () => false, emit: () => Promise.resolve(0) };
const sinks = new WeakMap<AppContext, ModuleEventSink>();

export function setModuleEventSink(ctx: AppContext, sink: ModuleEventSink): void {
  sinks.set(ctx, sink);
}

export function moduleEvents(ctx: AppContext): ModuleEventSink {
  return sinks.get(ctx) ?? NOBODY;
}

/**
 * Hands committed events on without making the request wait or fail for it: a failure to record is logged (the
 * change itself stands).
 */
export function emitCommitted(ctx: AppContext, tenant: string, events: readonly ModuleEvent[], log: { warn(obj: object, msg: string): void }): void {
  if (events.length === 0) return;
  const sink = moduleEvents(ctx);
  for (const event of events) {
    if (!sink.wants(tenant, event.kind)) continue;
    sink.emit(tenant, event).catch((err: unknown) => log.warn({ err, error_code: 'ModuleEventNotRecorded', event_id: event.id, event_type: event.type }, 'recording a module event failed'));
  }
}
