/**
 * The REST schema cache: what the SQL builder may name. Every identifier that reaches SQL text comes from here
 * (quoted), never from the request. Built by ./load.ts from the tenant's catalogs.
 */

export interface QualifiedName {
  schema: string;
  name: string;
}

export interface Column {
  name: string;
  /** format_type() of the column, e.g. `character varying(20)`, `public.mood`. */
  type: string;
  /** pg_type.typname (`int4`), and of the base type for a domain. */
  typeName: string;
  baseTypeName: string;
  notNull: boolean;
  /** The DEFAULT expression as Postgres prints it (an identity column's nextval); null when there is none. */
  defaultExpr: string | null;
  /** GENERATED ALWAYS AS (...) STORED: never written. */
  generated: boolean;
}

export type RelationKind = 'table' | 'view' | 'materialized-view' | 'foreign-table' | 'partitioned-table';

export interface Table {
  schema: string;
  name: string;
  kind: RelationKind;
  columns: Column[];
  columnsByName: Map<string, Column>;
  primaryKey: string[];
}

/**
 * A relationship seen from `table`: many-to-one (FK on `table`), one-to-many (FK on `foreignTable`), one-to-one
 * (FK on a unique key; `isParent` when the FK sits on the other side) or many-to-many through a junction table.
 * `columns` pairs a column of `table` with one of `foreignTable` (for m2m: unused).
 */
export interface Relationship {
  table: QualifiedName;
  foreignTable: QualifiedName;
  isSelf: boolean;
  cardinality: 'm2o' | 'o2m' | 'o2o' | 'm2m';
  constraint: string;
  columns: Array<[string, string]>;
  isParent?: boolean;
  /** A computed relationship: this function of the origin's row gives the related rows (no join columns). */
  computed?: QualifiedName & { setOf: boolean };
  junction?: {
    table: QualifiedName;
    constraint1: string;
    constraint2: string;
    /** junction column -> column of `table` */
    sourceColumns: Array<[string, string]>;
    /** junction column -> column of `foreignTable` */
    targetColumns: Array<[string, string]>;
  };
}

export interface RoutineParam {
  /** '' for an unnamed parameter. */
  name: string;
  type: string;
  typeName: string;
  required: boolean;
  variadic: boolean;
}

export interface RoutineReturn {
  kind: 'void' | 'scalar' | 'composite' | 'record';
  setOf: boolean;
  type: string;
  /** The table or view whose row type is returned, when it is one (lets the result embed like a table). */
  table?: QualifiedName;
  /** Output columns of a composite result (OUT / TABLE parameters or the row type's attributes). */
  columns: Array<{ name: string; type: string; typeName: string }>;
}

export interface Routine {
  schema: string;
  name: string;
  params: RoutineParam[];
  returns: RoutineReturn;
  volatility: 'immutable' | 'stable' | 'volatile';
}

export interface SchemaCache {
  /** Exposed schemas, the first is the default. */
  schemas: string[];
  tables: Map<string, Table>;
  /** Relationships by origin table key. */
  relationships: Map<string, Relationship[]>;
  /** Overloads by function key. */
  routines: Map<string, Routine[]>;
  /** Type names a cast may use: per schema (pg_catalog and the exposed ones), typname -> format_type. */
  types: Map<string, Map<string, string>>;
}

export const keyOf = (q: QualifiedName): string => `${q.schema}\u0000${q.name}`;

export function findTable(cache: SchemaCache, schema: string, name: string): Table | undefined {
  return cache.tables.get(keyOf({ schema, name }));
}
