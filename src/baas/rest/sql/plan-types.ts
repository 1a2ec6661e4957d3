/**
 * The resolved read plan: the select tree of a request bound to schema-cache objects (tables, columns,
 * relationships), with SQL aliases assigned. Rendering it (./read.ts) only quotes what is in here.
 */
import type { JoinType, JsonStep, OpExpr, RowRange } from '../grammar/ast.js';
import type { QualifiedName, Relationship } from '../schema/types.js';

export interface ColumnInfo {
  name: string;
  typeName: string;
  baseTypeName: string;
}

/** What a node reads from: a table or view, or the statement's base CTE (mutation or function results). */
export interface Source {
  from: { kind: 'table'; schema: string; name: string } | { kind: 'cte' };
  columns: ColumnInfo[];
  columnsByName: Map<string, ColumnInfo>;
  /** The table whose relationships embedding follows (absent: nothing can be embedded). */
  origin?: QualifiedName;
  /** A function returning a scalar (or set of scalars): the value is the `pgrst_scalar` column. */
  scalar?: boolean;
}

export interface ColumnRef {
  node: ReadNode;
  column: ColumnInfo;
  jsonPath: JsonStep[];
}

export type Condition =
  | { kind: 'filter'; ref: ColumnRef; expr: OpExpr }
  /** `rel=is.null` on an embedded resource: the parent row has no (or some) related row. */
  | { kind: 'null-embed'; child: ReadNode; isNull: boolean }
  | { kind: 'logic'; op: 'and' | 'or'; negated: boolean; children: Condition[] };

export type OutputItem =
  | { kind: 'column'; key: string; ref: ColumnRef; castSql?: string; fromStar: boolean }
  | { kind: 'embed'; key: string; child: ReadNode }
  /** `...rel(cols)`: the to-one child's outputs become keys of this row (its select gives them as columns). */
  | { kind: 'spread'; child: ReadNode };

export interface OrderEntry {
  target: { kind: 'column'; ref: ColumnRef } | { kind: 'related'; child: ReadNode; hidden: number };
  direction?: 'asc' | 'desc';
  nulls?: 'first' | 'last';
}

export interface ReadNode {
  /** SQL alias of the node's FROM item. */
  alias: string;
  /** How Postgres would name the node in "column x.y does not exist" (PostgREST's aliases). */
  label: string;
  /** The embed as written (relation name) and its alias; paths of filters/orders match alias, else name. */
  name: string;
  relAlias?: string;
  hint?: string;
  joinType?: JoinType;
  depth: number;
  source: Source;
  relationship?: Relationship;
  items: OutputItem[];
  /** Every embedded child (with or without output) in select order. */
  children: ReadNode[];
  where: Condition[];
  order: OrderEntry[];
  range: RowRange;
  /** Extra outputs a parent orders by (`order=rel(col)`), as `pgrst_o<i>`. */
  hidden: ColumnRef[];
  /** An embed with nothing to output (`rel!inner()`): joined for filtering only. */
  empty: boolean;
  /** A spread embed: selects its outputs as columns `pgrst_s<i>` instead of one `pgrst_row`. */
  spread?: boolean;
}

export const nodeKey = (n: ReadNode): string => n.relAlias ?? n.name;
