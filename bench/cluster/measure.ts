import path from 'node:path';
import type { Child } from '../lib/child.js';
import { cpuOf, machineCpuSeconds } from '../lib/cpu.js';
import { formatSummary, summarize } from '../lib/cpuprofile.js';

/**
 * What a measured window of the cluster bench reads besides deliveries: CPU of each part (every node, redis-server,
 * the generators, the sender) and the machine's busy CPU. Read at the sender's measure-start and measure-end events.
 */

/** Processes of a window, by part name (`A`, `B`, `redis`, `gens`, `sender`...). */
export type Parts = Record<string, number[]>;

export interface Snapshot {
  at: number;
  cpu: Record<string, number>;
  busy: number;
}

export function snapshot(parts: Parts): Snapshot {
  const cpu: Record<string, number> = {};
  for (const [name, pids] of Object.entries(parts)) cpu[name] = cpuOf(pids);
  return { at: performance.now(), cpu, busy: machineCpuSeconds().busy };
}

export interface Window {
  seconds: number;
  /** CPU seconds per part over the window. */
  cpuS: Record<string, number>;
  /** Busy CPU of the whole machine, % of one core (200 = both cores of this machine). */
  busyPct: number;
  /** Busy CPU outside every part, % of one core. */
  otherPct: number;
}

export function windowOf(a: Snapshot, b: Snapshot): Window {
  const seconds = Math.max(1e-6, (b.at - a.at) / 1000);
  const cpuS: Record<string, number> = {};
  let ours = 0;
  for (const name of Object.keys(a.cpu)) {
    cpuS[name] = b.cpu[name]! - a.cpu[name]!;
    ours += cpuS[name]!;
  }
  const busy = b.busy - a.busy;
  return { seconds, cpuS, busyPct: (100 * busy) / seconds, otherPct: (100 * (busy - ours)) / seconds };
}

/**
 * `--profile`: V8's sampling profiler in the given processes over a measured window; `report()` summarises each
 * profile (JS time per message, self time by origin, top functions). Native time (uWS, syscalls, kernel) is idle to V8.
 */
export class WindowProfiles {
  private readonly calls: Promise<unknown>[] = [];
  private readonly cpuStart = new Map<string, number>();
  private readonly cpuEnd = new Map<string, number>();

  constructor(
    private readonly dir: string,
    private readonly label: string,
    private readonly children: Record<string, Child>,
  ) {}

  private file(name: string): string {
    return path.join(this.dir, `${this.label}-${name}.cpuprofile`);
  }

  start(): void {
    for (const [name, child] of Object.entries(this.children)) {
      this.cpuStart.set(name, cpuOf([child.pid]));
      this.calls.push(child.call('profileStart', { intervalUs: 250 }));
    }
  }

  stop(): void {
    for (const [name, child] of Object.entries(this.children)) {
      this.cpuEnd.set(name, cpuOf([child.pid]));
      this.calls.push(child.call('profileStop', { file: this.file(name) }));
    }
  }

  async report(messages: number): Promise<string> {
    await Promise.all(this.calls);
    const out: string[] = [];
    for (const name of Object.keys(this.children)) {
      const s = summarize(this.file(name));
      const cpuMs = 1000 * ((this.cpuEnd.get(name) ?? 0) - (this.cpuStart.get(name) ?? 0));
      // The inspector's own `dispatch` (the profileStart call's stack) collects idle samples: not the process's work.
      const artifactMs = s.frames.filter((x) => x.name === 'dispatch' && x.where === '').reduce((a, x) => a + x.selfMs, 0);
      const jsMs = s.busyMs - artifactMs;
      out.push(
        `--- ${this.label} / ${name}: ${((1000 * cpuMs) / Math.max(1, messages)).toFixed(0)} µs CPU and ${((1000 * jsMs) / Math.max(1, messages)).toFixed(0)} µs JS per message ` +
          `(${messages} messages; the native \`dispatch\` below, ${artifactMs.toFixed(0)} ms, is the profiler's idle time) ---`,
      );
      out.push(formatSummary(s, 14, cpuMs).split('\ntop Performer functions')[0]!);
    }
    return out.join('\n');
  }
}
