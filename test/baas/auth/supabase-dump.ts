/**
 * What `pg_dump --data-only --column-inserts --schema=auth` of a Supabase project writes for one confirmed e-mail user
 * (GoTrue stores `$2a$` bcrypt hashes, cost 10), with an identity, a session and its refresh token, an audit entry and
 * upstream's migration ledger. Restoring it must work, and the user must then sign in with its password.
 */
export const DUMP_USER_ID = '5b0a5d3e-46c3-4b5c-9f2e-4f4c1c5b7a10';
export const DUMP_EMAIL = 'imported@example.com';
export const DUMP_PASSWORD = 'imported-password';

export const SUPABASE_AUTH_DUMP = `
SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);

INSERT INTO auth.audit_log_entries (instance_id, id, payload, created_at, ip_address) VALUES ('00000000-0000-0000-0000-000000000000', 'b7b9c2a6-3f0e-4bb5-8f60-1f0b1a7c2d11', '{"action":"user_signedup","actor_id":"${DUMP_USER_ID}","actor_username":"${DUMP_EMAIL}","actor_via_sso":false,"log_type":"team","traits":{"provider":"email"}}', '2024-03-01 10:00:00.12345+00', '');

INSERT INTO auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at, confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at, email_change_token_new, email_change, email_change_sent_at, last_sign_in_at, raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone, phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at, email_change_token_current, email_change_confirm_status, banned_until, reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous) VALUES ('00000000-0000-0000-0000-000000000000', '${DUMP_USER_ID}', 'authenticated', 'authenticated', '${DUMP_EMAIL}', '$2a$10$qdcLWaSnsfMkE8CcqaO3uO/S8Tm1fwByQ8PIiGYq/720AxuXEUTqy', '2024-03-01 10:00:00.2+00', NULL, '', NULL, '', NULL, '', '', NULL, '2024-03-02 09:00:00+00', '{"provider": "email", "providers": ["email"]}', '{"sub": "${DUMP_USER_ID}", "name": "Imported", "email": "${DUMP_EMAIL}", "email_verified": true, "phone_verified": false}', NULL, '2024-03-01 10:00:00.1+00', '2024-03-02 09:00:00+00', NULL, NULL, '', '', NULL, '', 0, NULL, '', NULL, false, NULL, false);

INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id) VALUES ('${DUMP_USER_ID}', '${DUMP_USER_ID}', '{"sub": "${DUMP_USER_ID}", "email": "${DUMP_EMAIL}", "email_verified": false, "phone_verified": false}', 'email', '2024-03-01 10:00:00.1+00', '2024-03-01 10:00:00.1+00', '2024-03-01 10:00:00.1+00', 'c2c0e3a4-8d7b-4e29-a3c5-6b1f0e9d4c22');

INSERT INTO auth.sessions (id, user_id, created_at, updated_at, factor_id, aal, not_after, refreshed_at, user_agent, ip, tag, oauth_client_id, refresh_token_hmac_key, refresh_token_counter, scopes) VALUES ('d3d1f4b5-9e8c-4f3a-b4d6-7c2a1f0e5d33', '${DUMP_USER_ID}', '2024-03-02 09:00:00+00', '2024-03-02 09:00:00+00', NULL, 'aal1', NULL, NULL, 'node', '10.0.0.1', NULL, NULL, NULL, NULL, NULL);

INSERT INTO auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id) VALUES ('d3d1f4b5-9e8c-4f3a-b4d6-7c2a1f0e5d33', '2024-03-02 09:00:00+00', '2024-03-02 09:00:00+00', 'password', 'e4e2a5c6-af9d-4a4b-85e7-8d3b2a1f6e44');

INSERT INTO auth.refresh_tokens (instance_id, id, token, user_id, revoked, created_at, updated_at, parent, session_id) VALUES ('00000000-0000-0000-0000-000000000000', 41, 'dumpedrefreshtk1', '${DUMP_USER_ID}', false, '2024-03-02 09:00:00+00', '2024-03-02 09:00:00+00', NULL, 'd3d1f4b5-9e8c-4f3a-b4d6-7c2a1f0e5d33');

INSERT INTO auth.one_time_tokens (id, user_id, token_type, token_hash, relates_to, created_at, updated_at) VALUES ('f5f3b6d7-b0ae-4b5c-96f8-9e4c3b2a7f55', '${DUMP_USER_ID}', 'recovery_token', 'aa11bb22cc33', '${DUMP_EMAIL}', '2024-03-02 09:00:00', '2024-03-02 09:00:00');

INSERT INTO auth.schema_migrations (version) VALUES ('20171026211738'), ('20240427152123'), ('20251111201300');

SELECT pg_catalog.setval('auth.refresh_tokens_id_seq', 41, true);
`;
