// PostgREST logs in as `authenticator` and switches to the JWT's role with SET ROLE, so a token can only name a
// role authenticator belongs to (anon, authenticated, service_role; on Supabase also any role a user grants it).
// Performer logs in as the tenant's db_user, often a superuser who may take ANY role: a token claiming `postgres`
// would get it. So the role `authenticator` is the list (as on Supabase: GRANT <role> TO authenticator adds one),
// and /rest/v1 switches through realtime.performer_api_role(), which refuses what authenticator could not take,
// with the errors SET ROLE gives: 22023 for a role that does not exist, 42501 for one that is not granted. The
// three API roles are always allowed, so a db_user that may not create or grant roles keeps a working API.
//
// An invoker function on purpose (SET ROLE is refused in SECURITY DEFINER functions); the check is live, so a
// REVOKE applies to the next request. EXECUTE is revoked from PUBLIC: only the engine's login role calls it.
export const sql = /* sql */ `
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticator') THEN
    BEGIN
      CREATE ROLE authenticator NOLOGIN NOINHERIT;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
  BEGIN
    GRANT anon, authenticated, service_role TO authenticator;
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'could not grant the API roles to authenticator: %', SQLERRM;
  END;
END
$roles$;

CREATE OR REPLACE FUNCTION realtime.performer_api_role(wanted text) RETURNS text
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = wanted) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('role "%s" does not exist', wanted);
  END IF;
  -- The three API roles always (even where the GRANT above was not allowed); any other only through authenticator.
  IF wanted NOT IN ('anon', 'authenticated', 'service_role') AND NOT coalesce(
       (SELECT pg_catalog.pg_has_role(r.oid, wanted, 'MEMBER') FROM pg_catalog.pg_roles r WHERE r.rolname = 'authenticator'), false) THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('permission denied to set role "%s"', wanted);
  END IF;
  RETURN wanted;
END
$fn$;

REVOKE ALL ON FUNCTION realtime.performer_api_role(text) FROM PUBLIC;
`;
