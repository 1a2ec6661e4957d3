import pg from 'pg';
import { tenantMigrations, type TenantMigration } from './migrations/index.js';

export type MigrationLog = (message: string) => void;

// Advisory locks are per database, so this only serialises migrators of the same tenant database.
const MIGRATION_LOCK_KEY = '7218390451162785409';

/**
 * Brings a tenant database up to date. Safe to call from several processes at once: they serialise on a
 * session-level advisory lock held by one dedicated connection, and each migration commits on its own.
 * A passed client must not be inside a transaction; a pool lends one connection for the duration.
 */
export async function migrateTenantDatabase(
  client: pg.ClientBase | pg.Pool,
  log: MigrationLog = () => undefined,
  migrations: readonly TenantMigration[] = tenantMigrations,
): Promise<{ applied: number[] }> {
  if (isPool(client)) {
    const lent = await client.connect();
    try {
      return await migrateWithClient(lent, log, migrations);
    } finally {
      lent.release();
    }
  }
  return migrateWithClient(client, log, migrations);
}

async function migrateWithClient(
  client: pg.ClientBase,
  log: MigrationLog,
  migrations: readonly TenantMigration[],
): Promise<{ applied: number[] }> {
  await client.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
  try {
    await client.query(`
      CREATE SCHEMA IF NOT EXISTS realtime;
      CREATE TABLE IF NOT EXISTS realtime.schema_migrations (
        version bigint PRIMARY KEY,
        inserted_at timestamptz DEFAULT now()
      );
    `);
    const { rows } = await client.query<{ version: string }>('SELECT version FROM realtime.schema_migrations');
    const done = new Set(rows.map((row) => Number(row.version)));
    const applied: number[] = [];
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(migration.version)) continue;
      log(`tenant migration ${migration.version} ${migration.name}: applying`);
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        // Explicit inserted_at: an upstream-created table has no default on it.
        await client.query('INSERT INTO realtime.schema_migrations (version, inserted_at) VALUES ($1, now())', [
          migration.version,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        const reason = err instanceof Error ? err.message : String(err);
        throw new Error(`tenant migration ${migration.version} (${migration.name}) failed: ${reason}`, { cause: err });
      }
      applied.push(migration.version);
    }
    if (applied.length > 0) log(`tenant migrations applied: ${applied.join(', ')}`);
    return { applied };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
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
