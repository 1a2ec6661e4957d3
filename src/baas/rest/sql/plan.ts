/**
 * Resolves a parsed request against the schema cache into a ReadNode tree (PostgREST's ReadPlan): embeds become
 * relationships, names become cache columns, filters/orders/limits attach to their embed path. Unknown names are
 * PostgREST's errors (PGRST108/118/200/201, 42703, 42704), never SQL.
 */
import type { EmbedPath, Field, LogicTree, OrderTerm, QueryParams, RowRange, SelectItem } from '../grammar/ast.js';
import { capRange } from '../grammar/range.js';
import { RestError } from '../errors.js';
import { findRelationship, isToOne } from '../schema/relationships.js';
import { findTable, type SchemaCache, type Table } from '../schema/types.js';
import { castTypeSql } from './fragments.js';
import { nodeKey, type ColumnRef, type Condition, type OrderEntry, type OutputItem, type ReadNode, type Source } from './plan-types.js';

export interface PlanInput {
  cache: SchemaCache;
  schema: string;
  root: Source;
  /** Table or function name: the root's label and the origin named in relationship errors. */
  rootName: string;
  query: QueryParams;
  /** The top-level range (from topLevelRange); ignored for mutations. */
  rootRange: RowRange;
  /** REST_MAX_ROWS (db-max-rows) for reads; null = no cap. */
  maxRows: bigint | null;
  /** Root filters, root or/and and ranges belong to the mutation, not to the read of its result. */
  isMutation: boolean;
}

const ALL: RowRange = { offset: 0n, upper: null };

export function tableSource(table: Table): Source {
  return {
    from: { kind: 'table', schema: table.schema, name: table.name },
    columns: table.columns,
    columnsByName: new Map(table.columns.map((c) => [c.name, c])),
    origin: { schema: table.schema, name: table.name },
  };
}

/** The output key of a column item: its alias, else the last JSON key of its path, else its name. */
function outputKey(field: Field, alias: string | undefined): string {
  if (alias !== undefined) return alias;
  const path = field.jsonPath;
  if (path.length === 0) return field.name;
  const last = path[path.length - 1];
  if (last.key.kind === 'key') return last.key.value;
  for (let i = path.length - 1; i >= 0; i--) if (path[i].key.kind === 'key') return path[i].key.value;
  return field.name;
}

export function resolveColumn(node: ReadNode, field: Field): ColumnRef {
  const column = node.source.columnsByName.get(field.name);
  if (!column) throw RestError.undefinedColumn(node.label, field.name);
  return { node, column, jsonPath: field.jsonPath };
}

/** A filter or or/and tree on `node`; `rel=is.null` on an embedded child tests the child's existence. */
export function resolveCondition(node: ReadNode, tree: LogicTree): Condition {
  if (tree.type === 'expr') {
    return { kind: 'logic', op: tree.op, negated: tree.negated, children: tree.children.map((c) => resolveCondition(node, c)) };
  }
  const { field, expr } = tree.filter;
  if (field.jsonPath.length === 0 && expr.operation.kind === 'is' && expr.operation.value === 'null') {
    const child = node.children.find((c) => nodeKey(c) === field.name);
    if (child) return { kind: 'null-embed', child, isNull: !expr.negated };
  }
  return { kind: 'filter', ref: resolveColumn(node, field), expr };
}

class Planner {
  private aliasCount = 0;

  constructor(private readonly input: PlanInput) {}

  plan(): ReadNode {
    const { query, root, rootName, isMutation } = this.input;
    this.checkPaths(query);
    const select = query.select.length === 0 ? [{ type: 'field', field: { name: '*', jsonPath: [] } } as SelectItem] : query.select;
    const node = this.buildNode(root, rootName, rootName, select, 0, {});
    for (const { path, filter } of query.filters) {
      if (isMutation && path.length === 0) continue;
      const target = this.walk(node, path);
      target.where.push(resolveCondition(target, { type: 'filter', filter }));
    }
    for (const { path, tree } of query.logic) {
      if (isMutation && path.length === 0) continue;
      const target = this.walk(node, path);
      target.where.push(resolveCondition(target, tree));
    }
    const ordered = new Set<ReadNode>();
    for (const { path, terms } of query.order) {
      const target = this.walk(node, path);
      if (ordered.has(target)) continue; // the first order of a path wins, as upstream
      ordered.add(target);
      target.order = terms.map((t) => this.resolveOrder(target, t));
    }
    if (!isMutation) {
      for (const { path, range } of query.ranges.values()) if (path.length > 0) this.walk(node, path).range = range;
      node.range = this.input.rootRange;
      this.capRanges(node);
    }
    return node;
  }

  /** PGRST108 for a filter/order/limit/or on a resource not embedded by `select`, before anything resolves. */
  private checkPaths(query: QueryParams): void {
    const paths: EmbedPath[] = [
      ...query.filters.map((f) => f.path),
      ...query.order.map((o) => o.path),
      ...(this.input.isMutation ? [] : [...query.ranges.values()].map((r) => r.path)),
      ...query.logic.map((l) => l.path),
    ];
    for (const path of paths) {
      let level = query.select;
      for (const segment of path) {
        const next = level.find((i) => i.type !== 'field' && (i.type === 'relation' ? (i.alias ?? i.relation) : i.relation) === segment);
        if (!next || next.type === 'field') throw RestError.notEmbedded(segment);
        level = next.children;
      }
    }
  }

  private walk(node: ReadNode, path: EmbedPath): ReadNode {
    let cur = node;
    for (const segment of path) {
      const next = cur.children.find((c) => nodeKey(c) === segment);
      if (!next) throw RestError.notEmbedded(segment);
      cur = next;
    }
    return cur;
  }

  private buildNode(
    source: Source,
    name: string,
    label: string,
    select: readonly SelectItem[],
    depth: number,
    meta: Pick<ReadNode, 'relAlias' | 'hint' | 'joinType' | 'relationship'>,
  ): ReadNode {
    const node: ReadNode = {
      alias: `pgrst_${++this.aliasCount}`,
      label,
      name,
      ...meta,
      depth,
      source,
      items: [],
      children: [],
      where: [],
      order: [],
      range: ALL,
      hidden: [],
      empty: false,
    };
    const { cache, schema } = this.input;
    for (const item of select) {
      if (item.type === 'field') {
        if (item.aggregate !== undefined) throw RestError.aggregatesNotAllowed();
        if (item.field.name === '*' && item.field.jsonPath.length === 0) {
          if (source.scalar) continue;
          for (const column of source.columns) {
            node.items.push({ kind: 'column', key: column.name, ref: { node, column, jsonPath: [] }, fromStar: true });
          }
          continue;
        }
        const out: OutputItem = { kind: 'column', key: outputKey(item.field, item.alias), ref: resolveColumn(node, item.field), fromStar: false };
        if (item.cast !== undefined) out.castSql = castTypeSql(cache, schema, item.cast);
        node.items.push(out);
        continue;
      }
      const originName = source.origin?.name ?? name;
      if (!source.origin) throw RestError.noRelationship(originName, item.relation, item.hint, schema);
      const rel = findRelationship(cache, schema, source.origin.name, item.relation, item.hint);
      const table = findTable(cache, rel.foreignTable.schema, rel.foreignTable.name);
      if (!table) throw RestError.noRelationship(originName, item.relation, item.hint, schema);
      // As PostgREST 12: only a to-one relationship spreads (one row's columns into the parent's row).
      if (item.type === 'spread' && !isToOne(rel)) throw RestError.spreadNotToOne(originName, item.relation);
      const child = this.buildNode(tableSource(table), item.relation, `${table.name}_${depth + 1}`, item.children, depth + 1, {
        ...(item.type === 'relation' && item.alias !== undefined ? { relAlias: item.alias } : {}),
        ...(item.hint !== undefined ? { hint: item.hint } : {}),
        ...(item.joinType !== undefined ? { joinType: item.joinType } : {}),
        relationship: rel,
      });
      node.children.push(child);
      if (item.type === 'spread') {
        child.spread = true;
        node.items.push({ kind: 'spread', child });
      } else if (!child.empty) node.items.push({ kind: 'embed', key: item.alias ?? item.relation, child });
    }
    node.empty = depth > 0 && node.items.length === 0 && node.children.every((c) => c.empty);
    return node;
  }

  private resolveOrder(node: ReadNode, term: OrderTerm): OrderEntry {
    const modifiers = { ...(term.direction ? { direction: term.direction } : {}), ...(term.nulls ? { nulls: term.nulls } : {}) };
    if (term.type === 'field') return { target: { kind: 'column', ref: resolveColumn(node, term.field) }, ...modifiers };
    const child = node.children.find((c) => nodeKey(c) === term.relation);
    if (!child) throw RestError.notEmbedded(term.relation);
    if (!child.relationship || !isToOne(child.relationship)) throw RestError.relatedOrderNotToOne(node.source.origin?.name ?? node.name, term.relation);
    child.hidden.push(resolveColumn(child, term.field));
    return { target: { kind: 'related', child, hidden: child.hidden.length - 1 }, ...modifiers };
  }

  private capRanges(node: ReadNode): void {
    node.range = capRange(node.range, this.input.maxRows);
    for (const c of node.children) this.capRanges(c);
  }
}

export function planRead(input: PlanInput): ReadNode {
  return new Planner(input).plan();
}
