// The rest of GoTrue's core tables, as supabase/auth's migrations leave them: identities, sessions and their
// refresh tokens, the audit trail, and the bookkeeping tables (schema_migrations, instances) that a data-only dump
// of a Supabase `auth` schema also writes into. Like migration 12, a table that already exists is left as it is,
// so a Supabase database keeps its own (owned by supabase_auth_admin). No grants to the API roles: as upstream.
export const sql = /* sql */ `
DO $types$
BEGIN
  IF to_regtype('auth.aal_level') IS NULL THEN
    CREATE TYPE auth.aal_level AS ENUM ('aal1', 'aal2', 'aal3');
  END IF;
  IF to_regtype('auth.factor_type') IS NULL THEN
    CREATE TYPE auth.factor_type AS ENUM ('totp', 'webauthn', 'phone');
  END IF;
  IF to_regtype('auth.factor_status') IS NULL THEN
    CREATE TYPE auth.factor_status AS ENUM ('unverified', 'verified');
  END IF;
  IF to_regtype('auth.code_challenge_method') IS NULL THEN
    CREATE TYPE auth.code_challenge_method AS ENUM ('s256', 'plain');
  END IF;
  IF to_regtype('auth.one_time_token_type') IS NULL THEN
    CREATE TYPE auth.one_time_token_type AS ENUM (
      'confirmation_token', 'reauthentication_token', 'recovery_token',
      'email_change_token_new', 'email_change_token_current', 'phone_change_token');
  END IF;
END
$types$;

DO $tables$
BEGIN
  IF to_regclass('auth.identities') IS NULL THEN
    CREATE TABLE auth.identities (
      provider_id text NOT NULL,
      user_id uuid NOT NULL,
      identity_data jsonb NOT NULL,
      provider text NOT NULL,
      last_sign_in_at timestamptz NULL,
      created_at timestamptz NULL,
      updated_at timestamptz NULL,
      email text GENERATED ALWAYS AS (lower(identity_data ->> 'email')) STORED,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      CONSTRAINT identities_pkey PRIMARY KEY (id),
      CONSTRAINT identities_provider_id_provider_unique UNIQUE (provider_id, provider),
      CONSTRAINT identities_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE
    );
    COMMENT ON TABLE auth.identities IS 'Auth: Stores identities associated to a user.';
    CREATE INDEX identities_user_id_idx ON auth.identities USING btree (user_id);
    CREATE INDEX identities_email_idx ON auth.identities (email text_pattern_ops);
    ALTER TABLE auth.identities ENABLE ROW LEVEL SECURITY;
  END IF;

  IF to_regclass('auth.sessions') IS NULL THEN
    CREATE TABLE auth.sessions (
      id uuid NOT NULL,
      user_id uuid NOT NULL,
      created_at timestamptz NULL,
      updated_at timestamptz NULL,
      factor_id uuid NULL,
      aal auth.aal_level NULL,
      not_after timestamptz NULL,
      refreshed_at timestamp without time zone NULL,
      user_agent text NULL,
      ip inet NULL,
      tag text NULL,
      oauth_client_id uuid NULL,
      refresh_token_hmac_key text NULL,
      refresh_token_counter bigint NULL,
      scopes text NULL,
      CONSTRAINT sessions_pkey PRIMARY KEY (id),
      CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
      CONSTRAINT sessions_scopes_length CHECK (char_length(scopes) <= 4096)
    );
    COMMENT ON TABLE auth.sessions IS 'Auth: Stores session data associated to a user.';
    COMMENT ON COLUMN auth.sessions.not_after IS 'Auth: Not after is a nullable column that contains a timestamp after which the session should be regarded as expired.';
    CREATE INDEX user_id_created_at_idx ON auth.sessions (user_id, created_at);
    CREATE INDEX sessions_user_id_idx ON auth.sessions (user_id);
    CREATE INDEX sessions_not_after_idx ON auth.sessions (not_after DESC);
    CREATE INDEX sessions_oauth_client_id_idx ON auth.sessions (oauth_client_id);
    ALTER TABLE auth.sessions ENABLE ROW LEVEL SECURITY;
  END IF;

  IF to_regclass('auth.refresh_tokens') IS NULL THEN
    CREATE TABLE auth.refresh_tokens (
      instance_id uuid NULL,
      id bigserial NOT NULL,
      "token" varchar(255) NULL,
      user_id varchar(255) NULL,
      revoked bool NULL,
      created_at timestamptz NULL,
      updated_at timestamptz NULL,
      parent varchar(255) NULL,
      session_id uuid NULL,
      CONSTRAINT refresh_tokens_pkey PRIMARY KEY (id),
      CONSTRAINT refresh_tokens_token_unique UNIQUE ("token"),
      CONSTRAINT refresh_tokens_session_id_fkey FOREIGN KEY (session_id) REFERENCES auth.sessions (id) ON DELETE CASCADE
    );
    COMMENT ON TABLE auth.refresh_tokens IS 'Auth: Store of tokens used to refresh JWT tokens once they expire.';
    CREATE INDEX refresh_tokens_instance_id_idx ON auth.refresh_tokens USING btree (instance_id);
    CREATE INDEX refresh_tokens_instance_id_user_id_idx ON auth.refresh_tokens USING btree (instance_id, user_id);
    CREATE INDEX refresh_tokens_parent_idx ON auth.refresh_tokens USING btree (parent);
    CREATE INDEX refresh_tokens_session_id_revoked_idx ON auth.refresh_tokens (session_id, revoked);
    CREATE INDEX refresh_tokens_updated_at_idx ON auth.refresh_tokens (updated_at DESC);
    ALTER TABLE auth.refresh_tokens ENABLE ROW LEVEL SECURITY;
  END IF;

  IF to_regclass('auth.audit_log_entries') IS NULL THEN
    CREATE TABLE auth.audit_log_entries (
      instance_id uuid NULL,
      id uuid NOT NULL,
      payload json NULL,
      created_at timestamptz NULL,
      ip_address varchar(64) NOT NULL DEFAULT '',
      CONSTRAINT audit_log_entries_pkey PRIMARY KEY (id)
    );
    COMMENT ON TABLE auth.audit_log_entries IS 'Auth: Audit trail for user actions.';
    CREATE INDEX audit_logs_instance_id_idx ON auth.audit_log_entries USING btree (instance_id);
    ALTER TABLE auth.audit_log_entries ENABLE ROW LEVEL SECURITY;
  END IF;

  -- GoTrue's own migration ledger: a restored dump lists upstream's versions here; Performer records its own in
  -- realtime.schema_migrations and never reads this one.
  IF to_regclass('auth.schema_migrations') IS NULL THEN
    CREATE TABLE auth.schema_migrations (
      "version" varchar(255) NOT NULL,
      CONSTRAINT schema_migrations_pkey PRIMARY KEY ("version")
    );
    COMMENT ON TABLE auth.schema_migrations IS 'Auth: Manages updates to the auth system.';
    ALTER TABLE auth.schema_migrations ENABLE ROW LEVEL SECURITY;
  END IF;

  IF to_regclass('auth.instances') IS NULL THEN
    CREATE TABLE auth.instances (
      id uuid NOT NULL,
      uuid uuid NULL,
      raw_base_config text NULL,
      created_at timestamptz NULL,
      updated_at timestamptz NULL,
      CONSTRAINT instances_pkey PRIMARY KEY (id)
    );
    COMMENT ON TABLE auth.instances IS 'Auth: Manages users across multiple sites.';
    ALTER TABLE auth.instances ENABLE ROW LEVEL SECURITY;
  END IF;
END
$tables$;
`;
