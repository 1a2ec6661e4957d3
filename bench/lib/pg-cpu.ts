import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU of an embedded Postgres, by process: the postmaster (its own time plus the time of children it already
 * reaped), each live backend (the walsender that decodes realtime.messages for Performer, the producers' backends,
 * Performer's own pool backends) and the background workers. Read from /proc; clock ticks are 1/100 s.
 */

const CLK_TCK = 100;

export type PgRole = 'walsender' | 'producer' | 'other';

export interface PgCpu {
  /** Seconds of CPU per role, summed over processes alive at the reading (+ reaped children under 'other'). */
  byRole: Record<PgRole, number>;
  perPid: Map<number, { role: PgRole; cpu: number }>;
}

interface Stat {
  ppid: number;
  cpu: number;
  children: number;
}

function readStat(pid: number): Stat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields after the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK, children: (Number(f[13]) + Number(f[14])) / CLK_TCK };
  } catch {
    return null;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

export function readPgCpu(postmaster: number, producerPids: ReadonlySet<number>): PgCpu {
  const byRole: Record<PgRole, number> = { walsender: 0, producer: 0, other: 0 };
  const perPid = new Map<number, { role: PgRole; cpu: number }>();
  const root = readStat(postmaster);
  if (!root) return { byRole: { walsender: NaN, producer: NaN, other: NaN }, perPid };
  byRole.other += root.cpu + root.children;
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(name);
    const st = readStat(pid);
    if (!st || st.ppid !== postmaster) continue;
    const role: PgRole = producerPids.has(pid) ? 'producer' : cmdline(pid).includes('walsender') ? 'walsender' : 'other';
    byRole[role] += st.cpu;
    perPid.set(pid, { role, cpu: st.cpu });
  }
  return { byRole, perPid };
}

/** CPU seconds per role between two readings; processes that started in between count from zero. */
export function pgCpuDelta(a: PgCpu, b: PgCpu): Record<PgRole, number> & { total: number } {
  const out = { walsender: 0, producer: 0, other: 0, total: 0 };
  for (const [pid, now] of b.perPid) {
    const before = a.perPid.get(pid)?.cpu ?? 0;
    out[now.role] += now.cpu - before;
  }
  // A backend that exited in between is now in the postmaster's reaped-children time (below) with its whole life.
  for (const [pid, before] of a.perPid) if (!b.perPid.has(pid)) out.other -= before.cpu;
  // Postmaster own + reaped children: the difference of the non-per-pid part of 'other'.
  const rest = (r: PgCpu) => r.byRole.other - [...r.perPid.values()].filter((p) => p.role === 'other').reduce((s, p) => s + p.cpu, 0);
  out.other += rest(b) - rest(a);
  out.total = out.walsender + out.producer + out.other;
  return out;
}
