import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import { parseLsn } from './pgoutput/index.js';
import { changesSlotName, isLegacyChangesSlot } from './slot-names.js';

// The persistent slot of a tenant's Postgres Changes: its name, the slots of the earlier naming scheme it replaces,
// and how much WAL it keeps.

type Queryable = Pick<pg.ClientBase, 'query'>;

/** What a slot costs its server: how far its confirmed position trails, and how much WAL it keeps. */
export interface SlotUsage {
  slot: string;
  active: boolean;
  /** Bytes of WAL between the slot's confirmed position and the server's current one. */
  lagBytes: number;
  /** Bytes of WAL the server keeps for the slot (from its restart position on). */
  retainedWalBytes: number;
}

/** The oid of the database a connection is in: what identifies it within its cluster. */
export async function databaseOid(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ oid: string }>('SELECT oid::text AS oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()');
  const oid = rows[0]?.oid;
  if (!oid) throw new Error('the current database is missing from pg_database');
  return oid;
}

/**
 * The tenant's changes slot on this database, with what the earlier naming scheme left behind taken care of. That
 * scheme named the slot after the database's address, so every start of the embedded Postgres (a new port) left
 * one more slot keeping WAL for ever. When the slot does not exist yet, the most advanced idle one of those is
 * copied under the new name (same confirmed position: rows committed while Performer was being upgraded still
 * reach the subscribers that rejoin); then the idle ones are dropped. Only slots of this tenant in this database
 * that no connection uses are touched: a slot another process streams from is left alone.
 */
export async function prepareChangesSlot(db: Queryable, tenantId: string, log: Logger): Promise<string> {
  const oid = await databaseOid(db);
  const slot = changesSlotName(tenantId, oid);
  const { rows } = await db.query<{ slot_name: string; active: boolean; confirmed: string | null }>(
    `SELECT slot_name, active, confirmed_flush_lsn::text AS confirmed FROM pg_catalog.pg_replication_slots
      WHERE datoid = $1::oid AND slot_type = 'logical' AND NOT temporary`,
    [oid],
  );
  const legacy = rows.filter((r) => isLegacyChangesSlot(r.slot_name, tenantId));
  if (legacy.length === 0) return slot;
  const idle = legacy.filter((r) => !r.active);
  const busy = legacy.filter((r) => r.active).map((r) => r.slot_name);
  if (busy.length > 0) log.info({ slots: busy }, 'changes slots of the earlier naming scheme are in use by another process; left alone');
  if (idle.length === 0) return slot;
  if (!rows.some((r) => r.slot_name === slot)) {
    // The newest run's slot was created last, so it is the furthest ahead (older ones stopped where their run did).
    const newest = idle.reduce((a, b) => (lsnOf(b) > lsnOf(a) ? b : a));
    try {
      await db.query('SELECT pg_catalog.pg_copy_logical_replication_slot($1, $2)', [newest.slot_name, slot]);
      log.info({ from: newest.slot_name, slot, position: newest.confirmed }, 'changes slot renamed: the earlier slot\'s position carried over');
    } catch (err) {
      // Created meanwhile by another node: that one is as good.
      if ((err as { code?: string }).code !== '42710') {
        log.warn(
          { err, error_code: 'ReplicationSlotMigrationFailed', slots: idle.map((r) => r.slot_name) },
          'could not carry the earlier changes slot over; it is kept (drop it with pg_drop_replication_slot once no longer needed)',
        );
        return slot;
      }
    }
  }
  for (const r of idle) await dropIdleSlot(db, r.slot_name, log);
  log.info({ dropped: idle.map((r) => r.slot_name), slot }, 'dropped changes slots of the earlier naming scheme');
  return slot;
}

/** Drops the tenant's changes slots on this database (current and earlier scheme) that no connection uses. */
export async function dropTenantChangesSlots(db: Queryable, tenantId: string, log: Logger): Promise<string[]> {
  const oid = await databaseOid(db);
  const slot = changesSlotName(tenantId, oid);
  const { rows } = await db.query<{ slot_name: string }>(
    `SELECT slot_name FROM pg_catalog.pg_replication_slots WHERE datoid = $1::oid AND slot_type = 'logical' AND NOT temporary AND NOT active`,
    [oid],
  );
  const dropped: string[] = [];
  for (const { slot_name } of rows) {
    if (slot_name !== slot && !isLegacyChangesSlot(slot_name, tenantId)) continue;
    if (await dropIdleSlot(db, slot_name, log)) dropped.push(slot_name);
  }
  return dropped;
}

/** Drops a slot unless a connection uses it (checked by the server in the same statement). */
async function dropIdleSlot(db: Queryable, slot: string, log: Logger): Promise<boolean> {
  try {
    const { rowCount } = await db.query('SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND NOT active', [slot]);
    return (rowCount ?? 0) > 0;
  } catch (err) {
    // Taken by a connection between the check and the drop (55006), or gone already (42704).
    log.warn({ err, slot }, 'replication slot not dropped');
    return false;
  }
}

/**
 * Drops a slot once the connection that streamed from it has let go: a walsender releases its slot a moment after
 * its client closed, and a drop meanwhile would find it in use. Gives up (false) when it stays in use.
 */
export async function dropSlotWhenReleased(db: Queryable, slot: string, waitMs = 5000): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const { rows } = await db.query<{ active: boolean }>('SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = $1', [slot]);
    if (rows.length === 0) return true;
    if (!rows[0]!.active) {
      try {
        await db.query('SELECT pg_catalog.pg_drop_replication_slot($1)', [slot]);
        return true;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === '42704') return true; // dropped by someone else meanwhile
        if (code !== '55006') throw err; // 55006: taken again between the check and the drop
      }
    }
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function lsnOf(row: { confirmed: string | null }): bigint {
  return row.confirmed ? parseLsn(row.confirmed) : 0n;
}

/** How far the slot trails and how much WAL it keeps; null when it does not exist. */
export async function readSlotUsage(db: Queryable, slot: string): Promise<SlotUsage | null> {
  const { rows } = await db.query<{ active: boolean; lag: string | null; retained: string | null }>(
    `SELECT active,
            pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag,
            pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::text AS retained
       FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = rows[0];
  if (!row) return null;
  return { slot, active: row.active, lagBytes: Math.max(0, Number(row.lag ?? 0)), retainedWalBytes: Math.max(0, Number(row.retained ?? 0)) };
}

/**
 * The engine's view of its slot: named at start (prepareChangesSlot), measured at every lag check (kept for metrics,
 * growth warned about), dropped when idle.
 */
export class TrackedSlot {
  name: string | null = null;
  usage: SlotUsage | null = null;
  private readonly growth: SlotGrowthLog;

  constructor(
    private readonly tenantId: string,
    warnBytes: number,
    private readonly log: Logger,
  ) {
    this.growth = new SlotGrowthLog(warnBytes, log);
  }

  async prepare(db: Queryable): Promise<string> {
    this.name = await prepareChangesSlot(db, this.tenantId, this.log);
    return this.name;
  }

  requireName(): string {
    if (this.name === null) throw new Error('the changes slot is not named yet');
    return this.name;
  }

  async measure(db: Queryable): Promise<SlotUsage | null> {
    if (this.name === null) return null;
    this.usage = await readSlotUsage(db, this.name);
    if (this.usage) this.growth.observe(this.usage);
    return this.usage;
  }

  async drop(db: Queryable): Promise<void> {
    if (this.name === null) return;
    if (!(await dropSlotWhenReleased(db, this.name))) this.log.warn({ slot: this.name }, 'changes slot still in use by another connection; not dropped');
    this.usage = null;
  }
}

/**
 * Warns when a slot's lag or retained WAL passes a threshold, and again each time it doubles, so a slot that keeps
 * growing is heard about without a line per check; says so once when it is back under.
 */
export class SlotGrowthLog {
  /** The figure last warned about; 0 while under the threshold. */
  private warnedAt = 0;

  constructor(
    private readonly thresholdBytes: number,
    private readonly log: Logger,
  ) {}

  observe(usage: SlotUsage): void {
    const size = Math.max(usage.lagBytes, usage.retainedWalBytes);
    const fields = { slot: usage.slot, lag_bytes: usage.lagBytes, retained_wal_bytes: usage.retainedWalBytes, threshold_bytes: this.thresholdBytes };
    if (size < this.thresholdBytes) {
      if (this.warnedAt > 0) this.log.info(fields, 'replication slot back under its warning threshold');
      this.warnedAt = 0;
      return;
    }
    if (this.warnedAt > 0 && size < this.warnedAt * 2) return;
    this.warnedAt = size;
    this.log.warn({ ...fields, error_code: 'ReplicationSlotGrowing' }, 'replication slot is keeping a growing amount of WAL');
  }
}
