// supabase_realtime: tables users enable for Postgres Changes (starts empty).
// supabase_realtime_messages_publication: Broadcast from Database; publish_via_partition_root makes rows
// inserted into daily partitions arrive as realtime.messages.
export const sql = /* sql */ `
DO $pub$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = 'supabase_realtime') THEN
    BEGIN
      CREATE PUBLICATION supabase_realtime;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = 'supabase_realtime_messages_publication') THEN
    BEGIN
      CREATE PUBLICATION supabase_realtime_messages_publication
        FOR TABLE realtime.messages
        WITH (publish_via_partition_root = true);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
END
$pub$;
`;
