/**
 * Events that invoke functions: cron schedules (croner), and auth, storage and database events that other modules
 * hand to `emit`. Each event is first recorded in the control database under (trigger, event id), so it is
 * delivered once even when several nodes see it (every node ticks the same cron schedule), then delivered
 * at least once: a POST with the event as JSON and its id in `x-performer-event-id`, retried with exponential
 * backoff until the function answers 2xx or MAX_ATTEMPTS is reached; each attempt's status is recorded.
 */
import { randomUUID } from 'node:crypto';
import { Cron } from 'croner';
import type { ModuleEvent } from '../../../http/module-events.js';
import type { Logger } from '../../../observability/logger.js';
import type { TenantRegistry } from '../../../tenants/registry.js';
import type { FunctionsService } from '../service.js';
import { TriggerStore, type DueDelivery, type StoredTrigger } from './store.js';

export const MAX_ATTEMPTS = 6;
const BASE_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 5 * 60_000;
const POLL_MS = 1000;
const REFRESH_MS = 10_000;

/** An event another module reports (http/module-events.ts): `type` as `user.created`, `id` unique per event. */
export type FunctionEvent = ModuleEvent;

export class TriggerEngine {
  readonly store: TriggerStore;
  private byTenant = new Map<string, StoredTrigger[]>();
  private readonly crons = new Map<string, Cron>();
  private poller: NodeJS.Timeout | null = null;
  private refresher: NodeJS.Timeout | null = null;
  private delivering = false;
  private again = false;
  private stopped = false;
  private readonly changeListeners = new Set<() => void>();

  constructor(
    private readonly service: FunctionsService,
    private readonly registry: TenantRegistry,
    private readonly log: Logger,
    private readonly timeoutMs: number,
  ) {
    this.store = new TriggerStore(service.store.pool);
    // Database triggers read a slot from inside the tenant's runtime: it must run without clients.
    registry.keepRunning((tenant) => !this.stopped && this.wants(tenant, 'database'));
  }

  async start(): Promise<void> {
    await this.refresh();
    this.poller = setInterval(() => this.kick(), POLL_MS);
    this.refresher = setInterval(() => void this.refresh().catch((err: unknown) => this.log.warn({ err, error_code: 'FunctionTriggersRefreshFailed' }, 'reading function triggers failed')), REFRESH_MS);
    this.poller.unref();
    this.refresher.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.poller) clearInterval(this.poller);
    if (this.refresher) clearInterval(this.refresher);
    for (const job of this.crons.values()) job.stop();
    this.crons.clear();
  }

  /** Re-reads the triggers (after a change made on this node; other nodes pick it up within REFRESH_MS). */
  async reload(_tenant: string): Promise<void> {
    await this.refresh();
  }

  /** The tables (`schema.table`) the tenant's database triggers watch, sorted. */
  databaseTables(tenant: string): string[] {
    const tables = new Set<string>();
    for (const t of this.byTenant.get(tenant) ?? []) if (t.config.type === 'database') tables.add(`${t.config.schema}.${t.config.table}`);
    return [...tables].sort();
  }

  /** Called after every refresh of the triggers; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Whether the tenant has a trigger of `kind` (as last read), so an emitter can skip building events. */
  wants(tenant: string, kind: FunctionEvent['kind']): boolean {
    return (this.byTenant.get(tenant) ?? []).some((t) => t.config.type === kind);
  }

  /** Hands an event to the functions whose triggers match it; resolves once it is recorded (not yet delivered). */
  async emit(tenant: string, event: FunctionEvent): Promise<number> {
    const id = event.id ?? randomUUID();
    let recorded = 0;
    for (const trigger of this.byTenant.get(tenant) ?? []) {
      if (!matches(trigger, event)) continue;
      const fresh = await this.store.record(trigger.id, `${event.kind}:${id}`, { ...event, id });
      this.service.metrics.triggerEvents.inc({ kind: event.kind, result: fresh ? 'recorded' : 'duplicate' });
      if (fresh) recorded++;
    }
    if (recorded > 0) this.kick();
    return recorded;
  }

  private async refresh(): Promise<void> {
    const { rows } = await this.service.store.pool.query<{ id: string; tenant_external_id: string; function_name: string; config: StoredTrigger['config'] }>(
      'SELECT id, tenant_external_id, function_name, config FROM _performer.function_triggers ORDER BY inserted_at, id',
    );
    if (this.stopped) return;
    const next = new Map<string, StoredTrigger[]>();
    for (const r of rows) {
      const list = next.get(r.tenant_external_id) ?? [];
      list.push({ id: r.id, tenant: r.tenant_external_id, function: r.function_name, config: r.config });
      next.set(r.tenant_external_id, list);
    }
    this.byTenant = next;
    // Starts the runtimes database triggers need (after a restart nobody may call them); cron and event
    // triggers need none, their deliveries start the tenant.
    for (const tenant of next.keys()) if (this.wants(tenant, 'database')) this.registry.get(tenant);
    for (const listener of this.changeListeners) listener();
    const wanted = new Map(rows.filter((r) => r.config.type === 'cron').map((r) => [`${r.id}|${JSON.stringify(r.config)}`, r]));
    for (const [key, job] of this.crons) {
      if (!wanted.has(key)) {
        job.stop();
        this.crons.delete(key);
      }
    }
    for (const [key, r] of wanted) {
      if (this.crons.has(key) || r.config.type !== 'cron') continue;
      const config = r.config;
      const job = new Cron(config.schedule, { timezone: config.timezone, protect: true, unref: true }, () => {
        // The scheduled time, not the moment this node woke: the same event id on every node.
        const at = job.currentRun() ?? new Date();
        const scheduled = new Date(Math.round(at.getTime() / 1000) * 1000).toISOString();
        this.store
          .record(r.id, `cron:${scheduled}`, { kind: 'cron', type: 'cron.tick', schedule: config.schedule, scheduled_at: scheduled })
          .then((fresh) => {
            this.service.metrics.triggerEvents.inc({ kind: 'cron', result: fresh ? 'recorded' : 'duplicate' });
            if (fresh) this.kick();
          })
          .catch((err: unknown) => this.log.warn({ err, error_code: 'FunctionCronRecordFailed' }, 'recording a cron tick failed'));
      });
      this.crons.set(key, job);
    }
  }

  /** Delivers what is due, one pass at a time. */
  private kick(): void {
    if (this.stopped) return;
    if (this.delivering) {
      this.again = true;
      return;
    }
    this.delivering = true;
    this.deliverDue()
      .catch((err: unknown) => this.log.warn({ err, error_code: 'FunctionDeliveryFailed' }, 'delivering function events failed'))
      .finally(() => {
        this.delivering = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async deliverDue(): Promise<void> {
    for (;;) {
      const due = await this.store.claimDue(16, this.timeoutMs + 5000);
      if (due.length === 0 || this.stopped) return;
      await Promise.all(due.map((d) => this.deliver(d)));
    }
  }

  /** A Host that selects the tenant, so a triggered function's calls to the own API reach its tenant. */
  private hostFor(tenant: string): string {
    const host = `${tenant}.localhost`;
    return this.registry.tenantIdForHost(host) === tenant ? host : '';
  }

  private async deliver(d: DueDelivery): Promise<void> {
    const tenant = this.registry.get(d.tenant);
    const labels = { tenant: d.tenant, function: d.function, kind: d.kind };
    let status: number | null = null;
    let error: string | null = null;
    if (!tenant) {
      error = 'tenant not found';
    } else {
      const body = Buffer.from(JSON.stringify(d.payload));
      const answer = await this.service.invoke({
        tenant,
        name: d.function,
        request: {
          method: 'POST',
          path: '',
          query: '',
          headers: {
            'content-type': 'application/json',
            'x-performer-event-id': d.eventId,
            'x-performer-event-kind': d.kind,
            'x-performer-delivery-attempt': String(d.attempts + 1),
          },
          body,
        },
        host: this.hostFor(d.tenant),
        requestId: randomUUID().replace(/-/g, ''),
      });
      status = answer.ok ? answer.response.status : answer.error.status;
      if (!answer.ok) error = String(answer.error.body.code);
    }
    const delivered = status !== null && status >= 200 && status < 300;
    const retry = !delivered && d.attempts + 1 < MAX_ATTEMPTS ? Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** d.attempts) : null;
    await this.store.settle(d, status, delivered ? null : (error ?? `status ${status}`), delivered, retry);
    this.service.metrics.triggerDeliveries.inc({ ...labels, result: delivered ? 'delivered' : retry === null ? 'failed' : 'retry' });
    if (!delivered) {
      this.log.warn({ tenant: d.tenant, function: d.function, event_id: d.eventId, attempt: d.attempts + 1, status, error_code: 'FunctionDeliveryFailed' }, 'function event delivery failed');
    }
  }
}

function matches(trigger: StoredTrigger, event: FunctionEvent): boolean {
  const c = trigger.config;
  if (c.type !== event.kind) return false;
  if (c.type === 'auth') return c.events.includes(event.type);
  if (c.type === 'storage') return c.events.includes(event.type) && (c.bucket === undefined || c.bucket === event.scope);
  if (c.type === 'database') {
    if (`${c.schema}.${c.table}` !== event.scope || !(c.events as string[]).includes(event.type)) return false;
    if (!c.filter) return true;
    const row = (event.type === 'DELETE' ? event.old_record : event.record) as Record<string, unknown> | null | undefined;
    return row !== null && row !== undefined && String(row[c.filter.column]) === c.filter.value;
  }
  return false;
}
