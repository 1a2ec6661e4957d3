import pg from 'pg';
import { withLentClient } from '../db/lend.js';
import { tenantMigrations, type TenantMigration } from './migrations/index.js';

export type MigrationLog = (message: string) => void;

// Advisory locks are per database, so this only serialises migrators of the same tenant database.
const MIGRATION_LOCK_KEY = '7218390451162785409';

/** Where a set of migrations records itself: its schema (holding `schema_migrations`) and its advisory lock. */
export interface MigrationTarget {
  schema: string;
  lockKey: string;
  label: string;
}

const TENANT_TARGET: MigrationTarget = { schema: 'realtime', lockKey: MIGRATION_LOCK_KEY, label: 'tenant migration' };

/**
 * Brings a tenant database up to date. Safe to call from several processes at once: they serialise on a
 * session-level advisory lock held by one dedicated connection, and each migration commits on its own.
 * A passed client must not be inside a transaction; a pool lends one connection for the duration.
 */
export function migrateTenantDatabase(
  client: pg.ClientBase | pg.Pool,
  log: MigrationLog = () => undefined,
  migrations: readonly TenantMigration[] = tenantMigrations,
): Promise<{ applied: number[] }> {
  return runMigrations(client, TENANT_TARGET, migrations, log);
}

/** Applies the versioned migrations of one target that are not recorded yet (see migrateTenantDatabase). */
export async function runMigrations(
  client: pg.ClientBase | pg.Pool,
  target: MigrationTarget,
  migrations: readonly TenantMigration[],
  log: MigrationLog = () => undefined,
): Promise<{ applied: number[] }> {
  if (isPool(client)) {
    return withLentClient(client, (lent) => migrateWithClient(lent, target, log, migrations));
  }
  return migrateWithClient(client, target, log, migrations);
}

async function migrateWithClient(
  client: pg.ClientBase,
  target: MigrationTarget,
  log: MigrationLog,
  migrations: readonly TenantMigration[],
): Promise<{ applied: number[] }> {
  const table = `${pg.escapeIdentifier(target.schema)}.schema_migrations`;
  await client.query('SELECT pg_advisory_lock($1::bigint)', [target.lockKey]);
  try {
    await client.query(`
      CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(target.schema)};
      CREATE TABLE IF NOT EXISTS ${table} (
        version bigint PRIMARY KEY,
        inserted_at timestamptz DEFAULT now()
      );
    `);
    const { rows } = await client.query<{ version: string }>(`SELECT version FROM ${table}`);
    const done = new Set(rows.map((row) => Number(row.version)));
    const applied: number[] = [];
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(migration.version)) continue;
      log(`${target.label} ${migration.version} ${migration.name}: applying`);
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        // Explicit inserted_at: an upstream-created table has no default on it.
        await client.query(`INSERT INTO ${table} (version, inserted_at) VALUES ($1, now())`, [migration.version]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        const reason = err instanceof Error ? err.message : String(err);
        throw new Error(`${target.label} ${migration.version} (${migration.name}) failed: ${reason}`, { cause: err });
      }
      applied.push(migration.version);
    }
    if (applied.length > 0) log(`${target.label}s applied: ${applied.join(', ')}`);
    return { applied };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1::bigint)', [target.lockKey]).catch(() => undefined);
  }
}

/** Creates the realtime.messages partitions for yesterday .. today+3 (UTC); run at every tenant start. */
export async function ensureMessagePartitions(client: pg.ClientBase | pg.Pool): Promise<number> {
  const { rows } = await client.query<{ created: number }>(
    `SELECT realtime.create_messages_partitions(
       (now() AT TIME ZONE 'UTC')::date - 1,
       (now() AT TIME ZONE 'UTC')::date + 3
     ) AS created`,
  );
  return rows[0]?.created ?? 0;
}

/** Drops realtime.messages partitions that ended more than keepHours ago (janitor). */
export async function dropOldMessagePartitions(client: pg.ClientBase | pg.Pool, keepHours = 72): Promise<number> {
  const { rows } = await client.query<{ dropped: number }>(
    'SELECT realtime.drop_old_messages_partitions($1) AS dropped',
    [keepHours],
  );
  return rows[0]?.dropped ?? 0;
}

function isPool(client: pg.ClientBase | pg.Pool): client is pg.Pool {
  return client instanceof pg.Pool || typeof (client as { totalCount?: unknown }).totalCount === 'number';
}
