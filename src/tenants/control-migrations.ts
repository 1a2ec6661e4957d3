import type { TenantMigration } from './migrations/index.js';

/**
 * The control plane: tenants and their extensions, in schema `_performer` of the control database.
 * Secret columns hold SecretBox ciphertext, never plain text.
 */
export const controlMigrations: readonly TenantMigration[] = [
  {
    version: 1,
    name: 'tenants',
    sql: `
      CREATE TABLE _performer.tenants (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        external_id text NOT NULL UNIQUE,
        name text NOT NULL,
        jwt_secret text,
        jwt_jwks jsonb,
        max_concurrent_users integer NOT NULL,
        max_events_per_second integer NOT NULL,
        max_joins_per_second integer NOT NULL,
        max_channels_per_client integer NOT NULL,
        max_bytes_per_second integer NOT NULL,
        max_payload_size_in_kb integer NOT NULL,
        max_presence_events_per_second integer NOT NULL,
        max_client_presence_events_per_window integer,
        client_presence_window_ms integer,
        presence_enabled boolean NOT NULL DEFAULT false,
        private_only boolean NOT NULL DEFAULT false,
        suspend boolean NOT NULL DEFAULT false,
        inserted_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
        updated_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
      );
      CREATE TABLE _performer.extensions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_external_id text NOT NULL REFERENCES _performer.tenants (external_id) ON DELETE CASCADE ON UPDATE CASCADE,
        type text NOT NULL,
        settings jsonb NOT NULL,
        inserted_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
        updated_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
        UNIQUE (tenant_external_id, type)
      );
    `,
  },
  {
    // Bytes per second outgrow a 32-bit integer quickly (2 GB/s).
    version: 2,
    name: 'bytes_limit_bigint',
    sql: 'ALTER TABLE _performer.tenants ALTER COLUMN max_bytes_per_second TYPE bigint',
  },
  {
    // The auth module's per-tenant settings (site URL, token lifetime, reuse interval, password length, autoconfirm,
    // anonymous sign-ins); NULL = the server's AUTH_* defaults.
    version: 6,
    name: 'tenant_auth_settings',
    sql: 'ALTER TABLE _performer.tenants ADD COLUMN IF NOT EXISTS auth_settings jsonb',
  },
];
