/**
 * ONE parameterized statement per REST request (PostgREST's mainRead / mainWrite / mainCall): a base CTE (the
 * mutation or the function call, for writes and rpc), `pgrst_source` with the page rows as JSON, an optional count,
 * and the response text built by Postgres.
 *
 * Result columns: total_result_set (bigint, null without count), page_total (bigint), response_inserted (int,
 * upserts only), location (JSON array text of `col=eq.val` pairs for return=headers-only), body (text). Two layouts
 * (sql/result.ts puts the body together): `whole`, one row whose body is the whole response (mutations, HEAD); and
 * `rows`, reads and calls, one row per result row whose body is that row's JSON (or CSV line), so a large result
 * reaches the client in pieces instead of as one string held whole in Node. The row JSON is still built by
 * Postgres; Node only writes the `[`, `,` and `]` around it. The counts are window aggregates, so the first row
 * carries them (the headers) and an empty result is one row with a NULL body (LEFT JOIN from a single row).
 */
import type { QueryParams, RowRange } from '../grammar/ast.js';
import { isAllRows } from '../grammar/range.js';
import type { Negotiated } from '../grammar/media-type.js';
import type { Preferences } from '../grammar/prefer.js';
import { RestError } from '../errors.js';
import { findTable, type Routine, type SchemaCache, type Table } from '../schema/types.js';
import { callSql, findRoutine, type CallArguments } from './call.js';
import { arrayLiteral, Params, quoteIdent } from './fragments.js';
import { INSERTED_SQL, mutationSql, type MutationKind, type Payload } from './mutate.js';
import { planRead, tableSource } from './plan.js';
import type { ReadNode, Source } from './plan-types.js';
import { BASE_CTE, countSql, nodeSelectSql, outputKeys } from './read.js';
import type { BodyShape, ResultLayout } from './result.js';

export interface BuildInput {
  cache: SchemaCache;
  /** The request's schema (already checked to be exposed). */
  schema: string;
  method: 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'DELETE';
  /** `/rest/v1/<relation>` or `/rest/v1/rpc/<function>`. */
  target: { kind: 'relation'; name: string } | { kind: 'function'; name: string };
  query: QueryParams;
  preferences: Preferences;
  output: Negotiated;
  /** From topLevelRange(method, root limit/offset, Range header). */
  topRange: RowRange;
  /** The parsed body facts of POST/PATCH (and POST rpc). */
  payload?: Payload;
  maxRows?: bigint | null;
}

export interface BuiltStatement {
  text: string;
  values: Array<string | null>;
  /** Indexes in `values` that hold the request body's JSON (http/statement-cache.ts puts each request's body there). */
  bodyParams: readonly number[];
  /** Run it in a READ ONLY transaction (GET/HEAD, and POST rpc of a stable or immutable function). */
  readOnly: boolean;
  /** What the request was, for the response: a read, a mutation, or a call (void calls answer 204). */
  kind: 'read' | MutationKind | 'call';
  returnsVoid: boolean;
  /** How the result rows make the body (sql/result.ts). */
  layout: ResultLayout;
}

function bodySql(shape: BodyShape, root: ReadNode, stripNulls: boolean, params: Params): string {
  const rows = `"pgrst_source"."pgrst_row"`;
  const strip = (sql: string) => (stripNulls ? `json_strip_nulls(${sql})` : sql);
  switch (shape) {
    case 'none':
      return `''::text`;
    case 'array':
      return `coalesce(${strip(`json_agg(${rows})`)}, '[]')::text`;
    case 'first':
      return `coalesce(${strip(`(json_agg(${rows}) -> 0)`)}::text, 'null')`;
    case 'csv': {
      const keys = outputKeys(root).map((key) => params.text(key));
      const header = keys.length ? `concat_ws(',', ${keys.join(', ')})` : `''`;
      const line = `substring(${rows}::text, 2, length(${rows}::text) - 2)`;
      return `(CASE WHEN pg_catalog.count(*) = 0 THEN '' ELSE ${header} END) || E'\\n' || coalesce(string_agg(${line}, E'\\n'), '')`;
    }
  }
}

function readShape(input: BuildInput, routine?: Routine): BodyShape {
  if (input.method === 'HEAD') return 'none';
  if (input.output.format === 'csv') return 'csv';
  if (input.output.format === 'singular') return 'first';
  if (routine && !routine.returns.setOf) return 'first';
  return 'array';
}

function finalSelect(parts: { total: string; body: string; inserted?: string; location?: string }): string {
  return (
    `SELECT ${parts.total} AS total_result_set, pg_catalog.count(*) AS page_total, ` +
    `${parts.inserted ?? 'NULL::int'} AS response_inserted, ${parts.location ?? `'[]'`}::text AS location, ${parts.body} AS body FROM "pgrst_source"`
  );
}

const PAGE_WINDOW = `pg_catalog.count("pgrst_s"."pgrst_p") OVER ()`;

/** The `rows` layout: a row per result row (its JSON or CSV line), the counts on every row as window aggregates. */
function perRowSelect(shape: BodyShape, root: ReadNode, total: string, stripNulls: boolean): string {
  const value = `"pgrst_s"."pgrst_row"`;
  const json = root.source.scalar ? `to_json(${value})` : value;
  const body = shape === 'csv' ? `substring(${value}::text, 2, length(${value}::text) - 2)` : `${stripNulls ? `json_strip_nulls(${json})` : json}::text`;
  return (
    `SELECT ${total === 'pg_catalog.count(*)' ? PAGE_WINDOW : total} AS total_result_set, ${PAGE_WINDOW} AS page_total, NULL::int AS response_inserted, ` +
    `'[]'::text AS location, ${body} AS body ` +
    `FROM (SELECT) AS "pgrst_one" LEFT JOIN (SELECT 1 AS "pgrst_p", "pgrst_row" FROM "pgrst_source") AS "pgrst_s" ON TRUE`
  );
}

function csvHeader(root: ReadNode): string {
  return outputKeys(root).join(',');
}

/** The final SELECT of a read or call: a row per result row, or one row when there is no body to stream. */
function readSelect(shape: BodyShape, root: ReadNode, input: BuildInput, total: string, params: Params): { sql: string; layout: ResultLayout } {
  if (shape === 'none') return { sql: finalSelect({ total, body: bodySql(shape, root, input.output.stripNulls, params) }), layout: { kind: 'whole', shape } };
  return { sql: perRowSelect(shape, root, total, input.output.stripNulls), layout: { kind: 'rows', shape, csvHeader: shape === 'csv' ? csvHeader(root) : '' } };
}

function sourceAndCount(root: ReadNode, input: BuildInput, params: Params, base: string | null): { ctes: string; total: string } {
  const format = input.output.format === 'csv' && input.method !== 'HEAD' ? 'record' : 'json';
  const ctes = [...(base ? [`${quoteIdent(BASE_CTE)} AS (${base})`] : []), `"pgrst_source" AS (${nodeSelectSql(root, null, params, format)})`];
  const counting = input.preferences.count !== undefined; // planned/estimated counted exactly (spec §1.4 allows it)
  if (!counting) return { ctes: ctes.join(', '), total: 'NULL::bigint' };
  if (isAllRows(root.range)) return { ctes: ctes.join(', '), total: 'pg_catalog.count(*)' };
  ctes.push(`"pgrst_source_count" AS (${countSql(root, null, params)})`);
  return { ctes: ctes.join(', '), total: '(SELECT pg_catalog.count(*) FROM "pgrst_source_count")' };
}

function relationTable(input: BuildInput, name: string): Table {
  const table = findTable(input.cache, input.schema, name);
  if (!table) throw RestError.tableNotFound(input.schema, name);
  return table;
}

function buildRead(input: BuildInput, table: Table): BuiltStatement {
  const root = planRead({ cache: input.cache, schema: input.schema, root: tableSource(table), rootName: table.name, query: input.query, rootRange: input.topRange, maxRows: input.maxRows ?? null, isMutation: false });
  const params = new Params();
  const { ctes, total } = sourceAndCount(root, input, params, null);
  const { sql, layout } = readSelect(readShape(input), root, input, total, params);
  return { text: `WITH ${ctes} ${sql}`, values: params.values, bodyParams: params.bodyIndexes, readOnly: true, kind: 'read', returnsVoid: false, layout };
}

/** Columns the representation needs from the mutated rows (PostgREST's inferColsEmbedNeeds), or all. */
function returningFor(root: ReadNode, table: Table): string[] | '*' {
  // A computed relationship's function takes the whole row.
  if (root.items.some((i) => i.kind === 'column' && i.fromStar) || root.children.some((c) => c.relationship?.computed)) return '*';
  const cols = new Set<string>(table.primaryKey);
  for (const i of root.items) if (i.kind === 'column') cols.add(i.ref.column.name);
  for (const o of root.order) if (o.target.kind === 'column') cols.add(o.target.ref.column.name);
  for (const c of root.children) {
    const rel = c.relationship;
    if (rel?.junction) rel.junction.sourceColumns.forEach(([, pc]) => cols.add(pc));
    else rel?.columns.forEach(([pc]) => cols.add(pc));
  }
  return [...cols];
}

function buildMutation(input: BuildInput, table: Table, kind: MutationKind): BuiltStatement {
  const rep = input.preferences.representation;
  const representation = rep === 'full';
  const source: Source = { ...tableSource(table), from: { kind: 'cte' } };
  const root = planRead({ cache: input.cache, schema: input.schema, root: source, rootName: table.name, query: input.query, rootRange: input.topRange, maxRows: null, isMutation: true });
  const returning = representation ? returningFor(root, table) : rep === 'headers-only' && kind === 'insert' ? table.primaryKey : [];
  const params = new Params();
  const base = mutationSql({ kind, table, query: input.query, preferences: input.preferences, ...(input.payload ? { payload: input.payload } : {}), returning }, params);
  const sourceSql = representation
    ? nodeSelectSql(root, null, params, input.output.format === 'csv' ? 'record' : 'json')
    : `SELECT 1 AS "pgrst_row" FROM ${quoteIdent(BASE_CTE)}`;
  const shape: BodyShape = !representation ? 'none' : input.output.format === 'csv' ? 'csv' : input.output.format === 'singular' ? 'first' : 'array';
  const location =
    rep === 'headers-only' && kind === 'insert'
      ? `CASE WHEN pg_catalog.count(*) = 1 THEN coalesce((SELECT json_agg("pgrst_kv"."key" || '=' || coalesce('eq.' || "pgrst_kv"."value", 'is.null')) ` +
        `FROM (SELECT row_to_json("pgrst_r") AS "r" FROM ${quoteIdent(BASE_CTE)} AS "pgrst_r" LIMIT 1) AS "pgrst_d" CROSS JOIN json_each_text("pgrst_d"."r") AS "pgrst_kv" ` +
        `WHERE "pgrst_kv"."key" = ANY(${params.add(arrayLiteral(table.primaryKey))}::text[])), '[]') ELSE '[]' END`
      : undefined;
  const text =
    `WITH ${quoteIdent(BASE_CTE)} AS (${base}), "pgrst_source" AS (${sourceSql}) ` +
    finalSelect({
      total: 'NULL::bigint',
      body: bodySql(shape, root, input.output.stripNulls, params),
      ...(input.preferences.resolution === 'merge-duplicates' && kind === 'insert' ? { inserted: INSERTED_SQL } : {}),
      ...(location ? { location } : {}),
    });
  return { text, values: params.values, bodyParams: params.bodyIndexes, readOnly: false, kind, returnsVoid: false, layout: { kind: 'whole', shape } };
}

function buildCall(input: BuildInput, name: string): BuiltStatement {
  const read = input.method === 'GET' || input.method === 'HEAD';
  const args: CallArguments = read
    ? { kind: 'query', args: input.query.rpcArguments }
    : { kind: 'json', json: input.payload?.json ?? '{}', isArray: input.payload?.isArray ?? false, keys: input.payload?.keys ?? [] };
  const argNames = args.kind === 'query' ? [...new Set(args.args.map((a) => a.name))] : args.keys;
  const routine = findRoutine(input.cache, input.schema, name, argNames, !read);
  const returns = routine.returns;
  const resultTable = returns.table ? findTable(input.cache, returns.table.schema, returns.table.name) : undefined;
  const columns = returns.columns.map((c) => ({ name: c.name, typeName: c.typeName, baseTypeName: c.typeName }));
  const source: Source = {
    from: { kind: 'cte' },
    columns: resultTable ? resultTable.columns : columns,
    columnsByName: new Map((resultTable ? resultTable.columns : columns).map((c) => [c.name, c])),
    ...(resultTable ? { origin: { schema: resultTable.schema, name: resultTable.name } } : {}),
    ...(returns.kind === 'scalar' || returns.kind === 'void' ? { scalar: true } : {}),
  };
  const root = planRead({ cache: input.cache, schema: input.schema, root: source, rootName: name, query: input.query, rootRange: input.topRange, maxRows: input.maxRows ?? null, isMutation: false });
  const params = new Params();
  const base = callSql(routine, args, params);
  const { ctes, total } = sourceAndCount(root, input, params, base);
  const shape = returns.kind === 'void' ? 'none' : readShape(input, routine);
  const { sql, layout } = readSelect(shape, root, input, total, params);
  return { text: `WITH ${ctes} ${sql}`, values: params.values, bodyParams: params.bodyIndexes, readOnly: read || routine.volatility !== 'volatile', kind: 'call', returnsVoid: returns.kind === 'void', layout };
}

/** Builds the statement of one request; throws RestError for anything the schema cache cannot back. */
export function buildStatement(input: BuildInput): BuiltStatement {
  if (input.target.kind === 'function') return buildCall(input, input.target.name);
  const table = relationTable(input, input.target.name);
  switch (input.method) {
    case 'GET':
    case 'HEAD':
      return buildRead(input, table);
    case 'POST':
      return buildMutation(input, table, 'insert');
    case 'PATCH':
      return buildMutation(input, table, 'update');
    case 'DELETE':
      return buildMutation(input, table, 'delete');
  }
}
