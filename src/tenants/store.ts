import pg from 'pg';
import { guardLent, withoutPoolClient } from '../db/lend.js';
import type { Logger } from '../observability/logger.js';
import { controlMigrations } from './control-migrations.js';
import { runMigrations } from './migrate.js';
import { ENCRYPTED_SETTINGS, type ExtensionRecord, type TenantRecord } from './record.js';
import type { SecretBox } from './secrets.js';

const CONTROL_TARGET = { schema: '_performer', lockKey: '7218390451162785410', label: 'control migration' };

interface TenantRow {
  id: string;
  external_id: string;
  name: string;
  jwt_secret: string | null;
  jwt_jwks: { keys: Record<string, unknown>[] } | null;
  max_concurrent_users: number;
  max_events_per_second: number;
  max_joins_per_second: number;
  max_channels_per_client: number;
  /** bigint: pg hands it over as text. */
  max_bytes_per_second: string | number;
  max_payload_size_in_kb: number;
  max_presence_events_per_second: number;
  max_client_presence_events_per_window: number | null;
  client_presence_window_ms: number | null;
  presence_enabled: boolean;
  private_only: boolean;
  suspend: boolean;
  auth_settings: Record<string, unknown> | null;
  inserted_at: string;
  updated_at: string;
  extensions: { type: string; settings: Record<string, unknown>; inserted_at: string; updated_at: string }[] | null;
}

/** The control database's pool and the box that seals secrets stored in it. */
export interface ControlPlane {
  pool: pg.Pool;
  box: SecretBox;
}

/** Tenants and their extensions in the control database, with secrets encrypted at rest. */
export class TenantStore {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly box: SecretBox,
  ) {}

  static async open(url: string, box: SecretBox, log: Logger): Promise<TenantStore> {
    const pool = new pg.Pool({ connectionString: url, max: 4, application_name: 'performer_control' });
    pool.on('error', (err) => log.warn({ err: withoutPoolClient(err) }, 'idle control-plane client failed'));
    await runMigrations(pool, CONTROL_TARGET, controlMigrations, (m) => log.info(m));
    return new TenantStore(pool, box);
  }

  /**
   * The control database and the secret box, for modules that keep their own control-plane tables (deployed
   * functions): what they store is served by every node. Closed with the store.
   */
  get control(): ControlPlane {
    return { pool: this.pool, box: this.box };
  }

  async list(): Promise<TenantRecord[]> {
    const { rows } = await this.pool.query<TenantRow>(`${SELECT} ORDER BY t.inserted_at, t.external_id`);
    return rows.map((r) => this.fromRow(r));
  }

  async get(externalId: string): Promise<TenantRecord | null> {
    const { rows } = await this.pool.query<TenantRow>(`${SELECT} WHERE t.external_id = $1`, [externalId]);
    return rows[0] ? this.fromRow(rows[0]) : null;
  }

  /** Inserts or replaces a tenant and its extensions in one transaction; returns it as stored. */
  async save(record: TenantRecord): Promise<TenantRecord> {
    const loan = guardLent(await this.pool.connect());
    const client = loan.client;
    try {
      await client.query('BEGIN');
      const l = record.limits;
      await client.query(
        `INSERT INTO _performer.tenants (external_id, name, jwt_secret, jwt_jwks, max_concurrent_users, max_events_per_second,
           max_joins_per_second, max_channels_per_client, max_bytes_per_second, max_payload_size_in_kb,
           max_presence_events_per_second, max_client_presence_events_per_window, client_presence_window_ms,
           presence_enabled, private_only, suspend, auth_settings)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)
         ON CONFLICT (external_id) DO UPDATE SET name = EXCLUDED.name, jwt_secret = EXCLUDED.jwt_secret,
           jwt_jwks = EXCLUDED.jwt_jwks, max_concurrent_users = EXCLUDED.max_concurrent_users,
           max_events_per_second = EXCLUDED.max_events_per_second, max_joins_per_second = EXCLUDED.max_joins_per_second,
           max_channels_per_client = EXCLUDED.max_channels_per_client, max_bytes_per_second = EXCLUDED.max_bytes_per_second,
           max_payload_size_in_kb = EXCLUDED.max_payload_size_in_kb,
           max_presence_events_per_second = EXCLUDED.max_presence_events_per_second,
           max_client_presence_events_per_window = EXCLUDED.max_client_presence_events_per_window,
           client_presence_window_ms = EXCLUDED.client_presence_window_ms, presence_enabled = EXCLUDED.presence_enabled,
           private_only = EXCLUDED.private_only, suspend = EXCLUDED.suspend, auth_settings = EXCLUDED.auth_settings,
           updated_at = now() AT TIME ZONE 'UTC'`,
        [
          record.externalId, record.name, record.jwtSecret === null ? null : this.box.encrypt(record.jwtSecret),
          record.jwtJwks, l.maxConcurrentUsers, l.maxEventsPerSecond, l.maxJoinsPerSecond, l.maxChannelsPerClient,
          l.maxBytesPerSecond, l.maxPayloadSizeInKb, l.maxPresenceEventsPerSecond, record.maxClientPresenceEventsPerWindow,
          record.clientPresenceWindowMs, record.presenceEnabled, record.privateOnly, record.suspend, record.authSettings,
        ],
      );
      await client.query('DELETE FROM _performer.extensions WHERE tenant_external_id = $1', [record.externalId]);
      for (const ext of record.extensions) {
        await client.query(
          'INSERT INTO _performer.extensions (tenant_external_id, type, settings, inserted_at) VALUES ($1, $2, $3, $4)',
          [record.externalId, ext.type, this.seal(ext.settings), ext.insertedAt],
        );
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      loan.release();
    }
    return (await this.get(record.externalId)) as TenantRecord;
  }

  async delete(externalId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('DELETE FROM _performer.tenants WHERE external_id = $1', [externalId]);
    return (rowCount ?? 0) > 0;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private seal(settings: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = { ...settings };
    for (const key of ENCRYPTED_SETTINGS) {
      if (out[key] !== undefined && out[key] !== null) out[key] = this.box.encrypt(String(out[key]));
    }
    return out;
  }

  private unseal(sealed: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = { ...sealed };
    for (const key of ENCRYPTED_SETTINGS) {
      if (typeof out[key] === 'string') out[key] = this.box.decrypt(out[key] as string);
    }
    return out;
  }

  private fromRow(r: TenantRow): TenantRecord {
    const extensions: ExtensionRecord[] = (r.extensions ?? []).map((e) => ({
      type: e.type,
      settings: this.unseal(e.settings),
      sealed: e.settings,
      insertedAt: e.inserted_at,
      updatedAt: e.updated_at,
    }));
    return {
      id: r.id,
      externalId: r.external_id,
      name: r.name,
      jwtSecret: r.jwt_secret === null ? null : this.box.decrypt(r.jwt_secret),
      jwtJwks: r.jwt_jwks,
      limits: {
        maxConcurrentUsers: r.max_concurrent_users,
        maxEventsPerSecond: r.max_events_per_second,
        maxJoinsPerSecond: r.max_joins_per_second,
        maxChannelsPerClient: r.max_channels_per_client,
        maxBytesPerSecond: Number(r.max_bytes_per_second),
        maxPayloadSizeInKb: r.max_payload_size_in_kb,
        maxPresenceEventsPerSecond: r.max_presence_events_per_second,
      },
      maxClientPresenceEventsPerWindow: r.max_client_presence_events_per_window,
      clientPresenceWindowMs: r.client_presence_window_ms,
      presenceEnabled: r.presence_enabled,
      privateOnly: r.private_only,
      suspend: r.suspend,
      authSettings: r.auth_settings ?? null,
      insertedAt: r.inserted_at,
      updatedAt: r.updated_at,
      extensions,
    };
  }
}

const SELECT = `
  SELECT t.id, t.external_id, t.name, t.jwt_secret, t.jwt_jwks, t.max_concurrent_users, t.max_events_per_second,
         t.max_joins_per_second, t.max_channels_per_client, t.max_bytes_per_second, t.max_payload_size_in_kb,
         t.max_presence_events_per_second, t.max_client_presence_events_per_window, t.client_presence_window_ms,
         t.presence_enabled, t.private_only, t.suspend, t.auth_settings,
         to_char(t.inserted_at, 'YYYY-MM-DD"T"HH24:MI:SS') AS inserted_at,
         to_char(t.updated_at, 'YYYY-MM-DD"T"HH24:MI:SS') AS updated_at,
         (SELECT json_agg(json_build_object('type', e.type, 'settings', e.settings,
                   'inserted_at', to_char(e.inserted_at, 'YYYY-MM-DD"T"HH24:MI:SS'),
                   'updated_at', to_char(e.updated_at, 'YYYY-MM-DD"T"HH24:MI:SS')) ORDER BY e.type)
            FROM _performer.extensions e WHERE e.tenant_external_id = t.external_id) AS extensions
    FROM _performer.tenants t`;

/** The tenant as the management API shows it: no jwt_secret, db fields as ciphertext, never db_password. */
export function renderTenant(record: TenantRecord): Record<string, unknown> {
  const l = record.limits;
  return {
    id: record.id,
    external_id: record.externalId,
    name: record.name,
    max_concurrent_users: l.maxConcurrentUsers,
    max_channels_per_client: l.maxChannelsPerClient,
    max_events_per_second: l.maxEventsPerSecond,
    max_joins_per_second: l.maxJoinsPerSecond,
    max_bytes_per_second: l.maxBytesPerSecond,
    max_payload_size_in_kb: l.maxPayloadSizeInKb,
    max_presence_events_per_second: l.maxPresenceEventsPerSecond,
    inserted_at: record.insertedAt,
    extensions: record.extensions.map((e) => {
      const { db_password: _hidden, ...shown } = e.sealed ?? {};
      return { type: e.type, inserted_at: e.insertedAt, updated_at: e.updatedAt, settings: shown };
    }),
    private_only: record.privateOnly,
    suspend: record.suspend,
    max_client_presence_events_per_window: record.maxClientPresenceEventsPerWindow,
    client_presence_window_ms: record.clientPresenceWindowMs,
    presence_enabled: record.presenceEnabled,
    auth_settings: record.authSettings,
  };
}
