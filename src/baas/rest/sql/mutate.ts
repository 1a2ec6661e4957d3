/**
 * INSERT / upsert / UPDATE / DELETE of one table or view, as the base CTE of a write statement. The request body is
 * ONE parameter turned into rows by Postgres (json_populate_record[set] over the table's row type), so values are
 * converted to column types exactly as Postgres does; column names come from the schema cache.
 */
import type { Payload, QueryParams } from '../grammar/ast.js';
import type { Preferences } from '../grammar/prefer.js';
import { RestError } from '../errors.js';
import type { Table } from '../schema/types.js';
import { type Params, qualified, quoteIdent } from './fragments.js';
import { resolveCondition, tableSource } from './plan.js';
import type { ReadNode } from './plan-types.js';
import { conditionSql } from './where.js';

export type { Payload };

export type MutationKind = 'insert' | 'update' | 'delete';

const TARGET = 'pgrst_t';
const BODY = 'pgrst_body';

/** The node that root filters of an UPDATE/DELETE resolve against (the table itself, aliased). */
function targetNode(table: Table): ReadNode {
  return {
    alias: TARGET,
    label: table.name,
    name: table.name,
    depth: 0,
    source: tableSource(table),
    items: [],
    children: [],
    where: [],
    order: [],
    range: { offset: 0n, upper: null },
    hidden: [],
    empty: false,
  };
}

function checkKeys(table: Table, keys: readonly string[]): void {
  for (const k of keys) if (!table.columnsByName.has(k)) throw RestError.columnNotFound(table.name, k);
}

/**
 * The rows of the body as a FROM item named pgrst_body. With `missing=default`, absent keys take the column's
 * DEFAULT (the catalog's expression) by merging defaults under each object, as PostgREST does.
 */
function bodyRowsSql(table: Table, payload: Payload, applyDefaults: boolean, params: Params): string {
  const tbl = qualified(table.schema, table.name);
  const p = params.body(payload.json);
  const withDefaults = applyDefaults ? payload.keys.map((k) => table.columnsByName.get(k)!).filter((c) => c.defaultExpr !== null) : [];
  if (withDefaults.length === 0) {
    return `json_populate_record${payload.isArray ? 'set' : ''}(NULL::${tbl}, ${p}::json) AS ${quoteIdent(BODY)}`;
  }
  const chunks: string[] = [];
  for (let i = 0; i < withDefaults.length; i += 50) {
    const pairs = withDefaults.slice(i, i + 50).map((c) => `${params.text(c.name)}, ${c.defaultExpr}`);
    chunks.push(`jsonb_build_object(${pairs.join(', ')})`);
  }
  const defaults = chunks.join(' || ');
  if (!payload.isArray) return `jsonb_populate_record(NULL::${tbl}, ${defaults} || ${p}::jsonb) AS ${quoteIdent(BODY)}`;
  const merged = `(SELECT coalesce(jsonb_agg(${defaults} || "pgrst_e"."value"), '[]') FROM jsonb_array_elements(${p}::jsonb) AS "pgrst_e"("value"))`;
  return `jsonb_populate_recordset(NULL::${tbl}, ${merged}) AS ${quoteIdent(BODY)}`;
}

/** PostgREST's pgrst.inserted counter: +1 per row offered, -1 per conflict turned into an update. */
const insertedCounter = (sign: '+' | '-'): string =>
  `set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0) ${sign} 1)::text, true) <> '${sign === '+' ? '0' : '-1'}'`;

export const INSERTED_SQL = `nullif(current_setting('pgrst.inserted', true), '')::int`;

export interface MutationInput {
  kind: MutationKind;
  table: Table;
  query: QueryParams;
  preferences: Preferences;
  payload?: Payload;
  /** RETURNING list: `*`, some columns, or none (then `RETURNING 1`). */
  returning: string[] | '*';
}

function returningSql(returning: string[] | '*'): string {
  if (returning === '*') return `${quoteIdent(TARGET)}.*`;
  if (returning.length === 0) return '1';
  return returning.map((c) => `${quoteIdent(TARGET)}.${quoteIdent(c)}`).join(', ');
}

/** Root filters and or/and of an UPDATE/DELETE, on the target table. */
function mutationWhere(table: Table, query: QueryParams, params: Params): string {
  const node = targetNode(table);
  const conditions = [
    ...query.filters.filter((f) => f.path.length === 0).map((f) => resolveCondition(node, { type: 'filter', filter: f.filter })),
    ...query.logic.filter((l) => l.path.length === 0).map((l) => resolveCondition(node, l.tree)),
  ];
  return conditions.length ? ` WHERE ${conditions.map((c) => conditionSql(c, params)).join(' AND ')}` : '';
}

export function mutationSql(input: MutationInput, params: Params): string {
  const { kind, table, query, preferences, payload } = input;
  const tbl = `${qualified(table.schema, table.name)} AS ${quoteIdent(TARGET)}`;
  const returning = ` RETURNING ${returningSql(input.returning)}`;
  if (kind === 'delete') return `DELETE FROM ${tbl}${mutationWhere(table, query, params)}${returning}`;
  if (!payload) throw RestError.invalidBody('Empty or invalid json');
  checkKeys(table, payload.keys);
  const applyDefaults = preferences.missing === 'default';
  const cols = payload.keys.map(quoteIdent);
  if (kind === 'update') {
    if (payload.keys.length === 0) return `SELECT ${returningSql(input.returning)} FROM ${tbl} WHERE false`;
    const rows = bodyRowsSql(table, payload, applyDefaults, params);
    const from = payload.isArray ? `(SELECT * FROM ${rows} LIMIT 1) AS ${quoteIdent(BODY)}` : rows;
    const set = cols.map((c) => `${c} = ${quoteIdent(BODY)}.${c}`).join(', ');
    return `UPDATE ${tbl} SET ${set} FROM ${from}${mutationWhere(table, query, params)}${returning}`;
  }
  const merge = preferences.resolution === 'merge-duplicates';
  let source: string;
  if (cols.length > 0) {
    source = `SELECT ${cols.map((c) => `${quoteIdent(BODY)}.${c}`).join(', ')} FROM ${bodyRowsSql(table, payload, applyDefaults, params)}`;
  } else if (payload.isArray) {
    source = `SELECT FROM json_array_elements(${params.body(payload.json)}::json)`;
  } else {
    source = 'SELECT';
  }
  if (merge) source += ` WHERE ${insertedCounter('+')}`;
  let conflict = '';
  if (preferences.resolution) {
    const target = query.onConflict ?? table.primaryKey;
    for (const c of target) if (!table.columnsByName.has(c)) throw RestError.undefinedColumn(null, c);
    if (target.length > 0) {
      const targetSql = target.map(quoteIdent).join(', ');
      conflict =
        merge && cols.length > 0
          ? ` ON CONFLICT (${targetSql}) DO UPDATE SET ${cols.map((c) => `${c} = EXCLUDED.${c}`).join(', ')} WHERE ${insertedCounter('-')}`
          : ` ON CONFLICT (${targetSql}) DO NOTHING`;
    }
  }
  return `INSERT INTO ${tbl}${cols.length ? ` (${cols.join(', ')})` : ''} ${source}${conflict}${returning}`;
}
