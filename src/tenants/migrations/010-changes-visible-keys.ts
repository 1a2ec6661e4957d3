// Postgres Changes under RLS: which rows of a batch each viewer may see, for every viewer in one call (one round
// trip instead of one transaction per viewer). Upstream's realtime.apply_rls loops over subscribers inside Postgres
// the same way, switching role and claims per subscriber.
//
// An invoker function on purpose: SET ROLE is refused inside SECURITY DEFINER functions, and the engine's
// connection role is what may assume the API roles. EXECUTE is revoked from PUBLIC: whoever runs it can act as any
// role its own login role belongs to (PostgREST's authenticator belongs to service_role), so only the migrating
// role (the engine's) keeps it; a viewer's role must in addition be one current_user belongs to.
//
// First, the batch's transactions must be visible to new snapshots (rows are looked up in the table): if not yet,
// the only row is viewer -2 and the caller asks again. Then per viewer (roles[i], claims[i], subs[i], subsets[i]):
// the settings PostgREST sets (request.jwt.claims, and claim.sub / claim.role of older versions), the role; the
// columns it may SELECT (once per role); and, when keys are given and it can read the primary key, which keys (all,
// or the 1-based positions listed in subsets[i], an int[] literal) name a row it can SELECT now. The lookup is
// prepared once per call and planned once per role, before any viewer's claims are set; the keys reach it through
// transaction-local settings, never spliced into SQL text. Callers sort viewers by role.
//
// Viewers whose answers cannot differ share one lookup: a role without row security on the table (BYPASSRLS,
// owner), or whose policies read none of the claims, is looked up once; policies that read only the sub claim
// (through a known auth.uid()) once per role and sub (realtime.performer_policy_reads tells which).
//
// Result: with keys, first a row for viewer -1 whose keys_found holds every key as the row text of its typed values
// (ROW(...)::text, made by this session); then per viewer (0-based): columns NULL = the role does not exist or may
// not be assumed (denied, like actAs); keys_found = the row texts of keys naming a row it can SELECT, its own and
// maybe others (NULL when not looked up). The caller matches the two texts, so keys in another text format (time
// zones, say) still match. A viewer whose check raises (a policy casting a malformed claim) gets error_state /
// error_message and the others are still answered (a subtransaction each, well under a microsecond). Statement
// timeouts and cancels are not caught: they abort the call.
//
// Settings are transaction-local and callers roll back, so nothing outlives the call but the prepared statement,
// which is deallocated at the end (and, left over by an aborted call, at the start of the next).
export const sql = /* sql */ `
-- What of a viewer's claims the row security of a table can read: 'none' (nothing: what a viewer sees depends on
-- its role alone), 'sub' (its sub claim, through auth.uid()), or 'all'. Read from the stored expression of every
-- SELECT policy of the table (whatever its roles; pg_depend leaves out built-in objects, so the expression itself
-- is read). Conservative: an expression with any node outside a small set of plain ones (a subquery, whose tables'
-- own policies could read claims; an aggregate; a domain; XML; subscripts…) is 'all', as is one using a type that
-- is neither built in nor an enum, or a function or operator other than: built-in ones that are not volatile and
-- can neither read a setting, run SQL, nor call a type's input function by name; auth.uid() and auth.role() with
-- the bodies Performer and Supabase give them (they read the sub claim, and the role, which is the viewer's role).
CREATE OR REPLACE FUNCTION realtime.performer_policy_reads(entity regclass) RETURNS text
LANGUAGE sql STABLE
AS $fn$
  WITH quals AS (
    SELECT p.polqual::text AS tree
      FROM pg_catalog.pg_policy p
     WHERE p.polrelid = entity AND p.polcmd IN ('r', '*') AND p.polqual IS NOT NULL
  ), nodes AS (
    SELECT m[1] AS tag FROM quals, pg_catalog.regexp_matches(quals.tree, '\\{([A-Z_]+)', 'g') AS m
  ), types AS (
    SELECT m[1]::bigint AS oid FROM quals, pg_catalog.regexp_matches(quals.tree, ':[a-z_]*typ[a-z_]* (-?[0-9]+)', 'g') AS m
  ), funcs AS (
    SELECT m[1]::oid AS oid FROM quals, pg_catalog.regexp_matches(quals.tree, ':(?:funcid|opfuncid|hashfuncid|negfuncid) ([0-9]+)', 'g') AS m
    UNION
    SELECT o.oprcode::oid FROM quals, pg_catalog.regexp_matches(quals.tree, ':opno ([0-9]+)', 'g') AS m
      JOIN pg_catalog.pg_operator o ON o.oid = m[1]::oid
  ), verdicts AS (
    SELECT 'all' AS reads FROM nodes
     WHERE nodes.tag NOT IN ('BOOLEXPR', 'OPEXPR', 'DISTINCTEXPR', 'NULLIFEXPR', 'SCALARARRAYOPEXPR', 'FUNCEXPR', 'VAR',
                             'CONST', 'COERCEVIAIO', 'RELABELTYPE', 'ARRAYEXPR', 'COALESCEEXPR', 'CASEEXPR', 'CASEWHEN',
                             'CASETESTEXPR', 'NULLTEST', 'BOOLEANTEST', 'SQLVALUEFUNCTION')
    UNION ALL
    SELECT 'all' FROM types
     WHERE types.oid >= 16384
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE t.oid = types.oid::oid AND t.typtype = 'e')
    UNION ALL
    SELECT coalesce((
      SELECT CASE
               WHEN f.oid < 16384 THEN
                 CASE WHEN f.provolatile = 'v'
                        OR f.proname IN ('current_setting', 'pg_show_all_settings', 'pg_settings_get_flags',
                                         'pg_input_is_valid', 'pg_input_error_info')
                        OR f.proname LIKE '%xml%'
                        OR 'pg_catalog.cstring'::pg_catalog.regtype = ANY (f.proargtypes)
                        OR 'pg_catalog.internal'::pg_catalog.regtype = ANY (f.proargtypes)
                      THEN 'all' ELSE 'none' END
               WHEN n.nspname = 'auth' AND f.pronargs = 0 AND l.lanname = 'sql' AND f.proconfig IS NULL AND f.proname = 'uid'
                    AND pg_catalog.rtrim(pg_catalog.regexp_replace(f.prosrc, '[[:space:]]', '', 'g'), ';') IN (
                      'SELECTcoalesce(nullif(current_setting(''request.jwt.claim.sub'',true),''''),nullif(current_setting(''request.jwt.claims'',true),'''')::jsonb->>''sub'')::uuid',
                      'selectcoalesce(nullif(current_setting(''request.jwt.claim.sub'',true),''''),(nullif(current_setting(''request.jwt.claims'',true),'''')::jsonb->>''sub''))::uuid',
                      'selectnullif(current_setting(''request.jwt.claim.sub'',true),'''')::uuid')
                 THEN 'sub'
               WHEN n.nspname = 'auth' AND f.pronargs = 0 AND l.lanname = 'sql' AND f.proconfig IS NULL AND f.proname = 'role'
                    AND pg_catalog.rtrim(pg_catalog.regexp_replace(f.prosrc, '[[:space:]]', '', 'g'), ';') IN (
                      'SELECTcoalesce(nullif(current_setting(''request.jwt.claim.role'',true),''''),nullif(current_setting(''request.jwt.claims'',true),'''')::jsonb->>''role'')::text',
                      'selectcoalesce(nullif(current_setting(''request.jwt.claim.role'',true),''''),(nullif(current_setting(''request.jwt.claims'',true),'''')::jsonb->>''role''))::text',
                      'selectnullif(current_setting(''request.jwt.claim.role'',true),'''')::text')
                 THEN 'none'
               ELSE 'all'
             END
        FROM pg_catalog.pg_proc f
        JOIN pg_catalog.pg_namespace n ON n.oid = f.pronamespace
        JOIN pg_catalog.pg_language l ON l.oid = f.prolang
       WHERE f.oid = funcs.oid), 'all')
      FROM funcs
     WHERE funcs.oid <> 0
  )
  SELECT CASE WHEN pg_catalog.bool_or(v.reads = 'all') THEN 'all' WHEN pg_catalog.bool_or(v.reads = 'sub') THEN 'sub' ELSE 'none' END
    FROM verdicts v
$fn$;

-- The versions of auth.uid() and auth.role() (pg_proc row versions): what performer_policy_reads trusted.
CREATE OR REPLACE FUNCTION realtime.performer_auth_functions() RETURNS text
LANGUAGE sql STABLE
AS $fn$
  SELECT pg_catalog.string_agg(f.oid::text || ':' || f.xmin::text, ',' ORDER BY f.oid)
    FROM pg_catalog.pg_proc f JOIN pg_catalog.pg_namespace n ON n.oid = f.pronamespace
   WHERE n.nspname = 'auth' AND f.proname IN ('uid', 'role')
$fn$;

CREATE OR REPLACE FUNCTION realtime.performer_visible_keys(
  entity regclass,
  key_columns text[],
  keys text[],
  roles text[],
  claims text[],
  subs text[],
  subsets text[],
  xids bigint[]
) RETURNS TABLE (viewer int, columns text[], keys_found text[], error_state text, error_message text)
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
  caller oid := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user);
  entry_role text := pg_catalog.current_setting('role');
  n_cols int := coalesce(pg_catalog.cardinality(key_columns), 0);
  n_keys int := coalesce(pg_catalog.array_length(keys, 1), 0);
  key_attrs record;
  role_name text;
  role_ok boolean;
  role_columns text[];
  new_columns text[];
  role_rls boolean;
  -- What the viewers of the current role share: 'role' (their answer depends on the role alone), 'sub' (on the
  -- role and the sub claim), 'viewer' (nothing). shared: answers so far, by what they depend on.
  role_share text;
  shared jsonb;
  share_key text;
  want text;
  policy_reads text;
  auth_functions text;
  shared_by_policy boolean := false;
  full_keys text[];
  subset int[];
  subset_now text;
  role_set text;
  all_visible boolean;
BEGIN
  -- The batch's rows are looked up in the table, so their transactions must be visible to new snapshots first (the
  -- walsender can send a commit before it is; with synchronous replication, until the standby answers). xids are
  -- pgoutput's 32-bit ids, placed in the epoch next to the snapshot's xmax. Not yet: one row, viewer -2, and nothing
  -- else; the caller waits and asks again.
  IF coalesce(pg_catalog.cardinality(xids), 0) > 0 THEN
    SELECT coalesce(pg_catalog.bool_and(pg_catalog.pg_visible_in_snapshot((x.full_xid)::text::xid8, v.s)), true)
      INTO all_visible
      FROM (SELECT c.s, pg_catalog.pg_snapshot_xmax(c.s)::text::numeric AS xmax FROM pg_catalog.pg_current_snapshot() AS c(s)) v
      CROSS JOIN LATERAL (
        SELECT CASE
                 WHEN b.base + i.id > v.xmax + 2147483648 THEN b.base + i.id - 4294967296
                 WHEN b.base + i.id < v.xmax - 2147483648 THEN b.base + i.id + 4294967296
                 ELSE b.base + i.id
               END AS full_xid
          FROM pg_catalog.unnest(xids) AS i(id), LATERAL (SELECT v.xmax - pg_catalog.mod(v.xmax, 4294967296) AS base) b
      ) x;
    IF NOT all_visible THEN
      viewer := -2;
      RETURN NEXT;
      RETURN;
    END IF;
  END IF;

  IF n_keys > 0 AND (n_cols = 0 OR pg_catalog.array_ndims(keys) <> 2 OR pg_catalog.array_length(keys, 2) <> n_cols) THEN
    RAISE EXCEPTION 'keys must be a [rows][%] array', n_cols USING ERRCODE = '22023';
  END IF;
  IF pg_catalog.cardinality(roles) IS DISTINCT FROM pg_catalog.cardinality(claims)
     OR pg_catalog.cardinality(roles) IS DISTINCT FROM pg_catalog.cardinality(subs)
     OR pg_catalog.cardinality(roles) IS DISTINCT FROM pg_catalog.cardinality(subsets) THEN
    RAISE EXCEPTION 'roles, claims, subs and subsets must have the same length' USING ERRCODE = '22023';
  END IF;

  IF n_keys > 0 THEN
    -- The key columns as the table has them: names quoted, types from the catalog, never from the caller. Each
    -- column's keys reach the statements as an array in a transaction-local setting.
    SELECT pg_catalog.count(*) AS n,
           pg_catalog.string_agg(pg_catalog.format('pg_catalog.unnest(pg_catalog.current_setting(%L)::%s[])',
             'performer.visible_keys_' || k.ord, pg_catalog.format_type(a.atttypid, NULL)), ', ' ORDER BY k.ord) AS unnests,
           pg_catalog.min(pg_catalog.format('pg_catalog.current_setting(%L)::%s[]',
             'performer.visible_keys_' || k.ord, pg_catalog.format_type(a.atttypid, NULL))) AS first_array,
           pg_catalog.string_agg('c' || k.ord, ', ' ORDER BY k.ord) AS names,
           pg_catalog.string_agg(pg_catalog.format('t.%I', a.attname), ', ' ORDER BY k.ord) AS row_cols,
           pg_catalog.string_agg(pg_catalog.format('t.%I = k.c%s', a.attname, k.ord), ' AND ' ORDER BY k.ord) AS matches
      INTO key_attrs
      FROM pg_catalog.unnest(key_columns) WITH ORDINALITY AS k(name, ord)
      JOIN pg_catalog.pg_attribute a ON a.attrelid = entity AND a.attname = k.name AND a.attnum > 0 AND NOT a.attisdropped;
    IF key_attrs.n <> n_cols THEN
      RAISE EXCEPTION 'key columns % not all found in %', key_columns, entity USING ERRCODE = '42703';
    END IF;
    FOR j IN 1 .. n_cols LOOP
      full_keys[j] := ARRAY(SELECT keys[i][j] FROM pg_catalog.generate_series(1, n_keys) AS i)::text;
      PERFORM pg_catalog.set_config('performer.visible_keys_' || j, full_keys[j], true);
    END LOOP;
    -- Keys and found rows are both given as the row text of the typed values, made by this session, so that the
    -- caller can match them whatever text the keys came in (first row, viewer -1: the keys in order).
    viewer := -1;
    EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(ROW(%1$s)::text ORDER BY o.ord) FROM ROWS FROM (%2$s) WITH ORDINALITY AS o(%1$s, ord)',
      key_attrs.names, key_attrs.unnests) INTO keys_found;
    RETURN NEXT;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements p WHERE p.name = 'performer_visible_keys') THEN
      DEALLOCATE performer_visible_keys;
    END IF;
    IF n_cols = 1 THEN
      -- One index search for the whole key list.
      EXECUTE pg_catalog.format('PREPARE performer_visible_keys AS SELECT pg_catalog.array_agg(ROW(%1$s)::text) FROM %2$s t WHERE %1$s = ANY (%3$s)',
        key_attrs.row_cols, entity, key_attrs.first_array);
    ELSE
      -- OFFSET 0 keeps one index lookup per key: a generic plan could otherwise scan the whole table.
      EXECUTE pg_catalog.format('PREPARE performer_visible_keys AS SELECT pg_catalog.array_agg(ROW(%1$s)::text)'
        ' FROM ROWS FROM (%2$s) AS k(%3$s) CROSS JOIN LATERAL (SELECT %1$s FROM %4$s t WHERE %5$s OFFSET 0) t',
        key_attrs.row_cols, key_attrs.unnests, key_attrs.names, entity, key_attrs.matches);
    END IF;
    -- Planned once per role rather than per viewer: the claims are read when it runs.
    PERFORM pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true);
  END IF;

  PERFORM pg_catalog.set_config('realtime.topic', '', true),
          pg_catalog.set_config('request.headers', '{}', true);
  FOR i IN 1 .. coalesce(pg_catalog.cardinality(roles), 0) LOOP
    viewer := i - 1;
    columns := NULL;
    keys_found := NULL;
    error_state := NULL;
    error_message := NULL;
    IF role_name IS DISTINCT FROM roles[i] THEN
      -- What depends on the role alone is asked once per run of viewers with the same role (callers sort them).
      role_name := roles[i];
      role_ok := EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name AND pg_catalog.pg_has_role(caller, r.oid, 'MEMBER'));
      role_columns := NULL;
    END IF;
    IF role_ok THEN
      BEGIN
        IF role_columns IS NULL THEN
          -- Once per role, before any viewer's claims are set: the columns it may SELECT, whether row security
          -- applies to it, and the lookup's plan (the planner evaluates a policy's stable functions when it
          -- estimates; planned with a viewer's claims, one viewer's claims could decide another's outcome).
          PERFORM pg_catalog.set_config('request.jwt.claims', '{}', true),
                  pg_catalog.set_config('request.jwt.claim.sub', '', true),
                  pg_catalog.set_config('request.jwt.claim.role', role_name, true),
                  pg_catalog.set_config('role', role_name, true);
          role_set := role_name;
          new_columns := ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                                WHERE a.attrelid = entity AND a.attnum > 0 AND NOT a.attisdropped
                                  AND pg_catalog.has_column_privilege(a.attrelid, a.attnum, 'SELECT')
                                ORDER BY a.attnum);
          role_rls := pg_catalog.row_security_active(entity);
          IF n_keys > 0 AND key_columns <@ new_columns THEN
            subset_now := '?';
            FOR j IN 1 .. n_cols LOOP
              PERFORM pg_catalog.set_config('performer.visible_keys_' || j, '{}', true);
            END LOOP;
            EXECUTE 'EXECUTE performer_visible_keys';
            -- Read while that lookup's lock on the table keeps its policies from changing until the end of the
            -- transaction (policy DDL takes an exclusive lock).
            IF NOT role_rls THEN
              role_share := 'role';
            ELSE
              IF policy_reads IS NULL THEN
                auth_functions := realtime.performer_auth_functions();
                policy_reads := realtime.performer_policy_reads(entity);
              END IF;
              role_share := CASE policy_reads WHEN 'none' THEN 'role' WHEN 'sub' THEN 'sub' ELSE 'viewer' END;
            END IF;
            shared := '{}';
          END IF;
          role_columns := new_columns;
        END IF;
        IF role_set IS DISTINCT FROM role_name THEN
          PERFORM pg_catalog.set_config('request.jwt.claim.role', role_name, true),
                  pg_catalog.set_config('role', role_name, true);
          role_set := role_name;
        END IF;
        columns := role_columns;
        IF n_keys > 0 AND key_columns <@ columns THEN
          -- Viewers whose answer cannot differ share one lookup of every key (each reads its own keys from it).
          share_key := CASE role_share
                         WHEN 'role' THEN ''
                         WHEN 'sub' THEN pg_catalog.jsonb_build_array(subs[i], claims[i]::jsonb -> 'sub')::text
                       END;
          IF share_key IS NOT NULL AND shared -> share_key IS NOT NULL AND shared -> share_key <> 'null'::jsonb THEN
            keys_found := ARRAY(SELECT pg_catalog.jsonb_array_elements_text(shared -> share_key));
            shared_by_policy := shared_by_policy OR role_rls;
          ELSIF pg_catalog.cardinality(subsets[i]::int[]) = 0 THEN
            -- Asks about no key (its rows were all deleted).
            keys_found := '{}';
          ELSE
            PERFORM pg_catalog.set_config('request.jwt.claims', claims[i], true),
                    pg_catalog.set_config('request.jwt.claim.sub', subs[i], true);
            -- First the shared lookup of every key (unless it already failed for this key), then, if it failed,
            -- this viewer's own keys: rows it does not ask about must not make its check fail.
            FOR attempt IN 1 .. 2 LOOP
              CONTINUE WHEN attempt = 1 AND (share_key IS NULL OR shared ? share_key);
              want := CASE WHEN attempt = 2 THEN subsets[i] END;
              IF want IS DISTINCT FROM subset_now THEN
                subset_now := want;
                subset := want::int[];
                FOR j IN 1 .. n_cols LOOP
                  PERFORM pg_catalog.set_config('performer.visible_keys_' || j, CASE WHEN subset IS NULL THEN full_keys[j]
                    ELSE ARRAY(SELECT keys[p][j] FROM pg_catalog.unnest(subset) AS p)::text END, true);
                END LOOP;
              END IF;
              IF attempt = 1 THEN
                BEGIN
                  EXECUTE 'EXECUTE performer_visible_keys' INTO keys_found;
                  keys_found := coalesce(keys_found, '{}');
                  shared := shared || pg_catalog.jsonb_build_object(share_key, pg_catalog.to_jsonb(keys_found));
                  EXIT;
                EXCEPTION WHEN OTHERS THEN
                  subset_now := '?';
                  shared := shared || pg_catalog.jsonb_build_object(share_key, 'null'::jsonb);
                END;
              ELSE
                EXECUTE 'EXECUTE performer_visible_keys' INTO keys_found;
                keys_found := coalesce(keys_found, '{}');
              END IF;
            END LOOP;
          END IF;
        END IF;
      EXCEPTION WHEN OTHERS THEN
        -- Settings made in the block (the role and the keys included) went back with it.
        subset_now := '?';
        role_set := NULL;
        columns := NULL;
        keys_found := NULL;
        error_state := SQLSTATE;
        error_message := SQLERRM;
      END;
    END IF;
    RETURN NEXT;
  END LOOP;

  PERFORM pg_catalog.set_config('role', entry_role, true);
  IF n_keys > 0 THEN
    DEALLOCATE performer_visible_keys;
  END IF;
  -- The lock keeps the table's policies as they were, but auth.uid() and auth.role() can be replaced meanwhile: if
  -- they were, answers shared on the old reading are dropped (the caller then checks each viewer on its own).
  IF shared_by_policy AND realtime.performer_auth_functions() IS DISTINCT FROM auth_functions THEN
    RAISE EXCEPTION 'the row security of % changed during the check', entity USING ERRCODE = '40001';
  END IF;
END
$fn$;

REVOKE ALL ON FUNCTION realtime.performer_visible_keys(regclass, text[], text[], text[], text[], text[], text[], bigint[]) FROM PUBLIC;
`;
