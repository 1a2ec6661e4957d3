/**
 * Relationships for embedding, derived from foreign keys as PostgREST does: each FK gives a many-to-one (or
 * one-to-one when its columns are a primary/unique key) and the inverse one-to-many (one-to-one); a table whose
 * primary key holds two FKs is a junction giving many-to-many. Embedding then picks one by target and hint.
 */
import { RestError } from '../errors.js';
import { keyOf, type QualifiedName, type Relationship, type SchemaCache, type Table } from './types.js';

export interface ForeignKey {
  constraint: string;
  schema: string;
  name: string;
  foreignSchema: string;
  foreignName: string;
  columns: string[];
  foreignColumns: string[];
  oneToOne: boolean;
}

const zip = (a: string[], b: string[]): Array<[string, string]> => a.map((x, i) => [x, b[i]]);
const swap = (pairs: Array<[string, string]>): Array<[string, string]> => pairs.map(([a, b]) => [b, a]);
const same = (a: QualifiedName, b: QualifiedName) => a.schema === b.schema && a.name === b.name;

export function deriveRelationships(tables: Map<string, Table>, fks: readonly ForeignKey[]): Map<string, Relationship[]> {
  const direct: Relationship[] = fks.map((fk) => {
    const table = { schema: fk.schema, name: fk.name };
    const foreignTable = { schema: fk.foreignSchema, name: fk.foreignName };
    return {
      table,
      foreignTable,
      isSelf: same(table, foreignTable),
      cardinality: fk.oneToOne ? 'o2o' : 'm2o',
      constraint: fk.constraint,
      columns: zip(fk.columns, fk.foreignColumns),
      ...(fk.oneToOne ? { isParent: false } : {}),
    };
  });
  const inverse: Relationship[] = direct.map((r) => ({
    table: r.foreignTable,
    foreignTable: r.table,
    isSelf: r.isSelf,
    cardinality: r.cardinality === 'm2o' ? 'o2m' : 'o2o',
    constraint: r.constraint,
    columns: swap(r.columns),
    ...(r.cardinality === 'o2o' ? { isParent: true } : {}),
  }));
  const manyToMany: Relationship[] = [];
  const m2oByTable = new Map<string, Relationship[]>();
  for (const r of direct) if (r.cardinality === 'm2o') m2oByTable.set(keyOf(r.table), [...(m2oByTable.get(keyOf(r.table)) ?? []), r]);
  for (const [junctionKey, rels] of m2oByTable) {
    const pk = new Set(tables.get(junctionKey)?.primaryKey ?? []);
    for (const a of rels) {
      for (const b of rels) {
        if (a.constraint === b.constraint) continue;
        const cols = [...a.columns.map((c) => c[0]), ...b.columns.map((c) => c[0])];
        if (!cols.every((c) => pk.has(c))) continue;
        manyToMany.push({
          table: a.foreignTable,
          foreignTable: b.foreignTable,
          isSelf: same(a.foreignTable, b.foreignTable),
          cardinality: 'm2m',
          constraint: '',
          columns: [],
          junction: { table: a.table, constraint1: a.constraint, constraint2: b.constraint, sourceColumns: a.columns, targetColumns: b.columns },
        });
      }
    }
  }
  const byOrigin = new Map<string, Relationship[]>();
  for (const r of [...direct, ...manyToMany, ...inverse]) byOrigin.set(keyOf(r.table), [...(byOrigin.get(keyOf(r.table)) ?? []), r]);
  return byOrigin;
}

export const isToOne = (r: Relationship): boolean => r.cardinality === 'm2o' || r.cardinality === 'o2o';

const singleColumn = (r: Relationship, side: 0 | 1): string | undefined =>
  r.cardinality !== 'm2m' && r.columns.length === 1 ? r.columns[0][side] : undefined;

function describe(r: Relationship): Record<string, string> {
  const cols = (pairs: Array<[string, string]>, side: 0 | 1) => `(${pairs.map((p) => p[side]).join(', ')})`;
  const cardinality = { m2o: 'many-to-one', o2m: 'one-to-many', o2o: 'one-to-one', m2m: 'many-to-many' }[r.cardinality];
  const relationship = r.computed
    ? `${r.computed.name}(${r.table.name})`
    : r.junction
    ? `${r.junction.table.name} using ${r.junction.constraint1}${cols(r.junction.sourceColumns, 0)} and ${r.junction.constraint2}${cols(r.junction.targetColumns, 0)}`
    : `${r.constraint} using ${r.table.name}${cols(r.columns, 0)} and ${r.foreignTable.name}${cols(r.columns, 1)}`;
  return { cardinality, embedding: `${r.table.name} with ${r.foreignTable.name}`, relationship };
}

/**
 * PostgREST's findRel: the relationship from `origin` (a table of `schema`) to `target` (a table, an FK name or an
 * FK column), optionally disambiguated by `hint`. PGRST200 when none, 300 PGRST201 when several.
 */
export function findRelationship(cache: SchemaCache, schema: string, origin: string, target: string, hint: string | undefined): Relationship {
  const candidates = (cache.relationships.get(keyOf({ schema, name: origin })) ?? []).filter((r) => r.foreignTable.schema === schema);
  const viewTarget = (r: Relationship) => cache.tables.get(keyOf(r.foreignTable))?.kind === 'view';
  const matches = candidates.filter((r) => {
    // Embedded by the function's name only, never by its table's (PostgREST's computed relationships).
    if (r.computed) return hint === undefined && target === r.computed.name;
    if (r.isSelf) {
      if (hint === undefined) {
        return (target === r.foreignTable.name && r.cardinality === 'o2m') || (singleColumn(r, 0) === target && r.cardinality === 'm2o');
      }
      return target === r.foreignTable.name && r.cardinality === 'o2m' && singleColumn(r, 1) === hint;
    }
    if (hint === undefined) {
      return (
        target === r.foreignTable.name ||
        (r.cardinality !== 'm2m' && r.constraint === target && !viewTarget(r)) ||
        (singleColumn(r, 0) === target && !viewTarget(r))
      );
    }
    return (
      target === r.foreignTable.name &&
      ((r.cardinality !== 'm2m' && r.constraint === hint) ||
        singleColumn(r, 0) === hint ||
        singleColumn(r, 1) === hint ||
        r.junction?.table.name === hint)
    );
  });
  if (matches.length === 1) return matches[0];
  if (matches.length === 0) throw RestError.noRelationship(origin, target, hint, schema);
  throw RestError.ambiguousRelationship(
    origin,
    target,
    matches.map(describe),
    matches.map((r) => `'${r.foreignTable.name}!${r.junction ? r.junction.table.name : r.constraint}'`),
  );
}
