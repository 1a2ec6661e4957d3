// Cluster ownership of a tenant's replication streams: the owner's fencing number (from its Redis lease) is kept
// here, beside the slot it guards. A stream claims the number on its replication connection before it starts:
// a stale (lower) number is refused, and a higher one ends the walsender of the owner it replaces, so a paused
// old owner can neither keep streaming nor confirm a position once a newer owner has claimed.
export const sql = /* sql */ `
CREATE TABLE IF NOT EXISTS realtime.performer_stream_fences (
  tenant text PRIMARY KEY,
  fence bigint NOT NULL,
  holder_pid integer,
  claimed_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON realtime.performer_stream_fences FROM PUBLIC;

CREATE OR REPLACE FUNCTION realtime.performer_claim_stream_fence(p_tenant text, p_fence bigint, p_slot text)
RETURNS void
LANGUAGE plpgsql
SET search_path = ''
AS $fn$
DECLARE
  current_fence bigint;
  previous_pid integer;
BEGIN
  INSERT INTO realtime.performer_stream_fences (tenant, fence, holder_pid)
  VALUES (p_tenant, p_fence, pg_catalog.pg_backend_pid())
  ON CONFLICT (tenant) DO NOTHING;
  IF NOT FOUND THEN
    SELECT f.fence, f.holder_pid INTO current_fence, previous_pid
      FROM realtime.performer_stream_fences f WHERE f.tenant = p_tenant FOR UPDATE;
    IF current_fence > p_fence THEN
      RAISE EXCEPTION 'stale fencing number % for tenant % (the owner holds %)', p_fence, p_tenant, current_fence
        USING ERRCODE = 'P0001', HINT = 'performer_fenced';
    END IF;
    UPDATE realtime.performer_stream_fences
       SET fence = p_fence, holder_pid = pg_catalog.pg_backend_pid(), claimed_at = now()
     WHERE tenant = p_tenant;
    -- The replaced owner's walsender (a pid of a backend that is still a walsender, never another session's), waited
    -- for: the slot is free once this returns.
    PERFORM pg_catalog.pg_terminate_backend(r.pid, 5000)
       FROM pg_catalog.pg_stat_replication r
      WHERE r.pid = previous_pid AND r.pid <> pg_catalog.pg_backend_pid();
  END IF;
  PERFORM pg_catalog.pg_terminate_backend(s.active_pid, 5000)
     FROM pg_catalog.pg_replication_slots s
    WHERE s.slot_name = p_slot AND s.active_pid IS NOT NULL AND s.active_pid <> pg_catalog.pg_backend_pid();
END
$fn$;
REVOKE ALL ON FUNCTION realtime.performer_claim_stream_fence(text, bigint, text) FROM PUBLIC;
`;
