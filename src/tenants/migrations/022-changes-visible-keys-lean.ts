// Postgres Changes under RLS, the same check as migration 10 with less work per call and per viewer (what a call
// of realtime.performer_visible_keys for 100 users cost was mostly fixed overhead, not row lookups):
//
// - The lookup (and the statement naming the keys) stay prepared in the session across calls, under a name made
//   from their text and the search_path: no PREPARE, parse or plan per call. A role's first lookup in a call still
//   runs with empty claims before any viewer's, so a plan made again (the role changed, the table or its policies
//   changed: the plan cache notices) is made without a viewer's claims, as before. Past 30, a session's are dropped.
//   The lookup collects the rows with an ARRAY(subquery) rather than array_agg: an aggregate costs more to set up.
// - performer_policy_reads and performer_auth_functions are PL/pgSQL, so their queries are planned once per session
//   rather than at every call (the SQL functions were planned again in each call: about 1 ms); and what the policies
//   of a table read is remembered in the session (a prepared statement's name: callers roll back) under the row
//   versions of the table's policies, of the functions they call and of auth.uid() / auth.role(): any change to
//   those reads the policies again.
// - Settings are made by assignment (a plain expression) rather than PERFORM (a query each); the claims JSON is not
//   parsed to find the sub: a non-empty sub setting is what auth.uid() reads first, so viewers with the same role
//   and sub share a lookup (callers sort viewers by role, then sub: a group is a run of neighbours). A viewer without
//   a sub setting is looked up on its own.
// - A subtransaction only around what may raise for one viewer: its own lookup; viewers answered from their group's
//   lookup need none.
//
// Same arguments, result and answers as migration 10 (see there; the property test compares both with a SELECT as
// each user); differences: a viewer with no sub setting does not share a lookup (it used to when its claims JSON
// named the same sub), and a malformed subsets element fails the call rather than the viewer.
export const sql = /* sql */ `
CREATE OR REPLACE FUNCTION realtime.performer_policy_reads(entity regclass) RETURNS text
LANGUAGE plpgsql STABLE
AS $fn$
BEGIN
  RETURN (
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
  );
END
$fn$;

CREATE OR REPLACE FUNCTION realtime.performer_auth_functions() RETURNS text
LANGUAGE plpgsql STABLE
AS $fn$
BEGIN
  RETURN (
    SELECT pg_catalog.string_agg(f.oid::text || ':' || f.xmin::text, ',' ORDER BY f.oid)
      FROM pg_catalog.pg_proc f JOIN pg_catalog.pg_namespace n ON n.oid = f.pronamespace
     WHERE n.nspname = 'auth' AND f.proname IN ('uid', 'role')
  );
END
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
  header_text text;
  lookup_text text;
  -- 'EXECUTE <the lookup's prepared name>'
  run_lookup text;
  stale record;
  role_name text;
  role_ok boolean;
  role_columns text[];
  new_columns text[];
  role_rls boolean;
  -- Keys are given and the role may read the key columns: its viewers' keys are looked up.
  role_lookup boolean := false;
  -- What the viewers of the current role share: 'role' (their answer depends on the role alone), 'sub' (on the
  -- role and the sub claim), 'viewer' (nothing).
  role_share text;
  policy_reads text;
  reads_name text;
  auth_functions text;
  shared_by_policy boolean := false;
  full_keys text[];
  subset int[];
  -- What the key settings hold: NULL every key, '?' not known, else a viewer's subset literal.
  subset_now text;
  role_set text;
  share_key text;
  -- The group of the last shared lookup (in this role's run of viewers) and its answer (NULL: it raised).
  group_key text;
  group_found text[];
  want text;
  ignored text;
  all_visible boolean;
BEGIN
  -- As in migration 10: the batch's transactions must be visible to new snapshots first; if not, only viewer -2.
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
    -- The key columns as the table has them (names quoted, types from the catalog); the table by schema and name.
    SELECT pg_catalog.count(*) AS n,
           pg_catalog.string_agg(pg_catalog.format('pg_catalog.unnest(pg_catalog.current_setting(%L)::%s[])',
             'performer.visible_keys_' || k.ord, pg_catalog.format_type(a.atttypid, NULL)), ', ' ORDER BY k.ord) AS unnests,
           pg_catalog.min(pg_catalog.format('pg_catalog.current_setting(%L)::%s[]',
             'performer.visible_keys_' || k.ord, pg_catalog.format_type(a.atttypid, NULL))) AS first_array,
           pg_catalog.string_agg('c' || k.ord, ', ' ORDER BY k.ord) AS names,
           pg_catalog.string_agg(pg_catalog.format('t.%I', a.attname), ', ' ORDER BY k.ord) AS row_cols,
           pg_catalog.string_agg(pg_catalog.format('t.%I = k.c%s', a.attname, k.ord), ' AND ' ORDER BY k.ord) AS matches,
           (SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = entity) AS relation
      INTO key_attrs
      FROM pg_catalog.unnest(key_columns) WITH ORDINALITY AS k(name, ord)
      JOIN pg_catalog.pg_attribute a ON a.attrelid = entity AND a.attname = k.name AND a.attnum > 0 AND NOT a.attisdropped;
    IF key_attrs.n <> n_cols THEN
      RAISE EXCEPTION 'key columns % not all found in %', key_columns, entity USING ERRCODE = '42703';
    END IF;
    FOR j IN 1 .. n_cols LOOP
      full_keys[j] := ARRAY(SELECT keys[i][j] FROM pg_catalog.generate_series(1, n_keys) AS i)::text;
      ignored := pg_catalog.set_config('performer.visible_keys_' || j, full_keys[j], true);
    END LOOP;
    header_text := pg_catalog.format('SELECT pg_catalog.array_agg(ROW(%1$s)::text ORDER BY o.ord) FROM ROWS FROM (%2$s) WITH ORDINALITY AS o(%1$s, ord)',
      key_attrs.names, key_attrs.unnests);
    IF n_cols = 1 THEN
      -- One index search for the whole key list.
      lookup_text := pg_catalog.format('SELECT ARRAY(SELECT ROW(%1$s)::text FROM %2$s t WHERE %1$s = ANY (%3$s))',
        key_attrs.row_cols, key_attrs.relation, key_attrs.first_array);
    ELSE
      -- OFFSET 0 keeps one index lookup per key: a generic plan could otherwise scan the whole table.
      lookup_text := pg_catalog.format('SELECT ARRAY(SELECT ROW(%1$s)::text'
        ' FROM ROWS FROM (%2$s) AS k(%3$s) CROSS JOIN LATERAL (SELECT %1$s FROM %4$s t WHERE %5$s OFFSET 0) t)',
        key_attrs.row_cols, key_attrs.unnests, key_attrs.names, key_attrs.relation, key_attrs.matches);
    END IF;
    -- Named by their text and the search_path they were analysed under (a type name may depend on it).
    header_text := pg_catalog.format('performer_visible_keys_%s', pg_catalog.md5(header_text || pg_catalog.current_setting('search_path'))) || ' AS ' || header_text;
    lookup_text := pg_catalog.format('performer_visible_keys_%s', pg_catalog.md5(lookup_text || pg_catalog.current_setting('search_path'))) || ' AS ' || lookup_text;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements p WHERE p.name = pg_catalog.split_part(header_text, ' ', 1))
       OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements p WHERE p.name = pg_catalog.split_part(lookup_text, ' ', 1)) THEN
      -- Those of earlier calls (other tables, key types, search paths) go when there are many.
      IF (SELECT pg_catalog.count(*) FROM pg_catalog.pg_prepared_statements p WHERE p.name LIKE 'performer\\_visible\\_keys\\_%') >= 30 THEN
        FOR stale IN SELECT p.name FROM pg_catalog.pg_prepared_statements p WHERE p.name LIKE 'performer\\_visible\\_keys\\_%' LOOP
          EXECUTE pg_catalog.format('DEALLOCATE %I', stale.name);
        END LOOP;
      END IF;
      IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements p WHERE p.name = pg_catalog.split_part(header_text, ' ', 1)) THEN
        EXECUTE 'PREPARE ' || header_text;
      END IF;
      IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements p WHERE p.name = pg_catalog.split_part(lookup_text, ' ', 1)) THEN
        EXECUTE 'PREPARE ' || lookup_text;
      END IF;
    END IF;
    -- First row (viewer -1): every key as the row text of its typed values, made by this session.
    viewer := -1;
    EXECUTE 'EXECUTE ' || pg_catalog.split_part(header_text, ' ', 1) INTO keys_found;
    RETURN NEXT;
    run_lookup := 'EXECUTE ' || pg_catalog.split_part(lookup_text, ' ', 1);
    -- Planned once per role rather than per viewer: the claims are read when it runs.
    ignored := pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true);
  END IF;

  ignored := pg_catalog.set_config('realtime.topic', '', true);
  ignored := pg_catalog.set_config('request.headers', '{}', true);
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
    IF role_ok AND role_columns IS NULL THEN
      BEGIN
        -- Once per role, before any viewer's claims are set: the columns it may SELECT, whether row security
        -- applies to it, and the lookup's plan (the planner evaluates a policy's stable functions when it
        -- estimates; planned with a viewer's claims, one viewer's claims could decide another's outcome).
        ignored := pg_catalog.set_config('request.jwt.claims', '{}', true);
        ignored := pg_catalog.set_config('request.jwt.claim.sub', '', true);
        ignored := pg_catalog.set_config('request.jwt.claim.role', role_name, true);
        ignored := pg_catalog.set_config('role', role_name, true);
        role_set := role_name;
        new_columns := ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                              WHERE a.attrelid = entity AND a.attnum > 0 AND NOT a.attisdropped
                                AND pg_catalog.has_column_privilege(a.attrelid, a.attnum, 'SELECT')
                              ORDER BY a.attnum);
        role_rls := pg_catalog.row_security_active(entity);
        role_lookup := n_keys > 0 AND key_columns <@ new_columns;
        IF role_lookup THEN
          subset_now := '?';
          FOR j IN 1 .. n_cols LOOP
            ignored := pg_catalog.set_config('performer.visible_keys_' || j, '{}', true);
          END LOOP;
          EXECUTE run_lookup;
          -- Read while that lookup's lock on the table keeps its policies from changing until the end of the
          -- transaction (policy DDL takes an exclusive lock).
          IF NOT role_rls THEN
            role_share := 'role';
          ELSE
            IF policy_reads IS NULL THEN
              auth_functions := realtime.performer_auth_functions();
              -- Remembered in the session (as the name of a prepared statement: the callers roll back) under what
              -- the reading depends on: the table's policies and the functions they call, as row versions.
              reads_name := 'performer_reads_' || pg_catalog.md5(entity::oid::text || '|' || coalesce(auth_functions, '') || '|' || coalesce((
                SELECT pg_catalog.string_agg(p.oid::text || ':' || p.xmin::text, ',' ORDER BY p.oid)
                  FROM pg_catalog.pg_policy p WHERE p.polrelid = entity), '') || '|' || coalesce((
                SELECT pg_catalog.string_agg(f.oid::text || ':' || f.xmin::text, ',' ORDER BY f.oid)
                  FROM pg_catalog.pg_proc f
                 WHERE f.oid IN (SELECT d.refobjid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_policy p ON p.oid = d.objid
                                  WHERE d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND p.polrelid = entity
                                    AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass)), ''));
              policy_reads := (SELECT pg_catalog.substr(p.name, 50) FROM pg_catalog.pg_prepared_statements p
                                WHERE p.name IN (reads_name || '_none', reads_name || '_sub', reads_name || '_all'));
              IF policy_reads IS NULL THEN
                policy_reads := realtime.performer_policy_reads(entity);
                IF (SELECT pg_catalog.count(*) FROM pg_catalog.pg_prepared_statements p WHERE p.name LIKE 'performer\\_reads\\_%') >= 30 THEN
                  FOR stale IN SELECT p.name FROM pg_catalog.pg_prepared_statements p WHERE p.name LIKE 'performer\\_reads\\_%' LOOP
                    EXECUTE pg_catalog.format('DEALLOCATE %I', stale.name);
                  END LOOP;
                END IF;
                EXECUTE pg_catalog.format('PREPARE %I AS SELECT 1', reads_name || '_' || policy_reads);
              END IF;
            END IF;
            role_share := CASE policy_reads WHEN 'none' THEN 'role' WHEN 'sub' THEN 'sub' ELSE 'viewer' END;
          END IF;
        END IF;
        group_key := NULL;
        group_found := NULL;
        role_columns := new_columns;
      EXCEPTION WHEN OTHERS THEN
        -- Settings made in the block (the role and the keys included) went back with it; the next viewer of the
        -- role tries again.
        subset_now := '?';
        role_set := NULL;
        error_state := SQLSTATE;
        error_message := SQLERRM;
      END;
    END IF;
    IF role_ok AND error_state IS NULL AND role_set IS DISTINCT FROM role_name THEN
      BEGIN
        ignored := pg_catalog.set_config('request.jwt.claim.role', role_name, true);
        ignored := pg_catalog.set_config('role', role_name, true);
        role_set := role_name;
      EXCEPTION WHEN OTHERS THEN
        role_set := NULL;
        error_state := SQLSTATE;
        error_message := SQLERRM;
      END;
    END IF;
    IF role_ok AND error_state IS NULL THEN
      columns := role_columns;
      IF role_lookup THEN
        -- Viewers whose answer cannot differ share one lookup of every key (each reads its own keys from it).
        share_key := CASE role_share WHEN 'role' THEN '' WHEN 'sub' THEN CASE WHEN subs[i] <> '' THEN subs[i] END END;
        IF share_key IS NOT NULL AND share_key = group_key AND group_found IS NOT NULL THEN
          keys_found := group_found;
          shared_by_policy := shared_by_policy OR role_rls;
        ELSIF pg_catalog.cardinality(subsets[i]::int[]) = 0 THEN
          -- Asks about no key (its rows were all deleted).
          keys_found := '{}';
        ELSE
          ignored := pg_catalog.set_config('request.jwt.claims', claims[i], true);
          ignored := pg_catalog.set_config('request.jwt.claim.sub', subs[i], true);
          IF share_key IS NOT NULL AND share_key IS DISTINCT FROM group_key THEN
            -- The first of its group: every key, for the group. If it raises, each viewer of the group is looked
            -- up with its own keys (rows it does not ask about must not make its check fail).
            group_key := share_key;
            group_found := NULL;
            BEGIN
              IF subset_now IS NOT NULL THEN
                FOR j IN 1 .. n_cols LOOP
                  ignored := pg_catalog.set_config('performer.visible_keys_' || j, full_keys[j], true);
                END LOOP;
                subset_now := NULL;
              END IF;
              EXECUTE run_lookup INTO group_found;
              group_found := coalesce(group_found, '{}');
            EXCEPTION WHEN OTHERS THEN
              subset_now := '?';
            END;
          END IF;
          IF share_key IS NOT NULL AND group_found IS NOT NULL THEN
            keys_found := group_found;
          ELSE
            BEGIN
              want := subsets[i];
              IF want IS DISTINCT FROM subset_now THEN
                subset := want::int[];
                FOR j IN 1 .. n_cols LOOP
                  ignored := pg_catalog.set_config('performer.visible_keys_' || j, CASE WHEN subset IS NULL THEN full_keys[j]
                    ELSE ARRAY(SELECT keys[p][j] FROM pg_catalog.unnest(subset) AS p)::text END, true);
                END LOOP;
                subset_now := want;
              END IF;
              EXECUTE run_lookup INTO keys_found;
              keys_found := coalesce(keys_found, '{}');
            EXCEPTION WHEN OTHERS THEN
              subset_now := '?';
              columns := NULL;
              keys_found := NULL;
              error_state := SQLSTATE;
              error_message := SQLERRM;
            END;
          END IF;
        END IF;
      END IF;
    END IF;
    RETURN NEXT;
  END LOOP;

  ignored := pg_catalog.set_config('role', entry_role, true);
  -- The lock keeps the table's policies as they were, but auth.uid() and auth.role() can be replaced meanwhile: if
  -- they were, answers shared on the old reading are dropped (the caller then checks each viewer on its own).
  IF shared_by_policy AND realtime.performer_auth_functions() IS DISTINCT FROM auth_functions THEN
    RAISE EXCEPTION 'the row security of % changed during the check', entity USING ERRCODE = '40001';
  END IF;
END
$fn$;

REVOKE ALL ON FUNCTION realtime.performer_visible_keys(regclass, text[], text[], text[], text[], text[], text[], bigint[]) FROM PUBLIC;
`;
