/**
 * What Postgres Changes needs to know about a column type: its `pg_type.typname` (the `columns[].type` clients see),
 * its `regtype` text (what upstream error messages print), and a kind that picks the JSON rendering and the filter
 * semantics. Built-in types come from a static table; anything else (enums, domains, extension types, their
 * arrays) comes from a resolver the caller fills from the catalog, e.g. with {@link TYPE_CATALOG_QUERY}.
 */
export type TypeKind =
  | 'int2'
  | 'int4'
  | 'int8'
  | 'oid'
  | 'float4'
  | 'float8'
  | 'numeric'
  | 'bool'
  | 'text'
  | 'name'
  | 'bpchar'
  | 'citext'
  | 'enum'
  | 'uuid'
  | 'json'
  | 'jsonb'
  | 'bytea'
  | 'date'
  | 'timestamp'
  | 'timestamptz'
  | 'time'
  | 'timetz'
  | 'interval'
  | 'array'
  | 'other';

export interface PgTypeInfo {
  readonly oid: number;
  /** pg_type.typname, e.g. `int4`, `_text`, `mood`. */
  readonly name: string;
  /** The type's regtype text, e.g. `integer`, `text[]`, `character varying`. */
  readonly sqlName: string;
  readonly kind: TypeKind;
  /** Element type of an array kind; 0 otherwise. */
  readonly elementOid: number;
  /**
   * pg_type.typdelim for scalars; for arrays the element's, which is what separates elements in the array literal
   * (`,` for everything built in except box's `;`).
   */
  readonly delimiter: string;
  /** Enum labels in sort order, when known (needed for lt/gt on enums). */
  readonly enumLabels?: readonly string[];
}

/** Returns type information for oids the built-in table lacks; undefined when unknown. */
export type TypeResolver = (oid: number) => PgTypeInfo | undefined;

// [oid, typname, regtype text, kind, array oid]. Checked against pg_type by test/replication/changes-render.test.ts.
const BUILTIN: ReadonlyArray<readonly [number, string, string, TypeKind, number]> = [
  [16, 'bool', 'boolean', 'bool', 1000],
  [17, 'bytea', 'bytea', 'bytea', 1001],
  [18, 'char', '"char"', 'text', 1002],
  [19, 'name', 'name', 'name', 1003],
  [20, 'int8', 'bigint', 'int8', 1016],
  [21, 'int2', 'smallint', 'int2', 1005],
  [22, 'int2vector', 'int2vector', 'other', 1006],
  [23, 'int4', 'integer', 'int4', 1007],
  [24, 'regproc', 'regproc', 'other', 1008],
  [25, 'text', 'text', 'text', 1009],
  [26, 'oid', 'oid', 'oid', 1028],
  [27, 'tid', 'tid', 'other', 1010],
  [28, 'xid', 'xid', 'other', 1011],
  [29, 'cid', 'cid', 'other', 1012],
  [30, 'oidvector', 'oidvector', 'other', 1013],
  [114, 'json', 'json', 'json', 199],
  [142, 'xml', 'xml', 'other', 143],
  [600, 'point', 'point', 'other', 1017],
  [601, 'lseg', 'lseg', 'other', 1018],
  [602, 'path', 'path', 'other', 1019],
  [603, 'box', 'box', 'other', 1020],
  [604, 'polygon', 'polygon', 'other', 1027],
  [628, 'line', 'line', 'other', 629],
  [650, 'cidr', 'cidr', 'other', 651],
  [700, 'float4', 'real', 'float4', 1021],
  [701, 'float8', 'double precision', 'float8', 1022],
  [718, 'circle', 'circle', 'other', 719],
  [774, 'macaddr8', 'macaddr8', 'other', 775],
  [790, 'money', 'money', 'other', 791],
  [829, 'macaddr', 'macaddr', 'other', 1040],
  [869, 'inet', 'inet', 'other', 1041],
  [1033, 'aclitem', 'aclitem', 'other', 1034],
  [1042, 'bpchar', 'character', 'bpchar', 1014],
  [1043, 'varchar', 'character varying', 'text', 1015],
  [1082, 'date', 'date', 'date', 1182],
  [1083, 'time', 'time without time zone', 'time', 1183],
  [1114, 'timestamp', 'timestamp without time zone', 'timestamp', 1115],
  [1184, 'timestamptz', 'timestamp with time zone', 'timestamptz', 1185],
  [1186, 'interval', 'interval', 'interval', 1187],
  [1266, 'timetz', 'time with time zone', 'timetz', 1270],
  [1560, 'bit', 'bit', 'other', 1561],
  [1562, 'varbit', 'bit varying', 'other', 1563],
  [1700, 'numeric', 'numeric', 'numeric', 1231],
  [1790, 'refcursor', 'refcursor', 'other', 2201],
  [2202, 'regprocedure', 'regprocedure', 'other', 2207],
  [2203, 'regoper', 'regoper', 'other', 2208],
  [2204, 'regoperator', 'regoperator', 'other', 2209],
  [2205, 'regclass', 'regclass', 'other', 2210],
  [2206, 'regtype', 'regtype', 'other', 2211],
  [2950, 'uuid', 'uuid', 'uuid', 2951],
  [2970, 'txid_snapshot', 'txid_snapshot', 'other', 2949],
  [3220, 'pg_lsn', 'pg_lsn', 'other', 3221],
  [3614, 'tsvector', 'tsvector', 'other', 3643],
  [3615, 'tsquery', 'tsquery', 'other', 3645],
  [3734, 'regconfig', 'regconfig', 'other', 3735],
  [3769, 'regdictionary', 'regdictionary', 'other', 3770],
  [3802, 'jsonb', 'jsonb', 'jsonb', 3807],
  [3904, 'int4range', 'int4range', 'other', 3905],
  [3906, 'numrange', 'numrange', 'other', 3907],
  [3908, 'tsrange', 'tsrange', 'other', 3909],
  [3910, 'tstzrange', 'tstzrange', 'other', 3911],
  [3912, 'daterange', 'daterange', 'other', 3913],
  [3926, 'int8range', 'int8range', 'other', 3927],
  [4072, 'jsonpath', 'jsonpath', 'other', 4073],
  [4089, 'regnamespace', 'regnamespace', 'other', 4090],
  [4096, 'regrole', 'regrole', 'other', 4097],
  [4191, 'regcollation', 'regcollation', 'other', 4192],
  [4451, 'int4multirange', 'int4multirange', 'other', 6150],
  [4532, 'nummultirange', 'nummultirange', 'other', 6151],
  [4533, 'tsmultirange', 'tsmultirange', 'other', 6152],
  [4534, 'tstzmultirange', 'tstzmultirange', 'other', 6153],
  [4535, 'datemultirange', 'datemultirange', 'other', 6155],
  [4536, 'int8multirange', 'int8multirange', 'other', 6157],
  [5038, 'pg_snapshot', 'pg_snapshot', 'other', 5039],
  [5069, 'xid8', 'xid8', 'other', 271],
];

const TABLE = new Map<number, PgTypeInfo>();
for (const [oid, name, sqlName, kind, arrayOid] of BUILTIN) {
  // box is the only built-in type whose array delimiter is not a comma.
  const delimiter = oid === 603 ? ';' : ',';
  TABLE.set(oid, { oid, name, sqlName, kind, elementOid: 0, delimiter });
  const array = { name: `_${name}`, sqlName: `${sqlName}[]`, kind: 'array' as const, elementOid: oid, delimiter };
  TABLE.set(arrayOid, { oid: arrayOid, ...array });
}

/** The built-in entry for an oid, if any. */
export function builtinType(oid: number): PgTypeInfo | undefined {
  return TABLE.get(oid);
}

/** All built-in entries (scalars and their arrays). */
export function builtinTypes(): IterableIterator<PgTypeInfo> {
  return TABLE.values();
}

/**
 * Built-in table first, then the resolver. An unknown oid yields an `other` type named `unknown`: its values
 * render as JSON strings of their text form, which is what to_jsonb does for most types without a JSON mapping.
 */
export function resolveType(oid: number, resolver?: TypeResolver): PgTypeInfo {
  return TABLE.get(oid) ?? resolver?.(oid) ?? unknownType(oid);
}

function unknownType(oid: number): PgTypeInfo {
  return { oid, name: 'unknown', sqlName: 'unknown', kind: 'other', elementOid: 0, delimiter: ',' };
}

/**
 * Reads what {@link typeInfoFromCatalog} needs for the given oids (`$1` = oid[]). Enum labels come in sort order so
 * enum comparisons can follow `enumsortorder`.
 */
export const TYPE_CATALOG_QUERY = `SELECT t.oid::int8 AS oid, t.typname::text AS name, t.oid::regtype::text AS sql_name,
       t.typtype::text AS typtype, t.typelem::int8 AS elem, t.typbasetype::int8 AS base,
       t.typdelim::text AS delim,
       CASE WHEN t.typtype = 'e' THEN
         (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
            FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid)
       END AS enum_labels
  FROM pg_catalog.pg_type t
 WHERE t.oid = ANY($1::oid[])`;

/** One row of {@link TYPE_CATALOG_QUERY} (oids may arrive as strings from an int8 column). */
export interface CatalogTypeRow {
  oid: number | string;
  name: string;
  sql_name: string;
  typtype: string;
  elem: number | string;
  base: number | string;
  delim: string;
  enum_labels: string[] | null;
}

/**
 * Maps a catalog row to type information. Domains take their base type's kind (to_jsonb and the operators look
 * through domains) but keep their own name; arrays need their element resolvable for the element's delimiter.
 */
export function typeInfoFromCatalog(row: CatalogTypeRow, resolver?: TypeResolver): PgTypeInfo {
  const oid = Number(row.oid);
  const elem = Number(row.elem);
  const base = Number(row.base);
  const common = { oid, name: row.name, sqlName: row.sql_name, delimiter: ',' };
  if (row.typtype === 'd' && base !== 0) {
    const b = resolveType(base, resolver);
    return { ...common, kind: b.kind, elementOid: b.elementOid, delimiter: b.delimiter, enumLabels: b.enumLabels };
  }
  if (row.typtype === 'e') return { ...common, kind: 'enum', elementOid: 0, enumLabels: row.enum_labels ?? undefined };
  if (row.typtype === 'b' && elem !== 0 && row.name.startsWith('_')) {
    // The array row carries its own typdelim; elements are separated by the element type's.
    return { ...common, kind: 'array', elementOid: elem, delimiter: resolveType(elem, resolver).delimiter };
  }
  const delimiter = row.delim || ',';
  if (row.name === 'citext') return { ...common, kind: 'citext', elementOid: 0, delimiter };
  return { ...common, kind: 'other', elementOid: 0, delimiter };
}
