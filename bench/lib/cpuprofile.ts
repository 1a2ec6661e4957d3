import { readFileSync } from 'node:fs';
import type { Child } from './child.js';
import { procCpuSeconds } from './cpu.js';

/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): top functions by self time, top Performer functions by inclusive
 * time, and a breakdown by origin (Performer src, each npm package, Node internals, native bindings, GC).
 * CLI: `node --import tsx bench/lib/cpuprofile.ts <file.cpuprofile> [top]`.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface Frame {
  name: string;
  where: string;
  origin: string;
  selfMs: number;
  totalMs: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Sampled time excluding (idle). */
  busyMs: number;
  frames: Frame[];
  origins: { origin: string; selfMs: number }[];
}

export function originOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName.startsWith('(')) return functionName;
    return 'native (bindings, uWS)';
  }
  const nm = url.lastIndexOf('node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return `npm:${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.startsWith('node:')) return 'node internals';
  // Performer from src/ through tsx, or its tsc build in dist/ (bench/changes runs that one).
  if (url.includes('/src/') || url.includes('/dist/')) return 'performer src';
  if (url.includes('/bench/')) return 'bench harness';
  return 'other';
}

function shortUrl(url: string): string {
  const src = url.indexOf('/src/');
  if (src !== -1) return url.slice(src + 1);
  const dist = url.indexOf('/dist/');
  if (dist !== -1) return url.slice(dist + 1);
  const nm = url.lastIndexOf('node_modules/');
  if (nm !== -1) return url.slice(nm + 'node_modules/'.length);
  const bench = url.indexOf('/bench/');
  if (bench !== -1) return url.slice(bench + 1);
  return url.replace(/^file:\/\//, '');
}

export function summarize(file: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const keyOf = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'}|${n.callFrame.url}|${n.callFrame.lineNumber}`;
  const frames = new Map<string, Frame>();
  const frameFor = (n: ProfileNode): Frame => {
    const key = keyOf(n);
    let f = frames.get(key);
    if (!f) {
      f = {
        name: n.callFrame.functionName || '(anonymous)',
        where: n.callFrame.url ? `${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : '',
        origin: originOf(n.callFrame),
        selfMs: 0,
        totalMs: 0,
      };
      frames.set(key, f);
    }
    return f;
  };
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    totalUs += us;
    if (node.callFrame.functionName === '(idle)') idleUs += us;
    frameFor(node).selfMs += us / 1000;
    // Inclusive time: once per distinct frame on the stack (recursion not double counted).
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const key = keyOf(n);
      if (seen.has(key)) continue;
      seen.add(key);
      frameFor(n).totalMs += us / 1000;
    }
  }
  const origins = new Map<string, number>();
  for (const f of frames.values()) origins.set(f.origin, (origins.get(f.origin) ?? 0) + f.selfMs);
  return {
    totalMs: totalUs / 1000,
    busyMs: (totalUs - idleUs) / 1000,
    frames: [...frames.values()],
    origins: [...origins.entries()].map(([origin, selfMs]) => ({ origin, selfMs })).sort((a, b) => b.selfMs - a.selfMs),
  };
}

export function formatSummary(s: ProfileSummary, top = 25, processCpuMs?: number): string {
  const pct = (ms: number) => `${((100 * ms) / Math.max(1, s.busyMs)).toFixed(1).padStart(5)}%`;
  const lines: string[] = [];
  lines.push(`sampled ${s.totalMs.toFixed(0)} ms, busy in JS ${s.busyMs.toFixed(0)} ms; percentages are of JS busy time`);
  if (processCpuMs !== undefined) {
    lines.push(`the process used ${processCpuMs.toFixed(0)} ms CPU in the window: JS ${((100 * s.busyMs) / processCpuMs).toFixed(0)}%, the rest native (uWS loop, syscalls, kernel)`);
  }
  lines.push('', 'self time by origin:');
  for (const o of s.origins.filter((o) => o.origin !== '(idle)')) lines.push(`  ${pct(o.selfMs)}  ${o.origin}`);
  lines.push('', `top ${top} functions by self time:`);
  const bySelf = s.frames.filter((f) => f.name !== '(idle)').sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
  for (const f of bySelf) lines.push(`  ${pct(f.selfMs)}  ${f.name}  ${f.where}  [${f.origin}]`);
  lines.push('', 'top Performer functions by inclusive time:');
  const perf = s.frames.filter((f) => f.origin === 'performer src').sort((a, b) => b.totalMs - a.totalMs).slice(0, 15);
  for (const f of perf) lines.push(`  ${pct(f.totalMs)}  ${f.name}  ${f.where}`);
  return lines.join('\n');
}

/** A profile in a report: self time by origin, the top functions by self time, Performer's by inclusive time. */
export function profileText(s: ProfileSummary, o: { origins: number; self: number; performer: number }): string[] {
  const pct = (ms: number) => `${((100 * ms) / Math.max(1, s.busyMs)).toFixed(1)} %`;
  const top = s.frames.filter((x) => x.name !== '(idle)').sort((x, y) => y.selfMs - x.selfMs).slice(0, o.self);
  const mine = s.frames.filter((x) => x.origin === 'performer src').sort((x, y) => y.totalMs - x.totalMs).slice(0, o.performer);
  return [
    `Self time by origin: ${s.origins.filter((x) => x.origin !== '(idle)').slice(0, o.origins).map((x) => `${x.origin} ${pct(x.selfMs)}`).join(', ')}.`,
    `Top self: ${top.map((x) => `\`${x.name}\` (${x.where || x.origin}) ${pct(x.selfMs)}`).join(', ')}.`,
    `Performer functions by inclusive time: ${mine.map((x) => `\`${x.name}\` (${x.where}) ${pct(x.totalMs)}`).join(', ')}.`,
  ];
}

/**
 * V8's sampling profiler in a server child (./serve.ts) over a measured window: `onStart` / `onEnd` are the row's
 * hooks; `done()` waits for the profile and returns its summary with the CPU the process used in the window.
 */
export function profileWindow(server: Child, file: string, intervalUs: number): { onStart(): void; onEnd(): void; done(): Promise<{ summary: ProfileSummary; cpuMs: number }> } {
  let cpuA = 0;
  let cpuB = 0;
  const calls: Promise<unknown>[] = [];
  return {
    onStart: () => {
      cpuA = procCpuSeconds(server.pid);
      calls.push(server.call('profileStart', { intervalUs }));
    },
    onEnd: () => {
      cpuB = procCpuSeconds(server.pid);
      calls.push(server.call('profileStop', { file }));
    },
    done: async () => {
      await Promise.all(calls);
      return { summary: summarize(file), cpuMs: (cpuB - cpuA) * 1000 };
    },
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: cpuprofile.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(formatSummary(summarize(file), Number(process.argv[3] ?? 25)));
}
