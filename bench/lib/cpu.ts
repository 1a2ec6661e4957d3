import { readFileSync, writeFileSync } from 'node:fs';

// CPU and memory of processes and of the machine, read from /proc (clock ticks are 1/100 s on Linux).

const CLK_TCK = 100;

/** User + system CPU seconds of a process, all its threads (GC and uWS included); NaN when it is gone. */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Kernel (system) CPU seconds of a process, all its threads; NaN when it is gone. */
export function procKernelSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[12]) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Machine-wide busy and steal CPU seconds (all cores) from /proc/stat. */
export function machineCpuSeconds(): { busy: number; steal: number } {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice
    return { busy: (v[0]! + v[1]! + v[2]! + v[5]! + v[6]!) / CLK_TCK, steal: (v[7] ?? 0) / CLK_TCK };
  } catch {
    return { busy: NaN, steal: NaN };
  }
}

export interface ProcMem {
  rssKb: number;
  hwmKb: number;
}

export function procMem(pid: number): ProcMem {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const rss = /VmRSS:\s+(\d+)/.exec(status);
    const hwm = /VmHWM:\s+(\d+)/.exec(status);
    return { rssKb: rss ? Number(rss[1]) : NaN, hwmKb: hwm ? Number(hwm[1]) : NaN };
  } catch {
    return { rssKb: NaN, hwmKb: NaN };
  }
}

/** Resets the process's peak RSS (VmHWM) to its current RSS (Linux clear_refs value 5). */
export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // Not fatal: the peak is then the lifetime peak of that process.
  }
}

/** CPU seconds of the processes in `pids` (those that are gone count 0). */
export function cpuOf(pids: readonly number[]): number {
  return pids.reduce((a, pid) => a + (procCpuSeconds(pid) || 0), 0);
}
