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
    // Deployed functions (issue 19): every node of a cluster serves what is here. `id` of a version is global, so a
    // node caches compiled code by it; `secrets` is SecretBox ciphertext of a JSON object.
    version: 4,
    name: 'functions',
    sql: `
      CREATE TABLE _performer.functions (
        tenant_external_id text NOT NULL REFERENCES _performer.tenants (external_id) ON DELETE CASCADE ON UPDATE CASCADE,
        name text NOT NULL,
        current_version integer NOT NULL,
        verify_jwt boolean NOT NULL DEFAULT true,
        secrets text,
        inserted_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
        updated_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
        PRIMARY KEY (tenant_external_id, name)
      );
      CREATE TABLE _performer.function_versions (
        id bigserial PRIMARY KEY,
        tenant_external_id text NOT NULL,
        name text NOT NULL,
        version integer NOT NULL,
        kind text NOT NULL CHECK (kind IN ('wasm', 'js')),
        source_type text NOT NULL,
        code bytea NOT NULL,
        sha256 text NOT NULL,
        verify_jwt boolean NOT NULL,
        timeout_ms integer,
        memory_mb integer,
        inserted_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
        UNIQUE (tenant_external_id, name, version),
        FOREIGN KEY (tenant_external_id, name) REFERENCES _performer.functions (tenant_external_id, name)
          ON DELETE CASCADE ON UPDATE CASCADE
      );
    `,
  },
  {
    // Event triggers of functions and their deliveries: (trigger, event id) is unique, so an event found by several
    // nodes (a cron tick) is delivered by the one that recorded it first, and a retry is recognised.
    version: 5,
    name: 'function_triggers',
    sql: `
      CREATE TABLE _performer.function_triggers (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_external_id text NOT NULL,
        function_name text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('cron', 'database', 'auth', 'storage')),
        config jsonb NOT NULL,
        inserted_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
        FOREIGN KEY (tenant_external_id, function_name) REFERENCES _performer.functions (tenant_external_id, name)
          ON DELETE CASCADE ON UPDATE CASCADE
      );
      CREATE INDEX function_triggers_tenant ON _performer.function_triggers (tenant_external_id, kind);
      CREATE TABLE _performer.function_deliveries (
        trigger_id uuid NOT NULL REFERENCES _performer.function_triggers (id) ON DELETE CASCADE,
        event_id text NOT NULL,
        payload jsonb NOT NULL,
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts integer NOT NULL DEFAULT 0,
        last_status integer,
        last_error text,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        inserted_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (trigger_id, event_id)
      );
      CREATE INDEX function_deliveries_due ON _performer.function_deliveries (next_attempt_at) WHERE state = 'pending';
    `,
  },
  {
    // The auth module's per-tenant settings (site URL, token lifetime, reuse interval, password length, autoconfirm,
    // anonymous sign-ins); NULL = the server's AUTH_* defaults.
    version: 6,
    name: 'tenant_auth_settings',
    sql: 'ALTER TABLE _performer.tenants ADD COLUMN IF NOT EXISTS auth_settings jsonb',
  },
];
