// Supabase's API roles reach what is created in schema public, as on a Supabase project (its initial schema sets
// the same default privileges): a new table is readable by anon and authenticated, RLS then narrows the rows.
// Without this, Postgres Changes on a new table answered "Error 401: Unauthorized" until the user granted it.
//
// Default privileges belong to the role that creates the objects: the migrating role (the tenant's db_user, who
// usually creates the tables too) and `postgres`, the usual owner, when the migrating role may act for it.
// Objects already in public get the same grants only if nobody ever granted or revoked anything on them (their
// ACL is still the default, NULL): a privilege a user set by hand is left as it is.
export const sql = /* sql */ `
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

DO $grants$
DECLARE
  creator text;
  kind text;
  obj record;
BEGIN
  FOR creator IN
    SELECT current_user::text
    UNION
    SELECT rolname::text FROM pg_catalog.pg_roles
     WHERE rolname = 'postgres' AND pg_catalog.pg_has_role(current_user, oid, 'MEMBER')
  LOOP
    FOREACH kind IN ARRAY ARRAY['TABLES', 'SEQUENCES', 'FUNCTIONS'] LOOP
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT ALL ON %s TO anon, authenticated, service_role',
                     creator, kind);
    END LOOP;
  END LOOP;

  FOR obj IN
    SELECT c.relname AS name, CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'public'::regnamespace
       AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
       AND c.relacl IS NULL
       AND pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
  LOOP
    EXECUTE format('GRANT ALL ON %s public.%I TO anon, authenticated, service_role', obj.kind, obj.name);
  END LOOP;

  FOR obj IN
    SELECT p.proname AS name, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'public'::regnamespace
       AND p.proacl IS NULL
       AND pg_catalog.pg_has_role(current_user, p.proowner, 'USAGE')
  LOOP
    EXECUTE format('GRANT ALL ON ROUTINE public.%I(%s) TO anon, authenticated, service_role', obj.name, obj.args);
  END LOOP;
END
$grants$;
`;
