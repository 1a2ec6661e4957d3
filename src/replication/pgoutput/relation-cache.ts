import { PgoutputDecodeError } from './errors.js';
import type { RelationColumn, RelationMessage, TupleColumn, TupleData } from './types.js';

export interface ZippedColumn extends RelationColumn {
  value: TupleColumn;
}

export interface ZippedTuple {
  relation: RelationMessage;
  columns: ZippedColumn[];
}

/**
 * Relation metadata by relation OID, as last announced by the server.
 * PostgreSQL sends a Relation message before the first change of a relation in
 * a session and again whenever its definition changes, so newest wins. Keep one
 * cache per replication connection.
 */
export class RelationCache {
  private readonly byId = new Map<number, RelationMessage>();

  set(relation: RelationMessage): void {
    this.byId.set(relation.relationId, relation);
  }

  get(relationId: number): RelationMessage | undefined {
    return this.byId.get(relationId);
  }

  /** @throws PgoutputDecodeError when no Relation message was seen for the id. */
  require(relationId: number): RelationMessage {
    const rel = this.byId.get(relationId);
    if (rel === undefined) {
      throw new PgoutputDecodeError(`no Relation message seen for relation id ${relationId}`);
    }
    return rel;
  }

  has(relationId: number): boolean {
    return this.byId.has(relationId);
  }

  delete(relationId: number): boolean {
    return this.byId.delete(relationId);
  }

  clear(): void {
    this.byId.clear();
  }

  get size(): number {
    return this.byId.size;
  }

  /**
   * Pairs each tuple column with its relation column. pgoutput sends tuples
   * with exactly the relation's published columns in order (column lists and
   * dropped/generated columns are already applied on both), so a length
   * mismatch means the cache is stale or the stream is out of sync.
   * @throws PgoutputDecodeError on unknown relation or column count mismatch.
   */
  zip(relationId: number, tuple: TupleData): ZippedTuple {
    const relation = this.require(relationId);
    const cols = relation.columns;
    if (cols.length !== tuple.length) {
      throw new PgoutputDecodeError(
        `tuple has ${tuple.length} column(s) but relation ${relation.namespace}.${relation.name} ` +
          `(id ${relationId}) has ${cols.length}`,
      );
    }
    const columns: ZippedColumn[] = new Array(cols.length);
    for (let i = 0; i < cols.length; i++) {
      const c = cols[i]!;
      columns[i] = {
        flags: c.flags,
        isKey: c.isKey,
        name: c.name,
        typeOid: c.typeOid,
        typeModifier: c.typeModifier,
        value: tuple[i]!,
      };
    }
    return { relation, columns };
  }
}
