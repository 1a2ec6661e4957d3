import type pg from 'pg';
import { actAs, inRolledBackTransaction, type RlsFailure, type RlsOptions } from '../db/rls.js';

/** A table as the visibility check needs it: its qualified name and primary key with type names. */
export interface TableIdentity {
  relationId: number;
  schema: string;
  name: string;
  /** Primary key columns (name and `format_type` text), in key order. */
  primaryKey: { name: string; type: string }[];
}

/** Who looks: the subscriber's claims (its role is `claims.role`). */
export interface Viewer {
  claims: Record<string, unknown>;
}

export interface Visibility {
  /** Indexes (into the keys asked about) of the rows the viewer can SELECT. */
  visible: Set<number>;
  /** Columns the viewer may SELECT, by name (`has_column_privilege`). */
  columns: Set<string>;
  /** False when the viewer cannot even read the primary key: upstream's `Error 401: Unauthorized` payload. */
  pkReadable: boolean;
}

/**
 * What one viewer may see of a batch of changed rows of one table: a single rolled-back transaction as the
 * viewer's role and claims, whatever the number of rows (the batching upstream's per-change polling lacks).
 * Rows are looked up by primary key in the current table state, as upstream's check does.
 */
export async function checkVisibility(
  pool: pg.Pool,
  table: TableIdentity,
  keys: (string | null)[][],
  viewer: Viewer,
  rlsEnabled: boolean,
  /** Only the transaction's options (latency); the viewer's claims come from `viewer`. */
  opts: Pick<RlsOptions, 'latencyMs'> = {},
): Promise<{ ok: true; value: Visibility } | { ok: false; failure: RlsFailure }> {
  return inRolledBackTransaction(pool, async (client) => {
    if (!(await actAs(client, { topic: '', claims: viewer.claims }))) {
      return { visible: new Set<number>(), columns: new Set<string>(), pkReadable: false };
    }
    const cols = await client.query<{ attname: string }>(
      `SELECT a.attname FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
          AND pg_catalog.has_column_privilege(a.attrelid, a.attnum, 'SELECT')`,
      [table.relationId],
    );
    const columns = new Set(cols.rows.map((r) => r.attname));
    const pkReadable = table.primaryKey.every((pk) => columns.has(pk.name));
    if (!pkReadable) return { visible: new Set<number>(), columns, pkReadable };
    if (!rlsEnabled || keys.length === 0 || table.primaryKey.length === 0) {
      return { visible: new Set(keys.map((_k, i) => i)), columns, pkReadable };
    }
    const qualified = `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
    if (table.primaryKey.length === 1) {
      // A single-column key: an index lookup with = ANY, instead of a join the planner may turn into a scan.
      const pk = table.primaryKey[0]!;
      const res = await client.query<{ k: string }>(
        `SELECT t.${quoteIdent(pk.name)}::text AS k FROM ${qualified} t WHERE t.${quoteIdent(pk.name)} = ANY ($1::${pk.type}[])`,
        [keys.map((k) => k[0])],
      );
      const found = new Set(res.rows.map((r) => r.k));
      const visible = new Set<number>();
      keys.forEach((k, i) => {
        if (k[0] !== null && found.has(k[0])) visible.add(i);
      });
      return { visible, columns, pkReadable };
    }
    const match = table.primaryKey
      .map((pk, i) => `t.${quoteIdent(pk.name)} = (k.v ->> ${i})::${pk.type}`)
      .join(' AND ');
    const res = await client.query<{ i: string }>(
      `SELECT k.i - 1 AS i FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS k(v, i)
        WHERE EXISTS (SELECT 1 FROM ${qualified} t WHERE ${match})`,
      [JSON.stringify(keys)],
    );
    return { visible: new Set(res.rows.map((r) => Number(r.i))), columns, pkReadable };
  }, opts);
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Waits (polling, at most `timeoutMs`) until transactions logical decoding has delivered are visible to new
 * snapshots. Postgres writes a commit to the WAL, where the walsender reads it, before it takes the transaction out
 * of the running set; with synchronous replication the gap lasts until the standby answers. A row looked up by
 * primary key in that gap is missing, which would read as "hidden by RLS". `xids` are pgoutput's 32-bit ids, placed
 * in the epoch next to the snapshot's xmax. False when the time ran out.
 */
export async function untilVisible(pool: pg.Pool, xids: readonly number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    const { rows } = await pool.query<{ visible: boolean | null }>(VISIBLE_QUERY, [xids]);
    if (rows[0]?.visible !== false) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

const VISIBLE_QUERY = `
  SELECT bool_and(pg_catalog.pg_visible_in_snapshot((x.full)::text::xid8, v.s)) AS visible
    FROM (SELECT s, pg_catalog.pg_snapshot_xmax(s)::text::numeric AS xmax FROM pg_catalog.pg_current_snapshot() AS s) v
    CROSS JOIN LATERAL (
      SELECT CASE
               WHEN base + id > v.xmax + 2147483648 THEN base + id - 4294967296
               WHEN base + id < v.xmax - 2147483648 THEN base + id + 4294967296
               ELSE base + id
             END AS full
        FROM unnest($1::bigint[]) AS i(id), LATERAL (SELECT v.xmax - mod(v.xmax, 4294967296) AS base) b
    ) x`;
