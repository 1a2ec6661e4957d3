import { procCpuSeconds, machineCpuSeconds, procMem, resetPeakRss } from '../lib/cpu.js';
import type { Reply } from '../lib/child.js';
import type { HeapEntry } from '../lib/heap.js';
import { mean, percentile, range, sum } from '../lib/stats.js';
import { sleep } from '../lib/time.js';
import type { System } from './common.js';
import { connectSubscribers, disconnectAll, drain, gatherStats, startSystem, type Fleet, type GenStats, type RunningSystem } from './fleet.js';
import { f0, f2, f3 } from './format.js';
import { opts } from './options.js';

/**
 * The measured rows of the broadcast bench: the closed loop (one sender, `window` messages in flight, paced by the
 * probes), the open loop (a fixed rate, latency sampled at the receivers), their repetitions merged, memory per idle
 * joined socket (RSS and JS heap, and a heap-snapshot breakdown) and the load generator's own ceiling.
 */

// ---- one measured row ----

export interface CpuSnapshot {
  atUs: number;
  server: number;
  gens: number[];
  machineBusy: number;
  steal: number;
}

export function snapshot(srv: RunningSystem, fleet: Fleet): CpuSnapshot {
  const m = machineCpuSeconds();
  return {
    atUs: Number(process.hrtime.bigint() / 1000n),
    server: procCpuSeconds(srv.proc.pid),
    gens: fleet.all.map((p) => procCpuSeconds(p.pid)),
    machineBusy: m.busy,
    steal: m.steal,
  };
}

export interface Usage {
  windowS: number;
  serverCpuS: number;
  serverPct: number;
  genPcts: number[];
  totalPct: number;
  /** Machine-wide busy CPU % (of 100 per core) minus the bench's own processes: other load, interrupts, softirq. */
  otherPct: number;
  stealPct: number;
  peakRssMb: number;
  saturated: string;
}

export function usage(a: CpuSnapshot, b: CpuSnapshot, srv: RunningSystem): Usage {
  const windowS = (b.atUs - a.atUs) / 1e6;
  const serverCpuS = b.server - a.server;
  const serverPct = (100 * serverCpuS) / windowS;
  const genPcts = b.gens.map((v, i) => (100 * (v - a.gens[i])) / windowS);
  const totalPct = serverPct + genPcts.reduce((x, y) => x + y, 0);
  const otherPct = (100 * (b.machineBusy - a.machineBusy)) / windowS - totalPct;
  const stealPct = (100 * (b.steal - a.steal)) / windowS;
  const sat: string[] = [];
  if (serverPct >= 90) sat.push('server');
  if (genPcts.some((p) => p >= 90)) sat.push('generator');
  if (totalPct + Math.max(0, otherPct) >= 185) sat.push('2 cores');
  return { windowS, serverCpuS, serverPct, genPcts, totalPct, otherPct, stealPct, peakRssMb: procMem(srv.proc.pid).hwmKb / 1024, saturated: sat.join('+') || 'none' };
}

export interface ClosedRow extends Usage {
  system: string;
  n: number;
  payload: number;
  window: number;
  msgsPerSec: number;
  deliveriesPerSec: number;
  delivered: number;
  expected: number;
  loss: number;
  cpuUsPerDelivery: number;
  stalls: number;
  closes: number;
  /** Data frames per socket read at the receivers: how many messages the server packed into one write per socket. */
  framesPerRead: number;
  /** Repetitions merged into this row, and their spread. */
  reps?: number;
  spread?: string;
}

export type Load = 'common' | 'high';

export interface OpenRow extends Usage {
  system: string;
  n: number;
  payload: number;
  load: Load;
  rate: number;
  deliveriesPerSec: number;
  delivered: number;
  expected: number;
  loss: number;
  cpuUsPerDelivery: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  samples: number;
  maxSendLagMs: number;
  closes: number;
  reps?: number;
  spread?: string;
  /** Latency samples (µs, sorted); dropped before the results are written. */
  raw?: number[];
}

export async function runLoop(
  kind: 'closed' | 'open',
  srv: RunningSystem,
  fleet: Fleet,
  n: number,
  args: Record<string, unknown>,
  sampleMod: number,
  hooks: { onStart?: () => void; onEnd?: () => void } = {},
): Promise<{ reply: Reply; stats: GenStats; use: Usage; samples: number[] }> {
  await Promise.all(fleet.all.map((p) => p.call('reset', { sampleMod, sampleCap: sampleMod > 0 ? 200_000 : 0 })));
  resetPeakRss(srv.proc.pid);
  let start: CpuSnapshot | null = null;
  let end: CpuSnapshot | null = null;
  const offStart = fleet.sender.on('measure-start', () => {
    start = snapshot(srv, fleet);
    hooks.onStart?.();
  });
  const offEnd = fleet.sender.on('measure-end', () => {
    end = snapshot(srv, fleet);
    hooks.onEnd?.();
  });
  const reply = await fleet.sender.call(kind, { ...args, tag: srv.system }, 120_000);
  offStart();
  offEnd();
  await sleep(20);
  const expected = Number(reply.sentMeasured) * n;
  const stats = await drain(fleet, expected);
  const s = start ?? snapshot(srv, fleet);
  const e = end ?? snapshot(srv, fleet);
  const use = usage(s, e, srv);
  let samples: number[] = [];
  if (sampleMod > 0) {
    const all = await Promise.all(fleet.all.map((p) => p.call('samples')));
    samples = all.flatMap((r) => r.samples as number[]);
  }
  return { reply, stats, use, samples };
}

export async function closedLoop(
  srv: RunningSystem,
  fleet: Fleet,
  n: number,
  payload: number,
  label: string = srv.system,
  hooks: { onStart?: () => void; onEnd?: () => void } = {},
): Promise<ClosedRow> {
  const { reply, stats, use } = await runLoop('closed', srv, fleet, n, { window: opts.window, warmupMs: opts.warmupMs, durationMs: opts.closedMs, payloadBytes: payload }, 0, hooks);
  const sent = Number(reply.sentMeasured);
  const expected = sent * n;
  const spanS = Math.max(1e-6, (stats.lastUs - stats.firstUs) / 1e6);
  return {
    system: label,
    n,
    payload,
    window: opts.window,
    msgsPerSec: sent / (Number(reply.sendDurationUs) / 1e6),
    deliveriesPerSec: stats.delivered / spanS,
    delivered: stats.delivered,
    expected,
    loss: Math.max(0, expected - stats.delivered),
    cpuUsPerDelivery: (use.serverCpuS * 1e6) / Math.max(1, stats.delivered),
    stalls: Number(reply.stalls),
    closes: stats.unexpectedCloses,
    framesPerRead: stats.frames / Math.max(1, stats.reads),
    ...use,
  };
}

export async function openLoop(srv: RunningSystem, fleet: Fleet, n: number, payload: number, rate: number, load: Load): Promise<OpenRow> {
  const expectedDeliveries = rate * (opts.openMs / 1000) * n;
  const sampleMod = Math.max(1, Math.round(expectedDeliveries / 100_000));
  const { reply, stats, use, samples } = await runLoop('open', srv, fleet, n, { rate, warmupMs: opts.warmupMs, durationMs: opts.openMs, payloadBytes: payload }, sampleMod);
  const sent = Number(reply.sentMeasured);
  const expected = sent * n;
  samples.sort((a, b) => a - b);
  return {
    system: srv.system,
    n,
    payload,
    load,
    rate,
    deliveriesPerSec: stats.delivered / (Number(reply.sendDurationUs) / 1e6),
    delivered: stats.delivered,
    expected,
    loss: Math.max(0, expected - stats.delivered),
    cpuUsPerDelivery: (use.serverCpuS * 1e6) / Math.max(1, stats.delivered),
    p50Ms: percentile(samples, 50) / 1000,
    p99Ms: percentile(samples, 99) / 1000,
    p999Ms: percentile(samples, 99.9) / 1000,
    maxMs: samples.length ? samples[samples.length - 1] / 1000 : NaN,
    samples: samples.length,
    maxSendLagMs: Number(reply.maxBehindUs) / 1000,
    raw: samples,
    closes: stats.unexpectedCloses,
    ...use,
  };
}

// ---- repetitions ----


function mergeUsage<T extends Usage>(rows: T[]): Usage {
  return {
    windowS: sum(rows.map((r) => r.windowS)),
    serverCpuS: sum(rows.map((r) => r.serverCpuS)),
    serverPct: mean(rows.map((r) => r.serverPct)),
    genPcts: rows[0].genPcts.map((_, i) => mean(rows.map((r) => r.genPcts[i]))),
    totalPct: mean(rows.map((r) => r.totalPct)),
    otherPct: mean(rows.map((r) => r.otherPct)),
    stealPct: mean(rows.map((r) => r.stealPct)),
    peakRssMb: Math.max(...rows.map((r) => r.peakRssMb)),
    saturated: [...new Set(rows.flatMap((r) => r.saturated.split('+')))].filter((x) => x !== 'none').join('+') || 'none',
  };
}

/** Repetitions of a closed-loop row: rates averaged, CPU per delivery over all of them. */
export function mergeClosed(rows: ClosedRow[]): ClosedRow {
  if (rows.length === 1) return { ...rows[0], reps: 1 };
  const delivered = sum(rows.map((r) => r.delivered));
  const use = mergeUsage(rows);
  return {
    ...rows[0],
    ...use,
    msgsPerSec: mean(rows.map((r) => r.msgsPerSec)),
    deliveriesPerSec: mean(rows.map((r) => r.deliveriesPerSec)),
    delivered,
    expected: sum(rows.map((r) => r.expected)),
    loss: sum(rows.map((r) => r.loss)),
    cpuUsPerDelivery: (use.serverCpuS * 1e6) / Math.max(1, delivered),
    stalls: sum(rows.map((r) => r.stalls)),
    closes: sum(rows.map((r) => r.closes)),
    framesPerRead: mean(rows.map((r) => r.framesPerRead)),
    reps: rows.length,
    spread: `deliveries/s ${range(rows.map((r) => r.deliveriesPerSec), f0)}; µs/delivery ${range(rows.map((r) => r.cpuUsPerDelivery), f3)}`,
  };
}

/** Repetitions of an open-loop row: percentiles over all their samples, CPU per delivery over all of them. */
export function mergeOpen(rows: OpenRow[]): OpenRow {
  const samples = rows.flatMap((r) => r.raw ?? []).sort((a, b) => a - b);
  const delivered = sum(rows.map((r) => r.delivered));
  const use = mergeUsage(rows);
  return {
    ...rows[0],
    ...use,
    deliveriesPerSec: mean(rows.map((r) => r.deliveriesPerSec)),
    delivered,
    expected: sum(rows.map((r) => r.expected)),
    loss: sum(rows.map((r) => r.loss)),
    cpuUsPerDelivery: (use.serverCpuS * 1e6) / Math.max(1, delivered),
    p50Ms: percentile(samples, 50) / 1000,
    p99Ms: percentile(samples, 99) / 1000,
    p999Ms: percentile(samples, 99.9) / 1000,
    maxMs: samples.length ? samples[samples.length - 1] / 1000 : NaN,
    samples: samples.length,
    maxSendLagMs: Math.max(...rows.map((r) => r.maxSendLagMs)),
    closes: sum(rows.map((r) => r.closes)),
    reps: rows.length,
    spread: `p99 ms ${range(rows.map((r) => r.p99Ms), f2)}; µs/delivery ${range(rows.map((r) => r.cpuUsPerDelivery), f3)}`,
    raw: undefined,
  };
}

// ---- idle memory ----

export interface IdleRow {
  system: string;
  sockets: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  bytesPerSocket: number;
  /** RSS growth per socket from k/2 to k sockets: without one-off growth (V8 young generation, pools, code). */
  marginalBytesPerSocket: number;
  /** V8 heap used per socket (after a full GC); the rest of the RSS delta is native (uWS, malloc) or heap slack. */
  heapBytesPerSocket: number;
  /** V8 heap committed (heapTotal) per socket. */
  heapCommittedBytesPerSocket: number;
  connectMs: number;
  /** Largest per-socket contributors in the JS heap (heap snapshot diff), when `--sections` includes `heap`. */
  heapTop?: { key: string; perSocket: number; bytesPerSocket: number }[];
}

export async function idleMemory(system: System, fleet: Fleet): Promise<IdleRow> {
  const srv = await startSystem(system);
  const k = opts.idleSockets;
  const half = Math.floor(k / 2);
  try {
    await sleep(500);
    const gc0 = await srv.proc.call('gc');
    await sleep(300);
    const before = procMem(srv.proc.pid).rssKb;
    const ms1 = await connectSubscribers(fleet, srv, half);
    await sleep(opts.idleSettleMs);
    await srv.proc.call('gc');
    await sleep(300);
    const mid = procMem(srv.proc.pid).rssKb;
    const ms2 = await connectSubscribers(fleet, srv, k - half);
    await sleep(opts.idleSettleMs);
    const gc1 = await srv.proc.call('gc');
    await sleep(500);
    const after = procMem(srv.proc.pid).rssKb;
    const stats = await gatherStats(fleet);
    if (stats.unexpectedCloses > 0) console.warn(`  ${system}: ${stats.unexpectedCloses} sockets closed unexpectedly`);
    if (stats.connections !== k) console.warn(`  ${system}: ${stats.connections} of ${k} sockets connected`);
    return {
      system,
      sockets: k,
      rssBeforeMb: before / 1024,
      rssAfterMb: after / 1024,
      bytesPerSocket: ((after - before) * 1024) / k,
      marginalBytesPerSocket: ((after - mid) * 1024) / (k - half),
      heapBytesPerSocket: (Number(gc1.heapUsed) - Number(gc0.heapUsed)) / k,
      heapCommittedBytesPerSocket: (Number(gc1.heapTotal) - Number(gc0.heapTotal)) / k,
      connectMs: ms1 + ms2,
    };
  } finally {
    await disconnectAll(fleet);
    await srv.proc.stop();
  }
}

/** JS heap per idle joined socket by object type: heap snapshot diff (its own server, as snapshots inflate RSS). */
export async function heapBreakdown(system: System, fleet: Fleet): Promise<{ key: string; perSocket: number; bytesPerSocket: number }[]> {
  const srv = await startSystem(system);
  const k = opts.idleSockets;
  try {
    await sleep(500);
    await srv.proc.call('gc');
    const h0 = (await srv.proc.call('heap', {}, 300_000)).entries as HeapEntry[];
    await connectSubscribers(fleet, srv, k);
    await sleep(1500);
    await srv.proc.call('gc');
    const h1 = (await srv.proc.call('heap', {}, 300_000)).entries as HeapEntry[];
    const base = new Map(h0.map((e) => [e.key, e]));
    return h1
      .map((e) => ({ key: e.key, perSocket: (e.count - (base.get(e.key)?.count ?? 0)) / k, bytesPerSocket: (e.bytes - (base.get(e.key)?.bytes ?? 0)) / k }))
      .filter((e) => e.bytesPerSocket >= 8)
      .sort((a, b) => b.bytesPerSocket - a.bytesPerSocket)
      .slice(0, 25);
  } finally {
    await disconnectAll(fleet);
    await srv.proc.stop();
  }
}

// ---- generator ceiling ----

export interface CeilingRow {
  label: string;
  connections: number;
  payload: number;
  deliveriesPerSec: number;
  genPcts: number[];
  blasterPct: number;
}

export async function generatorCeiling(fleet: Fleet, connections: number, payload: number, durationMs: number): Promise<CeilingRow> {
  const srv = await startSystem('ceiling');
  try {
    await connectSubscribers(fleet, srv, connections);
    await Promise.all(fleet.all.map((p) => p.call('reset', { sampleMod: 0, sampleCap: 0 })));
    const a = snapshot(srv, fleet);
    await srv.proc.call('blast', { durationMs, payloadBytes: payload });
    const b = snapshot(srv, fleet);
    const stats = await drain(fleet, Infinity, 3000);
    const use = usage(a, b, srv);
    return {
      label: 'raw generator vs frame blaster',
      connections,
      payload,
      deliveriesPerSec: stats.delivered / Math.max(1e-6, (stats.lastUs - stats.firstUs) / 1e6),
      genPcts: use.genPcts.slice(0, fleet.gens.length),
      blasterPct: use.serverPct,
    };
  } finally {
    await disconnectAll(fleet);
    await srv.proc.stop();
  }
}
