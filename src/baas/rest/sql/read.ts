/**
 * Rendering a ReadNode tree: each level is one SELECT producing a `pgrst_row` JSON value per row (keys are
 * parameters), embedded resources are LATERAL subqueries (to-one: the row object; to-many: json_agg of rows),
 * filters/order/limit apply per level. Count queries reuse the same conditions without the joins.
 */
import { isAllRows, rangeLimit } from '../grammar/range.js';
import { isToOne } from '../schema/relationships.js';
import { jsonObjectSql, type Params, qualified, quoteIdent } from './fragments.js';
import type { ReadNode } from './plan-types.js';
import { columnSql, conditionSql, embedAlias } from './where.js';

/** The name of the base CTE a `cte` source reads (mutation RETURNING rows or function results). */
export const BASE_CTE = 'pgrst_base';

export type RowFormat = 'json' | 'record';

function fromSql(node: ReadNode, parent: ReadNode | null): string {
  const from = node.source.from;
  const computed = node.relationship?.computed;
  if (computed && parent) return `${qualified(computed.schema, computed.name)}(${parentRowSql(parent)}) AS ${quoteIdent(node.alias)}`;
  let sql = `${from.kind === 'table' ? qualified(from.schema, from.name) : quoteIdent(BASE_CTE)} AS ${quoteIdent(node.alias)}`;
  const junction = node.relationship?.junction;
  if (junction) sql += `, ${qualified(junction.table.schema, junction.table.name)} AS ${quoteIdent(`${node.alias}_j`)}`;
  return sql;
}

/** The parent's row as its table's type, the argument of a computed relationship's function. */
function parentRowSql(parent: ReadNode): string {
  const from = parent.source.from;
  const origin = parent.source.origin;
  // A table row is that type already; rows of a mutation or a call (a CTE) are made one.
  if (from.kind === 'table' || !origin) return quoteIdent(parent.alias);
  return `ROW(${quoteIdent(parent.alias)}.*)::${qualified(origin.schema, origin.name)}`;
}

/** How a child joins its parent: FK column pairs, or through the junction table of a many-to-many. */
function joinConditions(child: ReadNode, parent: ReadNode): string[] {
  const rel = child.relationship;
  if (!rel) return [];
  // A function returning one composite gives a row of NULLs for "no row": that is no related row.
  if (rel.computed) return rel.computed.setOf ? [] : [`NOT (${quoteIdent(child.alias)} IS NULL)`];
  const col = (alias: string, name: string) => `${quoteIdent(alias)}.${quoteIdent(name)}`;
  if (rel.junction) {
    const j = `${child.alias}_j`;
    return [
      ...rel.junction.sourceColumns.map(([jc, pc]) => `${col(j, jc)} = ${col(parent.alias, pc)}`),
      ...rel.junction.targetColumns.map(([jc, cc]) => `${col(j, jc)} = ${col(child.alias, cc)}`),
    ];
  }
  return rel.columns.map(([pc, cc]) => `${col(child.alias, cc)} = ${col(parent.alias, pc)}`);
}

const childIsToOne = (child: ReadNode): boolean => child.relationship !== undefined && isToOne(child.relationship);

function embedValueSql(child: ReadNode): string {
  return childIsToOne(child) ? `${embedAlias(child)}."pgrst_row"` : `COALESCE(${embedAlias(child)}."pgrst_row", '[]')`;
}

/**
 * The keys and values of a node's output row, in select order; a spread child's outputs come in at its place, read
 * from the columns its own SELECT gives them (`pgrst_s<i>`).
 */
function outputPairs(node: ReadNode, params: Params): Array<{ key: string; value: string }> {
  const pairs: Array<{ key: string; value: string }> = [];
  for (const item of node.items) {
    if (item.kind === 'embed') pairs.push({ key: item.key, value: embedValueSql(item.child) });
    else if (item.kind === 'spread') {
      outputKeys(item.child).forEach((key, i) => pairs.push({ key, value: `${embedAlias(item.child)}."pgrst_s${i}"` }));
    } else {
      const value = columnSql(item.ref, params);
      pairs.push({ key: item.key, value: item.castSql ? `CAST(${value} AS ${item.castSql})` : value });
    }
  }
  return pairs;
}

/** The keys of a node's output row, spreads flattened (the CSV header). */
export function outputKeys(node: ReadNode): string[] {
  return node.items.flatMap((item) => (item.kind === 'spread' ? outputKeys(item.child) : [item.key]));
}

/** The value of one output row: a JSON object of the items (or a ROW for CSV), or a function's scalar. */
export function rowSql(node: ReadNode, params: Params, format: RowFormat): string {
  if (node.source.scalar) return `${quoteIdent(node.alias)}."pgrst_scalar"`;
  const pairs = outputPairs(node, params);
  if (format === 'record') return `ROW(${pairs.map((p) => p.value).join(', ')})`;
  return jsonObjectSql(pairs, params);
}

function lateralJoinSql(child: ReadNode, parent: ReadNode, params: Params): string {
  const sub = nodeSelectSql(child, parent, params, 'json');
  const e = embedAlias(child);
  const join = child.joinType === 'inner' ? 'INNER JOIN LATERAL' : 'LEFT JOIN LATERAL';
  if (childIsToOne(child)) return ` ${join} (${sub}) AS ${e} ON TRUE`;
  const s = quoteIdent(`${child.alias}_s`);
  const on = child.joinType === 'inner' ? `${e}."pgrst_row" IS NOT NULL` : 'TRUE';
  return ` ${join} (SELECT json_agg(${s}."pgrst_row") AS "pgrst_row" FROM (${sub}) AS ${s}) AS ${e} ON ${on}`;
}

function orderSql(node: ReadNode, params: Params): string {
  if (node.order.length === 0) return '';
  const terms = node.order.map((o) => {
    const target = o.target.kind === 'column' ? columnSql(o.target.ref, params) : `${embedAlias(o.target.child)}."pgrst_o${o.target.hidden}"`;
    const dir = o.direction ? ` ${o.direction.toUpperCase()}` : '';
    const nulls = o.nulls ? ` NULLS ${o.nulls.toUpperCase()}` : '';
    return `${target}${dir}${nulls}`;
  });
  return ` ORDER BY ${terms.join(', ')}`;
}

function limitSql(node: ReadNode, params: Params): string {
  if (isAllRows(node.range)) return '';
  const limit = rangeLimit(node.range);
  return ` LIMIT ${limit === null ? 'ALL' : params.add(limit.toString())} OFFSET ${params.add(node.range.offset.toString())}`;
}

/** One level: `SELECT <row> AS pgrst_row FROM ... [LATERAL joins] WHERE ... ORDER BY ... LIMIT ... OFFSET ...`. */
export function nodeSelectSql(node: ReadNode, parent: ReadNode | null, params: Params, format: RowFormat): string {
  const row = node.spread ? spreadColumnsSql(node, params) : `${rowSql(node, params, format)} AS "pgrst_row"`;
  const hidden = node.hidden.map((ref, i) => `, ${columnSql(ref, params)} AS "pgrst_o${i}"`).join('');
  const joins = node.children.map((c) => lateralJoinSql(c, node, params)).join('');
  const conditions = [...(parent ? joinConditions(node, parent) : []), ...node.where.map((c) => conditionSql(c, params))];
  const where = conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '';
  return `SELECT ${row}${hidden} FROM ${fromSql(node, parent)}${joins}${where}${orderSql(node, params)}${limitSql(node, params)}`;
}

/** A spread child's outputs as columns (and a marker column, so that a spread of nothing is still a SELECT list). */
function spreadColumnsSql(node: ReadNode, params: Params): string {
  const columns = outputPairs(node, params).map((p, i) => `${p.value} AS "pgrst_s${i}"`);
  return ['TRUE AS "pgrst_row"', ...columns].join(', ');
}

/** The rows a level would return, ignoring limits and output: for `count=exact` and existence tests. */
export function countSql(node: ReadNode, parent: ReadNode | null, params: Params): string {
  const exists = (child: ReadNode): string => countSql(child, node, params);
  const conditions = [
    ...(parent ? joinConditions(node, parent) : []),
    ...node.where.map((c) => conditionSql(c, params, exists)),
    ...node.children.filter((c) => c.joinType === 'inner').map((c) => `EXISTS (${exists(c)})`),
  ];
  return `SELECT 1 FROM ${fromSql(node, parent)}${conditions.length ? ` WHERE ${conditions.join(' AND ')}` : ''}`;
}
