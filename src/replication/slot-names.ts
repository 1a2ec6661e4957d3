import { createHash } from 'node:crypto';

/** The persistent slot of a tenant's database: stable across restarts, distinct per database on a shared cluster. */
export function changesSlotName(tenantId: string, databaseUrl: string): string {
  const tenant = tenantId.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 30);
  return `performer_changes_${tenant}_${databaseTag(databaseUrl)}`;
}

/**
 * A short stable tag of a database's address. Slot names are per cluster, and several tenant databases may share
 * one cluster: the tag keeps their slots apart.
 */
export function databaseTag(databaseUrl: string): string {
  const u = new URL(databaseUrl);
  return createHash('sha256').update(`${u.hostname}:${u.port}${u.pathname}`).digest('hex').slice(0, 10);
}
