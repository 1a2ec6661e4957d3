import type pg from 'pg';
import { pgCpuDelta, readPgCpu, type PgCpu } from '../lib/pg-cpu.js';

/**
 * Postgres CPU by what each backend does, for the Postgres Changes bench: the postmaster's children are read from
 * /proc (../lib/pg-cpu.ts) and labelled from pg_stat_activity's application_name, so the walsender that
 * decodes for Performer's changes slot is told apart from the one of its database-broadcast stream, from
 * pg_recvlogical's, from the producers' backends and from Performer's pool (the RLS checks).
 */

export type PgLabel = 'changes walsender' | 'messages walsender' | 'recvlogical walsender' | 'producers' | 'Performer pool' | 'listener' | 'other';

export const PG_LABELS: readonly PgLabel[] = ['changes walsender', 'messages walsender', 'recvlogical walsender', 'producers', 'Performer pool', 'listener', 'other'];

export function labelOf(applicationName: string): PgLabel {
  switch (applicationName) {
    case 'performer_postgres_changes':
      return 'changes walsender';
    case 'realtime_replication_connection':
      return 'messages walsender';
    case 'pg_recvlogical':
      return 'recvlogical walsender';
    case 'bench_producer':
      return 'producers';
    case 'performer':
      return 'Performer pool';
    case 'bench_notify_listener':
      return 'listener';
    default:
      return 'other';
  }
}

export interface PgSnap {
  cpu: PgCpu;
  labels: Map<number, PgLabel>;
}

/** The current labels of the live backends (one catalog query on `admin`). */
export async function pgLabels(admin: pg.Client): Promise<Map<number, PgLabel>> {
  const { rows } = await admin.query<{ pid: number; app: string | null }>('SELECT pid, application_name AS app FROM pg_catalog.pg_stat_activity');
  return new Map(rows.map((r) => [r.pid, labelOf(r.app ?? '')]));
}

export function pgSnap(postmaster: number, labels: Map<number, PgLabel>): PgSnap {
  return { cpu: readPgCpu(postmaster, new Set()), labels };
}

/** CPU seconds per label between two snapshots, plus the total (reaped backends and the postmaster included). */
export function pgDelta(a: PgSnap, b: PgSnap): Record<PgLabel, number> & { total: number } {
  const out = Object.fromEntries(PG_LABELS.map((l) => [l, 0])) as Record<PgLabel, number>;
  for (const [pid, now] of b.cpu.perPid) {
    const label = b.labels.get(pid) ?? a.labels.get(pid) ?? 'other';
    out[label] += now.cpu - (a.cpu.perPid.get(pid)?.cpu ?? 0);
  }
  const total = pgCpuDelta(a.cpu, b.cpu).total;
  // Whatever is not in a live labelled backend (exited backends, postmaster) counts as other.
  const labelled = PG_LABELS.reduce((s, l) => s + out[l], 0);
  out.other += Math.max(0, total - labelled);
  return { ...out, total };
}
