import type pg from 'pg';

/** A server setting that keeps logical replication from working on a database. */
export interface ReplicationProblem {
  setting: 'wal_level' | 'max_replication_slots' | 'max_wal_senders';
  actual: string;
  required: string;
  errorCode: string;
  /** What is wrong and how to fix it: logged, shown in health and sent to subscribers as is. */
  message: string;
}

const CONSEQUENCE = 'Postgres Changes and Broadcast from Database are unavailable until then';

/**
 * The first setting of the database's server that rules out logical replication, or null. These settings only
 * change with a server restart, so a problem found here is not going to pass by retrying.
 */
export async function findReplicationProblem(db: Pick<pg.Pool, 'query'>): Promise<ReplicationProblem | null> {
  const { rows } = await db.query<{ wal_level: string; slots: string; senders: string }>(
    `SELECT pg_catalog.current_setting('wal_level') AS wal_level,
            pg_catalog.current_setting('max_replication_slots') AS slots,
            pg_catalog.current_setting('max_wal_senders') AS senders`,
  );
  const row = rows[0];
  if (!row) return null;
  if (row.wal_level !== 'logical') {
    return {
      setting: 'wal_level',
      actual: row.wal_level,
      required: 'logical',
      errorCode: 'ReplicationWalLevelNotLogical',
      message:
        `Logical replication is not enabled: the database server runs with wal_level=${row.wal_level}, it needs wal_level=logical. ` +
        `Set wal_level = logical in postgresql.conf (or run ALTER SYSTEM SET wal_level = logical) and restart Postgres; ${CONSEQUENCE}.`,
    };
  }
  for (const [setting, value] of [['max_replication_slots', row.slots], ['max_wal_senders', row.senders]] as const) {
    if (Number(value) > 0) continue;
    return {
      setting,
      actual: value,
      required: 'at least 1',
      errorCode: 'ReplicationDisabled',
      message: `Logical replication is not possible: the database server runs with ${setting}=${value}. Set ${setting} to at least 2 per Performer node and restart Postgres; ${CONSEQUENCE}.`,
    };
  }
  return null;
}
