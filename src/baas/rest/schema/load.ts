/**
 * Loads the REST schema cache from a tenant's catalogs in ONE statement (a single JSON document), for the exposed
 * schemas only. Relationships are derived in memory (./relationships.ts).
 */
import type pg from 'pg';
import { deriveRelationships, type ForeignKey } from './relationships.js';
import { keyOf, type Column, type RelationKind, type Relationship, type Routine, type SchemaCache, type Table } from './types.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

const CATALOG_QUERY = `
-- Runs with search_path = pg_catalog: format_type / pg_get_expr qualify every non-catalog name.
WITH
exposed AS (SELECT n.oid, n.nspname FROM pg_namespace n WHERE n.nspname = ANY($1::text[])),
rels AS (
  SELECT c.oid, e.nspname AS schema, c.relname AS name, c.relkind
  FROM pg_class c JOIN exposed e ON e.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND NOT c.relispartition
),
cols AS (
  SELECT a.attrelid,
    json_agg(json_build_object(
      'name', a.attname,
      'type', format_type(a.atttypid, a.atttypmod),
      'typeName', t.typname,
      'baseTypeName', coalesce(bt.typname, t.typname),
      'notNull', a.attnotnull,
      'generated', a.attgenerated <> '',
      'defaultExpr', CASE
        WHEN a.attgenerated <> '' THEN NULL
        WHEN a.attidentity <> '' THEN format('nextval(%L::regclass)',
          pg_get_serial_sequence(format('%I.%I', r.schema, r.name), a.attname))
        ELSE pg_get_expr(d.adbin, d.adrelid) END
    ) ORDER BY a.attnum) AS columns
  FROM pg_attribute a
  JOIN rels r ON r.oid = a.attrelid
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE a.attnum > 0 AND NOT a.attisdropped
  GROUP BY a.attrelid
),
keys AS (
  SELECT con.conrelid, con.contype,
    array_agg(a.attname::text ORDER BY k.ord) AS names,
    array_agg(k.attnum ORDER BY k.attnum) AS attnums
  FROM pg_constraint con
  CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
  WHERE con.contype IN ('p', 'u') AND con.conrelid IN (SELECT oid FROM rels)
  GROUP BY con.oid, con.conrelid, con.contype
),
-- Views stand for the table columns they show, as PostgREST's view relationships: the origin of each output column
-- (resorigtbl / resorigcol of the view query's target list, read from the rewrite rule's node text).
view_cols AS (
  SELECT DISTINCT ON (v.oid, m[3]::oid, m[4]::int2) v.oid AS rel, m[3]::oid AS tbl, m[4]::int2 AS col, va.attname::text AS name
  FROM rels v
  JOIN pg_rewrite rw ON rw.ev_class = v.oid AND rw.rulename = '_RETURN'
  CROSS JOIN LATERAL regexp_matches(rw.ev_action::text,
    ':resno (\\d+) :resname (\\S+) :ressortgroupref \\d+ :resorigtbl (\\d+) :resorigcol (\\d+)', 'g') AS m
  JOIN pg_attribute va ON va.attrelid = v.oid AND va.attnum = m[1]::int2 AND va.attname = m[2] AND NOT va.attisdropped
  WHERE v.relkind IN ('v', 'm') AND m[3] <> '0'
  ORDER BY v.oid, m[3]::oid, m[4]::int2, m[1]::int
),
fk_cols AS (
  SELECT con.oid, con.conrelid, con.confrelid, k.col, k.ref, k.ord
  FROM pg_constraint con
  CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(col, ref, ord)
  WHERE con.contype = 'f' AND con.conparentid = 0
),
-- Where a table's column shows: in the table itself, or in a view of it.
col_map AS (
  SELECT a.attrelid AS tbl, a.attnum AS col, a.attrelid AS rel, a.attname::text AS name
  FROM pg_attribute a
  WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attrelid IN (SELECT conrelid FROM fk_cols UNION SELECT confrelid FROM fk_cols)
  UNION ALL
  SELECT tbl, col, rel, name FROM view_cols
),
-- Each relation showing every column of an FK's referencing side, and each showing every column of its referenced side.
fk_src AS (
  SELECT f.oid, m.rel, array_agg(m.name ORDER BY f.ord) AS cols, count(*) AS n
  FROM fk_cols f JOIN col_map m ON m.tbl = f.conrelid AND m.col = f.col GROUP BY f.oid, m.rel
),
fk_dst AS (
  SELECT f.oid, m.rel, array_agg(m.name ORDER BY f.ord) AS cols, count(*) AS n
  FROM fk_cols f JOIN col_map m ON m.tbl = f.confrelid AND m.col = f.ref GROUP BY f.oid, m.rel
),
fks AS (
  SELECT con.conname, src.schema, src.name, dst.schema AS fschema, dst.name AS fname, s.cols, d.cols AS fcols,
    (SELECT array_agg(x ORDER BY x) FROM unnest(con.conkey) x) AS attnums,
    con.conrelid
  FROM pg_constraint con
  JOIN fk_src s ON s.oid = con.oid AND s.n = cardinality(con.conkey)
  JOIN fk_dst d ON d.oid = con.oid AND d.n = cardinality(con.confkey)
  JOIN rels src ON src.oid = s.rel
  JOIN rels dst ON dst.oid = d.rel
),
procs AS (
  SELECT p.oid, e.nspname AS schema, p.proname AS name, p.provolatile, p.proretset, p.prorows, p.pronargdefaults,
    rt.typname AS rettypname, rt.typtype AS rettyptype, rt.typrelid, format_type(p.prorettype, NULL) AS rettype,
    coalesce(p.proallargtypes, p.proargtypes::oid[]) AS argtypes,
    p.proargmodes, p.proargnames
  FROM pg_proc p JOIN exposed e ON e.oid = p.pronamespace JOIN pg_type rt ON rt.oid = p.prorettype
  WHERE p.prokind = 'f'
)
SELECT json_build_object(
  'tables', (SELECT coalesce(json_agg(json_build_object(
      'schema', r.schema, 'name', r.name, 'kind', r.relkind,
      'columns', coalesce(c.columns, '[]'),
      'primaryKey', coalesce((SELECT to_json(k.names) FROM keys k WHERE k.conrelid = r.oid AND k.contype = 'p'), '[]')
    )), '[]') FROM rels r LEFT JOIN cols c ON c.attrelid = r.oid),
  'foreignKeys', (SELECT coalesce(json_agg(json_build_object(
      'constraint', f.conname, 'schema', f.schema, 'name', f.name, 'foreignSchema', f.fschema, 'foreignName', f.fname,
      'columns', f.cols, 'foreignColumns', f.fcols,
      'oneToOne', EXISTS (SELECT 1 FROM keys k WHERE k.conrelid = f.conrelid AND k.attnums = f.attnums)
    ) ORDER BY f.schema, f.name, f.conname), '[]') FROM fks f),
  'routines', (SELECT coalesce(json_agg(json_build_object(
      'schema', p.schema, 'name', p.name, 'volatility', p.provolatile, 'setOf', p.proretset, 'rowsOne', p.prorows = 1,
      'defaults', p.pronargdefaults, 'returnType', p.rettype, 'returnTypeName', p.rettypname,
      'returnTypeType', p.rettyptype,
      'returnTable', (SELECT json_build_object('schema', n.nspname, 'name', c.relname)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p.typrelid),
      'returnColumns', (SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'typeName', t.typname) ORDER BY a.attnum)
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
         WHERE a.attrelid = p.typrelid AND a.attnum > 0 AND NOT a.attisdropped),
      'args', (SELECT json_agg(json_build_object('name', coalesce(x.name, ''), 'type', format_type(x.type, NULL), 'typeName', t.typname,
                 'mode', coalesce(x.mode::text, 'i'),
                 'table', (SELECT json_build_object('schema', n.nspname, 'name', c.relname)
                    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = t.typrelid)) ORDER BY x.ord)
         FROM unnest(p.argtypes, p.proargmodes, p.proargnames) WITH ORDINALITY AS x(type, mode, name, ord)
         JOIN pg_type t ON t.oid = x.type)
    )), '[]') FROM procs p),
  'types', (SELECT json_agg(json_build_object('schema', n.nspname, 'name', t.typname, 'type', format_type(t.oid, NULL)))
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = 'pg_catalog' OR n.nspname = ANY($1::text[]))
)::text AS cache`;

interface RawTable {
  schema: string;
  name: string;
  kind: string;
  columns: Column[];
  primaryKey: string[];
}

interface RawRoutine {
  schema: string;
  name: string;
  volatility: 'i' | 's' | 'v';
  setOf: boolean;
  /** Declared `ROWS 1`: a SETOF function PostgREST takes as to-one in a computed relationship. */
  rowsOne?: boolean;
  defaults: number;
  returnType: string;
  returnTypeName: string;
  returnTypeType: string;
  returnTable: { schema: string; name: string } | null;
  returnColumns: Array<{ name: string; type: string; typeName: string }> | null;
  args: Array<{ name: string; type: string; typeName: string; mode: string; table?: { schema: string; name: string } | null }> | null;
}

const KINDS: Record<string, RelationKind> = {
  r: 'table',
  v: 'view',
  m: 'materialized-view',
  f: 'foreign-table',
  p: 'partitioned-table',
};

function toRoutine(raw: RawRoutine): Routine {
  const args = raw.args ?? [];
  const inArgs = args.filter((a) => a.mode === 'i' || a.mode === 'b' || a.mode === 'v');
  const outArgs = args.filter((a) => a.mode === 'o' || a.mode === 'b' || a.mode === 't');
  const firstOptional = inArgs.length - raw.defaults;
  const params = inArgs.map((a, index) => ({
    name: a.name,
    type: a.type,
    typeName: a.typeName,
    required: index < firstOptional,
    variadic: a.mode === 'v',
  }));
  let returns: Routine['returns'];
  if (raw.returnTypeName === 'void') {
    returns = { kind: 'void', setOf: raw.setOf, type: raw.returnType, columns: [] };
  } else if (outArgs.length > 1 || (raw.returnTypeName === 'record' && outArgs.length > 0 && raw.returnTypeType === 'p')) {
    returns = { kind: 'composite', setOf: raw.setOf, type: raw.returnType, columns: outArgs.map(({ name, type, typeName }) => ({ name, type, typeName })) };
  } else if (raw.returnTypeType === 'c') {
    returns = {
      kind: 'composite',
      setOf: raw.setOf,
      type: raw.returnType,
      ...(raw.returnTable ? { table: raw.returnTable } : {}),
      columns: raw.returnColumns ?? [],
    };
  } else if (raw.returnTypeName === 'record') {
    returns = { kind: 'record', setOf: raw.setOf, type: raw.returnType, columns: [] };
  } else {
    returns = { kind: 'scalar', setOf: raw.setOf, type: raw.returnType, columns: [] };
  }
  const volatility = raw.volatility === 'i' ? 'immutable' : raw.volatility === 's' ? 'stable' : 'volatile';
  return { schema: raw.schema, name: raw.name, params, returns, volatility };
}

/** Builds the in-memory cache from the catalog document (exported for tests that craft catalogs). */
export function buildSchemaCache(
  schemas: readonly string[],
  doc: { tables: RawTable[]; foreignKeys: ForeignKey[]; routines: RawRoutine[]; types: Array<{ schema: string; name: string; type: string }> | null },
): SchemaCache {
  const tables = new Map<string, Table>();
  for (const t of doc.tables) {
    tables.set(keyOf(t), {
      schema: t.schema,
      name: t.name,
      kind: KINDS[t.kind] ?? 'table',
      columns: t.columns,
      columnsByName: new Map(t.columns.map((c) => [c.name, c])),
      primaryKey: t.primaryKey,
    });
  }
  const routines = new Map<string, Routine[]>();
  for (const raw of doc.routines) {
    const r = toRoutine(raw);
    const key = keyOf(r);
    routines.set(key, [...(routines.get(key) ?? []), r]);
  }
  const types = new Map<string, Map<string, string>>();
  for (const t of doc.types ?? []) {
    if (!types.has(t.schema)) types.set(t.schema, new Map());
    types.get(t.schema)!.set(t.name, t.type);
  }
  const relationships = deriveRelationships(tables, doc.foreignKeys);
  for (const raw of doc.routines) addComputedRelationship(relationships, tables, raw);
  return { schemas: [...schemas], tables, relationships, routines, types };
}

/**
 * PostgREST's computed relationships: a function of one argument, a table's row, returning rows of a table (SETOF:
 * to-many; one row or `ROWS 1`: to-one) is embeddable from the first table under the function's name.
 */
function addComputedRelationship(relationships: Map<string, Relationship[]>, tables: Map<string, Table>, raw: RawRoutine): void {
  const inputs = (raw.args ?? []).filter((a) => a.mode === 'i' || a.mode === 'b' || a.mode === 'v');
  const origin = inputs.length === 1 ? inputs[0].table : null;
  const target = raw.returnTypeType === 'c' ? raw.returnTable : null;
  if (!origin || !target || !tables.has(keyOf(origin)) || !tables.has(keyOf(target))) return;
  const rel: Relationship = {
    table: origin,
    foreignTable: target,
    isSelf: keyOf(origin) === keyOf(target),
    cardinality: raw.setOf && !raw.rowsOne ? 'o2m' : 'm2o',
    constraint: raw.name,
    columns: [],
    computed: { schema: raw.schema, name: raw.name, setOf: raw.setOf },
  };
  relationships.set(keyOf(origin), [...(relationships.get(keyOf(origin)) ?? []), rel]);
}

/**
 * Reads the schema cache of the exposed `schemas` (the first is the default): one catalog statement, inside a
 * read-only transaction whose search_path is pg_catalog alone, so every type and DEFAULT expression comes out
 * schema-qualified and means the same whatever search_path a request later runs with. `db` must be one
 * connection (a pool client), not a pool.
 */
export async function loadSchemaCache(db: Queryable, schemas: readonly string[]): Promise<SchemaCache> {
  await db.query('BEGIN READ ONLY; SET LOCAL search_path TO pg_catalog');
  try {
    const { rows } = await db.query<{ cache: string }>(CATALOG_QUERY, [schemas]);
    await db.query('COMMIT');
    return buildSchemaCache(schemas, JSON.parse(rows[0].cache));
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined); // the connection may be gone; the catalog error matters
    throw err;
  }
}
