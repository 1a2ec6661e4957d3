/**
 * The typed AST of a PostgREST request (query string + headers), as parsed by src/baas/rest/grammar. Names follow
 * PostgREST's concepts so the planner reads like its documentation.
 */

/** One `->` / `->>` step of a JSON path: a key, or an array index kept with its sign (`+1`, `-2`). */
export interface JsonStep {
  arrow: '->' | '->>';
  key: { kind: 'key'; value: string } | { kind: 'index'; value: string };
}

/** A column (or `*`) with an optional JSON path. */
export interface Field {
  name: string;
  jsonPath: JsonStep[];
}

export type AggregateFunction = 'sum' | 'avg' | 'count' | 'max' | 'min';
export type JoinType = 'inner' | 'left';

export type SelectItem =
  | {
      type: 'field';
      field: Field;
      alias?: string;
      cast?: string;
      aggregate?: AggregateFunction;
      aggregateCast?: string;
    }
  | {
      type: 'relation';
      relation: string;
      alias?: string;
      hint?: string;
      joinType?: JoinType;
      children: SelectItem[];
    }
  | {
      type: 'spread';
      relation: string;
      hint?: string;
      joinType?: JoinType;
      children: SelectItem[];
    };

export type SimpleOperator = 'neq' | 'cs' | 'cd' | 'ov' | 'sl' | 'sr' | 'nxr' | 'nxl' | 'adj';
export type QuantOperator = 'eq' | 'gte' | 'gt' | 'lte' | 'lt' | 'like' | 'ilike' | 'match' | 'imatch';
export type FtsOperator = 'fts' | 'plfts' | 'phfts' | 'wfts';
export type IsValue = 'null' | 'not_null' | 'true' | 'false' | 'unknown';

export type Operation =
  | { kind: 'simple'; op: SimpleOperator; value: string }
  | { kind: 'quant'; op: QuantOperator; quantifier?: 'any' | 'all'; value: string }
  | { kind: 'in'; values: string[] }
  | { kind: 'is'; value: IsValue }
  | { kind: 'isdistinct'; value: string }
  | { kind: 'fts'; op: FtsOperator; config?: string; value: string };

export interface OpExpr {
  negated: boolean;
  operation: Operation;
}

export interface Filter {
  field: Field;
  expr: OpExpr;
}

/** A filter without an operator: an argument of a GET/HEAD rpc call (`?a=1`). */
export interface RpcArgument {
  name: string;
  value: string;
}

export type LogicTree =
  | { type: 'filter'; filter: Filter }
  | { type: 'expr'; negated: boolean; op: 'and' | 'or'; children: LogicTree[] };

export type OrderTerm =
  | { type: 'field'; field: Field; direction?: 'asc' | 'desc'; nulls?: 'first' | 'last' }
  | { type: 'relation'; relation: string; field: Field; direction?: 'asc' | 'desc'; nulls?: 'first' | 'last' };

/** A path of embedded resources (by name or alias) from the root: `films.roles.limit` -> ['films', 'roles']. */
export type EmbedPath = string[];

/** Rows `[offset, upper]` (inclusive); `upper: null` is unbounded. Empty when upper < offset. */
export interface RowRange {
  offset: bigint;
  upper: bigint | null;
}

export interface QueryParams {
  select: SelectItem[];
  /** Filters in query-string order, with the embedded resource they apply to. */
  filters: Array<{ path: EmbedPath; filter: Filter }>;
  logic: Array<{ path: EmbedPath; tree: LogicTree }>;
  order: Array<{ path: EmbedPath; terms: OrderTerm[] }>;
  /** limit/offset per embed path, keyed by the path joined with '.' ('' for the root). */
  ranges: Map<string, { path: EmbedPath; range: RowRange }>;
  columns?: string[];
  onConflict?: string[];
  /** GET/HEAD rpc arguments (filters without an operator). */
  rpcArguments: RpcArgument[];
  /** Every field name that appears as a filter key (PostgREST's qsFilterFields). */
  filterFields: string[];
}

/** The body of a write or a POST rpc call, as the SQL builder takes it (see ./payload.ts). */
export interface Payload {
  /** The JSON body as received: an object or an array of objects. Postgres parses it (one parameter). */
  json: string;
  isArray: boolean;
  /** Columns written / argument names: the `columns` parameter, else the body's keys. */
  keys: string[];
}
