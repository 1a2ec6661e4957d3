// realtime.messages (spec §4.6). Payload rule: at most one of payload / binary_payload. Sends always set one,
// but authorization probe rows (spec §4.8) carry neither, so "exactly one" would break private-channel joins.
export const sql = /* sql */ `
CREATE TABLE IF NOT EXISTS realtime.messages (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  topic text NOT NULL,
  extension text NOT NULL,
  event text,
  payload jsonb,
  binary_payload bytea,
  private boolean DEFAULT false,
  inserted_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT messages_pkey PRIMARY KEY (id, inserted_at),
  CONSTRAINT messages_payload_exclusive CHECK (payload IS NULL OR binary_payload IS NULL)
) PARTITION BY RANGE (inserted_at);

CREATE INDEX IF NOT EXISTS messages_inserted_at_topic_index
  ON realtime.messages (inserted_at DESC, topic)
  WHERE extension = 'broadcast' AND private IS TRUE;

ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;

GRANT SELECT, INSERT, UPDATE ON realtime.messages TO anon, authenticated, service_role;

-- Ownership needs membership in the role (or superuser); a restricted migrator keeps ownership itself.
DO $owner$
BEGIN
  ALTER TABLE realtime.messages OWNER TO supabase_realtime_admin;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'realtime.messages stays owned by %', current_user;
END
$owner$;

-- Daily partitions messages_YYYY_MM_DD covering [day, day + 1). Safe to call concurrently.
CREATE OR REPLACE FUNCTION realtime.create_messages_partitions(from_date date, to_date date)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
  day date;
  partition_name text;
  created integer := 0;
BEGIN
  FOR day IN SELECT d::date FROM generate_series(from_date, to_date, interval '1 day') AS d LOOP
    partition_name := 'messages_' || to_char(day, 'YYYY_MM_DD');
    -- Checking first avoids the parent's exclusive lock when the partition is already there.
    CONTINUE WHEN to_regclass(format('realtime.%I', partition_name)) IS NOT NULL;
    BEGIN
      EXECUTE format(
        'CREATE TABLE realtime.%I PARTITION OF realtime.messages FOR VALUES FROM (%L) TO (%L)',
        partition_name, day::timestamp, (day + 1)::timestamp
      );
      created := created + 1;
    EXCEPTION WHEN duplicate_table OR unique_violation THEN
      NULL;
    END;
  END LOOP;
  RETURN created;
END
$fn$;

-- Drops daily partitions whose whole range ended more than keep_hours ago; returns how many.
CREATE OR REPLACE FUNCTION realtime.drop_old_messages_partitions(keep_hours integer)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
  part record;
  dropped integer := 0;
BEGIN
  FOR part IN
    SELECT c.relname
      FROM pg_catalog.pg_inherits i
      JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'realtime.messages'::regclass
       AND c.relname ~ '^messages_[0-9]{4}_[0-9]{2}_[0-9]{2}$'
       AND to_date(substr(c.relname, 10), 'YYYY_MM_DD') + 1
           <= (now() AT TIME ZONE 'UTC') - make_interval(hours => keep_hours)
  LOOP
    EXECUTE format('DROP TABLE IF EXISTS realtime.%I', part.relname);
    dropped := dropped + 1;
  END LOOP;
  RETURN dropped;
END
$fn$;

SELECT realtime.create_messages_partitions(
  (now() AT TIME ZONE 'UTC')::date - 1,
  (now() AT TIME ZONE 'UTC')::date + 3
);
`;
