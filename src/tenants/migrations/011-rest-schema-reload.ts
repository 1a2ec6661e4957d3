// PostgREST reloads its schema cache on `NOTIFY pgrst, 'reload schema'`; Supabase installs event triggers that send
// it after every DDL command and DROP, so a table created a moment ago is served by /rest/v1 without a restart.
// Creating an event trigger needs a superuser: a tenant database user who is not one keeps a working API, and its
// schema changes reach the REST cache by a manual NOTIFY (the DO block skips the triggers with a notice).
export const sql = /* sql */ `
CREATE OR REPLACE FUNCTION realtime.performer_notify_schema_reload() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  NOTIFY pgrst, 'reload schema';
END
$fn$;

DO $triggers$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'performer_rest_ddl_reload') THEN
    CREATE EVENT TRIGGER performer_rest_ddl_reload ON ddl_command_end
      EXECUTE FUNCTION realtime.performer_notify_schema_reload();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'performer_rest_drop_reload') THEN
    CREATE EVENT TRIGGER performer_rest_drop_reload ON sql_drop
      EXECUTE FUNCTION realtime.performer_notify_schema_reload();
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'no event trigger for REST schema reloads (needs a superuser): %', SQLERRM;
END
$triggers$;
`;
