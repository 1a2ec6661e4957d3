// Multi-factor authentication (factors, challenges, the AMR claims of a session), one-time tokens (hashed
// confirmation / recovery / e-mail change tokens) and PKCE flow state, as supabase/auth's migrations leave them.
// Existing tables are left as they are (see migration 12).
export const sql = /* sql */ `
DO $tables$
BEGIN
  IF to_regclass('auth.mfa_factors') IS NULL THEN
    CREATE TABLE auth.mfa_factors (
      id uuid NOT NULL,
      user_id uuid NOT NULL,
      friendly_name text NULL,
      factor_type auth.factor_type NOT NULL,
      status auth.factor_status NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      secret text NULL,
      phone text NULL DEFAULT NULL,
      last_challenged_at timestamptz NULL DEFAULT NULL,
      web_authn_credential jsonb NULL,
      web_authn_aaguid uuid NULL,
      last_webauthn_challenge_data jsonb NULL,
      CONSTRAINT mfa_factors_pkey PRIMARY KEY (id),
      CONSTRAINT mfa_factors_last_challenged_at_key UNIQUE (last_challenged_at),
      CONSTRAINT mfa_factors_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE
    );
    COMMENT ON TABLE auth.mfa_factors IS 'auth: stores metadata about factors';
    CREATE UNIQUE INDEX mfa_factors_user_friendly_name_unique ON auth.mfa_factors (friendly_name, user_id) WHERE trim(friendly_name) <> '';
    CREATE INDEX factor_id_created_at_idx ON auth.mfa_factors (user_id, created_at);
    CREATE INDEX mfa_factors_user_id_idx ON auth.mfa_factors (user_id);
    CREATE UNIQUE INDEX unique_phone_factor_per_user ON auth.mfa_factors (user_id, phone);
    ALTER TABLE auth.mfa_factors ENABLE ROW LEVEL SECURITY;
  END IF;

  IF to_regclass('auth.mfa_challenges') IS NULL THEN
    CREATE TABLE auth.mfa_challenges (
      id uuid NOT NULL,
      factor_id uuid NOT NULL,
      created_at timestamptz NOT NULL,
      verified_at timestamptz NULL,
      ip_address inet NOT NULL,
      otp_code text NULL,
      web_authn_session_data jsonb NULL,
      CONSTRAINT mfa_challenges_pkey PRIMARY KEY (id),
      CONSTRAINT mfa_challenges_auth_factor_id_fkey FOREIGN KEY (factor_id) REFERENCES auth.mfa_factors (id) ON DELETE CASCADE
    );
    COMMENT ON TABLE auth.mfa_challenges IS 'auth: stores metadata about challenge requests made';
    CREATE INDEX mfa_challenge_created_at_idx ON auth.mfa_challenges (created_at DESC);
    ALTER TABLE auth.mfa_challenges ENABLE ROW LEVEL SECURITY;
  END IF;

  IF to_regclass('auth.mfa_amr_claims') IS NULL THEN
    CREATE TABLE auth.mfa_amr_claims (
      session_id uuid NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      authentication_method text NOT NULL,
      id uuid NOT NULL,
      CONSTRAINT amr_id_pk PRIMARY KEY (id),
      CONSTRAINT mfa_amr_claims_session_id_authentication_method_pkey UNIQUE (session_id, authentication_method),
      CONSTRAINT mfa_amr_claims_session_id_fkey FOREIGN KEY (session_id) REFERENCES auth.sessions (id) ON DELETE CASCADE
    );
    COMMENT ON TABLE auth.mfa_amr_claims IS 'auth: stores authenticator method reference claims for multi factor authentication';
    ALTER TABLE auth.mfa_amr_claims ENABLE ROW LEVEL SECURITY;
  END IF;

  IF to_regclass('auth.one_time_tokens') IS NULL THEN
    CREATE TABLE auth.one_time_tokens (
      id uuid PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES auth.users ON DELETE CASCADE,
      token_type auth.one_time_token_type NOT NULL,
      token_hash text NOT NULL,
      relates_to text NOT NULL,
      created_at timestamp without time zone NOT NULL DEFAULT now(),
      updated_at timestamp without time zone NOT NULL DEFAULT now(),
      CHECK (char_length(token_hash) > 0)
    );
    CREATE INDEX one_time_tokens_token_hash_hash_idx ON auth.one_time_tokens USING hash (token_hash);
    CREATE INDEX one_time_tokens_relates_to_hash_idx ON auth.one_time_tokens USING hash (relates_to);
    CREATE UNIQUE INDEX one_time_tokens_user_id_token_type_key ON auth.one_time_tokens (user_id, token_type);
    ALTER TABLE auth.one_time_tokens ENABLE ROW LEVEL SECURITY;
  END IF;

  IF to_regclass('auth.flow_state') IS NULL THEN
    CREATE TABLE auth.flow_state (
      id uuid PRIMARY KEY,
      user_id uuid NULL,
      auth_code text NULL,
      code_challenge_method auth.code_challenge_method NULL,
      code_challenge text NULL,
      provider_type text NOT NULL,
      provider_access_token text NULL,
      provider_refresh_token text NULL,
      created_at timestamptz NULL,
      updated_at timestamptz NULL,
      authentication_method text NOT NULL,
      auth_code_issued_at timestamptz NULL,
      invite_token text NULL,
      referrer text NULL,
      oauth_client_state_id uuid NULL,
      linking_target_id uuid NULL,
      email_optional boolean NOT NULL DEFAULT false
    );
    COMMENT ON TABLE auth.flow_state IS 'Stores metadata for all OAuth/SSO login flows';
    CREATE INDEX idx_auth_code ON auth.flow_state (auth_code);
    CREATE INDEX idx_user_id_auth_method ON auth.flow_state (user_id, authentication_method);
    CREATE INDEX flow_state_created_at_idx ON auth.flow_state (created_at DESC);
    ALTER TABLE auth.flow_state ENABLE ROW LEVEL SECURITY;
  END IF;
END
$tables$;
`;
