/** Triggers and their deliveries in the control database (control migration 5). */
import type pg from 'pg';
import type { TriggerConfig } from './config.js';

export interface StoredTrigger {
  id: string;
  tenant: string;
  function: string;
  config: TriggerConfig;
}

export interface DueDelivery {
  triggerId: string;
  eventId: string;
  payload: unknown;
  attempts: number;
  tenant: string;
  function: string;
  kind: TriggerConfig['type'];
}

export class TriggerStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Replaces a function's triggers; false when the function does not exist. */
  async replace(tenant: string, name: string, triggers: TriggerConfig[]): Promise<boolean> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const { rowCount } = await client.query('SELECT 1 FROM _performer.functions WHERE tenant_external_id = $1 AND name = $2 FOR UPDATE', [tenant, name]);
      if (!rowCount) {
        await client.query('ROLLBACK');
        return false;
      }
      await client.query('DELETE FROM _performer.function_triggers WHERE tenant_external_id = $1 AND function_name = $2', [tenant, name]);
      for (const t of triggers) {
        await client.query('INSERT INTO _performer.function_triggers (tenant_external_id, function_name, kind, config) VALUES ($1, $2, $3, $4)', [tenant, name, t.type, t]);
      }
      await client.query('COMMIT');
      return true;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async list(tenant: string, name?: string): Promise<StoredTrigger[]> {
    const { rows } = await this.pool.query<{ id: string; tenant_external_id: string; function_name: string; config: TriggerConfig }>(
      `SELECT id, tenant_external_id, function_name, config FROM _performer.function_triggers
       WHERE tenant_external_id = $1 AND ($2::text IS NULL OR function_name = $2) ORDER BY inserted_at, id`,
      [tenant, name ?? null],
    );
    return rows.map((r) => ({ id: r.id, tenant: r.tenant_external_id, function: r.function_name, config: r.config }));
  }

  /** Records an event for a trigger; false when it was recorded before (another node, or a repeat), so it is not delivered twice. */
  async record(triggerId: string, eventId: string, payload: unknown): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `INSERT INTO _performer.function_deliveries (trigger_id, event_id, payload) VALUES ($1, $2, $3)
       ON CONFLICT DO NOTHING`,
      [triggerId, eventId, JSON.stringify(payload)],
    );
    return (rowCount ?? 0) > 0;
  }

  /** Claims due deliveries (pushing their next attempt out by `leaseMs`, so another node does not take them too). */
  async claimDue(limit: number, leaseMs: number): Promise<DueDelivery[]> {
    const { rows } = await this.pool.query<{ trigger_id: string; event_id: string; payload: unknown; attempts: number; tenant_external_id: string; function_name: string; kind: TriggerConfig['type'] }>(
      `UPDATE _performer.function_deliveries d SET next_attempt_at = now() + $2 * interval '1 millisecond'
       FROM _performer.function_triggers t
       WHERE t.id = d.trigger_id AND (d.trigger_id, d.event_id) IN (
         SELECT trigger_id, event_id FROM _performer.function_deliveries
         WHERE state = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING d.trigger_id, d.event_id, d.payload, d.attempts, t.tenant_external_id, t.function_name, t.kind`,
      [limit, leaseMs],
    );
    return rows.map((r) => ({ triggerId: r.trigger_id, eventId: r.event_id, payload: r.payload, attempts: r.attempts, tenant: r.tenant_external_id, function: r.function_name, kind: r.kind }));
  }

  /** The outcome of one attempt: delivered, retried after `retryInMs`, or failed for good (retryInMs null). */
  async settle(d: DueDelivery, status: number | null, error: string | null, delivered: boolean, retryInMs: number | null): Promise<void> {
    await this.pool.query(
      `UPDATE _performer.function_deliveries SET attempts = attempts + 1, last_status = $3, last_error = $4,
         state = CASE WHEN $5 THEN 'delivered' WHEN $6::integer IS NULL THEN 'failed' ELSE 'pending' END,
         next_attempt_at = now() + coalesce($6::integer, 0) * interval '1 millisecond', updated_at = now()
       WHERE trigger_id = $1 AND event_id = $2`,
      [d.triggerId, d.eventId, status, error === null ? null : error.slice(0, 1000), delivered, retryInMs],
    );
  }

  async deliveries(tenant: string, name: string): Promise<{ event_id: string; state: string; attempts: number; last_status: number | null; kind: string }[]> {
    const { rows } = await this.pool.query(
      `SELECT d.event_id, d.state, d.attempts, d.last_status, t.kind FROM _performer.function_deliveries d
       JOIN _performer.function_triggers t ON t.id = d.trigger_id
       WHERE t.tenant_external_id = $1 AND t.function_name = $2 ORDER BY d.inserted_at DESC LIMIT 1000`,
      [tenant, name],
    );
    return rows;
  }
}
