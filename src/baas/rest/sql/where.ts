/**
 * WHERE conditions: PostgREST's operators on a resolved column (operands always parameters), `not.`, or/and
 * trees, and the existence test of an embedded resource (`rel=is.null`).
 */
import type { FtsOperator, OpExpr, QuantOperator, SimpleOperator } from '../grammar/ast.js';
import { arrayLiteral, jsonPathSql, type Params, quoteIdent } from './fragments.js';
import type { ColumnRef, Condition, ReadNode } from './plan-types.js';

const QUANT: Record<QuantOperator, string> = {
  eq: '=',
  gte: '>=',
  gt: '>',
  lte: '<=',
  lt: '<',
  like: 'LIKE',
  ilike: 'ILIKE',
  match: '~',
  imatch: '~*',
};

const SIMPLE: Record<SimpleOperator, string> = {
  neq: '<>',
  cs: '@>',
  cd: '<@',
  ov: '&&',
  sl: '<<',
  sr: '>>',
  nxr: '&<',
  nxl: '&>',
  adj: '-|-',
};

const FTS: Record<FtsOperator, string> = {
  fts: 'to_tsquery',
  plfts: 'plainto_tsquery',
  phfts: 'phraseto_tsquery',
  wfts: 'websearch_to_tsquery',
};

const IS = { null: 'NULL', not_null: 'NOT NULL', true: 'TRUE', false: 'FALSE', unknown: 'UNKNOWN' } as const;

const isJsonType = (ref: ColumnRef): boolean =>
  ['json', 'jsonb'].includes(ref.column.typeName) || ['json', 'jsonb'].includes(ref.column.baseTypeName);

/** `"alias"."col"`, or with a JSON path `("alias"."col" -> $1::text ->> $2::text)` (to_jsonb for non-JSON types). */
export function columnSql(ref: ColumnRef, params: Params): string {
  const base = `${quoteIdent(ref.node.alias)}.${quoteIdent(ref.column.name)}`;
  if (ref.jsonPath.length === 0) return base;
  return `(${isJsonType(ref) ? base : `to_jsonb(${base})`}${jsonPathSql(ref.jsonPath, params)})`;
}

export function filterSql(ref: ColumnRef, expr: OpExpr, params: Params): string {
  const op = expr.operation;
  const lhs = columnSql(ref, params);
  let sql: string;
  switch (op.kind) {
    case 'quant': {
      const value = op.op === 'like' || op.op === 'ilike' ? op.value.replace(/\*/g, '%') : op.value;
      const p = params.add(value);
      sql = `${lhs} ${QUANT[op.op]} ${op.quantifier ? `${op.quantifier.toUpperCase()}(${p})` : p}`;
      break;
    }
    case 'simple':
      sql = `${lhs} ${SIMPLE[op.op]} ${params.add(op.value)}`;
      break;
    case 'in':
      sql = `${lhs} = ANY(${params.add(op.values.length === 1 && op.values[0] === '' ? '{}' : arrayLiteral(op.values))})`;
      break;
    case 'is':
      sql = `${lhs} IS ${IS[op.value]}`;
      break;
    case 'isdistinct':
      sql = `${lhs} IS DISTINCT FROM ${params.add(op.value)}`;
      break;
    case 'fts': {
      const config = () => (op.config !== undefined ? `${params.add(op.config)}, ` : '');
      const isTsvector = ref.jsonPath.length === 0 && ref.column.baseTypeName === 'tsvector';
      const target = isTsvector ? lhs : `to_tsvector(${config()}${lhs})`;
      sql = `${target} @@ ${FTS[op.op]}(${config()}${params.add(op.value)})`;
      break;
    }
  }
  return expr.negated ? `NOT (${sql})` : sql;
}

/** The lateral alias of an embedded child, whose `pgrst_row` column carries its JSON. */
export const embedAlias = (child: ReadNode): string => quoteIdent(`${child.alias}_e`);

/**
 * One condition. `exists` renders a child's existence test for count queries (which have no lateral joins); the
 * main query tests the joined row instead.
 */
export function conditionSql(c: Condition, params: Params, exists?: (child: ReadNode) => string): string {
  switch (c.kind) {
    case 'filter':
      return filterSql(c.ref, c.expr, params);
    case 'null-embed':
      if (exists) return `${c.isNull ? 'NOT ' : ''}EXISTS (${exists(c.child)})`;
      return `${embedAlias(c.child)}."pgrst_row" IS ${c.isNull ? '' : 'NOT '}NULL`;
    case 'logic': {
      const joined = c.children.map((child) => conditionSql(child, params, exists)).join(c.op === 'and' ? ' AND ' : ' OR ');
      return `${c.negated ? 'NOT ' : ''}(${joined})`;
    }
  }
}
