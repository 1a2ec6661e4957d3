import type pg from 'pg';
import { actAs, inRolledBackTransaction } from '../db/rls.js';
import {
  TYPE_CATALOG_QUERY,
  builtinType,
  checkSelectColumns,
  compileFilters,
  notEnabledMessage,
  postgresErrorText,
  subscriptionExceptionMessage,
  typeInfoFromCatalog,
  type Binding,
  type CatalogTypeRow,
  type PgTypeInfo,
  type TypeResolver,
} from './changes/index.js';
import type { TableIdentity } from './visibility.js';

/** What dispatch needs to know of a table beyond the Relation message: its primary key and whether RLS is on. */
export interface TableMeta extends TableIdentity {
  rlsEnabled: boolean;
}

export interface CatalogColumn {
  name: string;
  typeOid: number;
  selectable: boolean;
}

/**
 * Catalog lookups of the Postgres Changes pipeline, on the tenant's pool: table metadata (cached per relation and
 * refreshed when a Relation message announces a change), publication tables, columns as a role sees them, and
 * user-defined types for rendering (enums, domains, extension types).
 */
export class ChangesCatalog {
  private readonly tables = new Map<number, Promise<TableMeta | null>>();
  private readonly types = new Map<number, PgTypeInfo>();
  private typesLoaded: Promise<void> | null = null;
  readonly resolveType: TypeResolver = (oid) => builtinType(oid) ?? this.types.get(oid);

  constructor(private readonly pool: () => Promise<pg.Pool>) {}

  /** Forget what we knew of a relation (a new Relation message: its shape or settings may have changed). */
  invalidate(relationId: number): void {
    this.tables.delete(relationId);
  }

  table(relationId: number): Promise<TableMeta | null> {
    let meta = this.tables.get(relationId);
    if (!meta) {
      meta = this.loadTable(relationId);
      meta.catch(() => this.tables.delete(relationId));
      this.tables.set(relationId, meta);
    }
    return meta;
  }

  private async loadTable(relationId: number): Promise<TableMeta | null> {
    const pool = await this.pool();
    const { rows } = await pool.query<{ schema: string; name: string; rls: boolean; pk: { name: string; type: string }[] | null }>(
      `SELECT n.nspname AS schema, c.relname AS name, c.relrowsecurity AS rls,
              (SELECT json_agg(json_build_object('name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod))
                                ORDER BY array_position(i.indkey::int2[], a.attnum))
                 FROM pg_catalog.pg_index i
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                WHERE i.indrelid = c.oid AND i.indisprimary) AS pk
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = $1`,
      [relationId],
    );
    const row = rows[0];
    if (!row) return null;
    return { relationId, schema: row.schema, name: row.name, rlsEnabled: row.rls, primaryKey: row.pk ?? [] };
  }

  /** User-defined types, loaded once (and again when an unknown oid shows up). */
  async ensureTypes(oids: readonly number[]): Promise<void> {
    if (oids.every((oid) => this.resolveType(oid) !== undefined)) return;
    this.typesLoaded = null;
    await this.loadTypes();
  }

  private loadTypes(): Promise<void> {
    this.typesLoaded ??= (async () => {
      const pool = await this.pool();
      const { rows } = await pool.query<CatalogTypeRow>(TYPE_CATALOG_QUERY);
      const byOid = new Map(rows.map((r) => [Number(r.oid), r]));
      const resolve: TypeResolver = (oid) => builtinType(oid) ?? this.types.get(oid) ?? fromRow(oid);
      const fromRow = (oid: number): PgTypeInfo | undefined => {
        const row = byOid.get(oid);
        if (!row) return undefined;
        const info = typeInfoFromCatalog(row, resolve);
        this.types.set(oid, info);
        return info;
      };
      for (const oid of byOid.keys()) if (!builtinType(oid)) fromRow(oid);
    })();
    return this.typesLoaded;
  }

  /** Tables of the publication matching a binding's schema/table (`*` = any), as upstream matches them with LIKE. */
  async publicationTables(publication: string, schema: string, table: string): Promise<{ relationId: number; schema: string; name: string }[]> {
    const pool = await this.pool();
    const { rows } = await pool.query<{ oid: number; schemaname: string; tablename: string }>(
      `SELECT format('%I.%I', p.schemaname, p.tablename)::regclass::oid::int AS oid, p.schemaname, p.tablename
         FROM pg_catalog.pg_publication_tables p
        WHERE p.pubname = $1 AND p.schemaname LIKE $2 AND p.tablename LIKE $3
        ORDER BY p.schemaname, p.tablename`,
      [publication, likePattern(schema), likePattern(table)],
    );
    return rows.map((r) => ({ relationId: r.oid, schema: r.schemaname, name: r.tablename }));
  }

  /** A table's columns in attribute order, with whether the subscriber's role may SELECT each. */
  async columnsFor(relationId: number, claims: Record<string, unknown>): Promise<CatalogColumn[] | null> {
    const pool = await this.pool();
    const outcome = await inRolledBackTransaction(pool, async (client) => {
      if (!(await actAs(client, { topic: '', claims }))) return null;
      const { rows } = await client.query<{ name: string; type: number; selectable: boolean }>(
        `SELECT a.attname AS name, a.atttypid::int AS type,
                pg_catalog.has_column_privilege(a.attrelid, a.attnum, 'SELECT') AS selectable
           FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum`,
        [relationId],
      );
      return rows.map((r) => ({ name: r.name, typeOid: r.type, selectable: r.selectable }));
    });
    return outcome.ok ? outcome.value : null;
  }

  /**
   * Checks a channel's bindings against the publication and the tables' columns as its role sees them.
   * Returns the upstream `system` error text of the first binding that cannot be subscribed.
   */
  async validateBindings(publication: string, bindings: readonly Binding[], claims: Record<string, unknown>): Promise<string | null> {
    for (const binding of bindings) {
      const tables = await this.publicationTables(publication, binding.schema, binding.table);
      if (tables.length === 0) return notEnabledMessage(binding);
      for (const table of tables) {
        const columns = await this.columnsFor(table.relationId, claims);
        if (columns === null) return notEnabledMessage(binding);
        await this.ensureTypes(columns.map((c) => c.typeOid));
        const selectable = (name: string) => columns.some((c) => c.name === name && c.selectable);
        const selectError = checkSelectColumns(binding.select, columns, selectable);
        if (selectError) return subscriptionExceptionMessage(binding, postgresErrorText(selectError));
        const compiled = compileFilters(binding.filters, columns, { types: this.resolveType, selectable });
        if (!compiled.ok) return subscriptionExceptionMessage(binding, postgresErrorText(compiled.error));
      }
    }
    return null;
  }
}

/** `*` means any; other characters are taken literally, as upstream's LIKE on names (which never contain %/_ escapes in practice). */
function likePattern(name: string): string {
  return name === '*' ? '%' : name.replace(/[\\%_]/g, (c) => `\\${c}`);
}
