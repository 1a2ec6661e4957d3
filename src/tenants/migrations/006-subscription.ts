// Persisted Postgres Changes subscriptions (spec §6.4), one row per (binding, matching table).
export const sql = /* sql */ `
CREATE TABLE IF NOT EXISTS realtime.subscription (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_id uuid NOT NULL,
  entity regclass NOT NULL,
  filters jsonb NOT NULL DEFAULT '[]'::jsonb,
  claims jsonb NOT NULL,
  claims_role text GENERATED ALWAYS AS (claims ->> 'role') STORED,
  created_at timestamp NOT NULL DEFAULT timezone('utc', now())
);

CREATE INDEX IF NOT EXISTS subscription_entity_idx ON realtime.subscription (entity);
CREATE INDEX IF NOT EXISTS subscription_subscription_id_idx ON realtime.subscription (subscription_id);
`;
