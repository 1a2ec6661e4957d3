// Postgres Changes subscribers, persisted so that a restarted node knows who will rejoin and holds their changes
// (Performer's own table: upstream's realtime.subscription has a different shape on Supabase databases).
export const sql = /* sql */ `
CREATE TABLE IF NOT EXISTS realtime.performer_changes_subscribers (
  instance uuid PRIMARY KEY,
  topic text NOT NULL,
  bindings jsonb NOT NULL,
  claims jsonb NOT NULL,
  sub text,
  node text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
`;
