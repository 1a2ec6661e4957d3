import { writeFileSync } from 'node:fs';
import { runBench } from '../lib/main.js';
import { performerBuilds } from '../lib/performer.js';
import { machine } from '../lib/report.js';
import type { System } from './common.js';
import { best, connectRoom, disconnectAll, preparePerformers, quiet, serverFlags, startFleet, startSystem, type Fleet, type RunningSystem } from './fleet.js';
import { f0, f1, f2, f3, size } from './format.js';
import { logMemory, memoryAfterTraffic } from './memory.js';
import { args, opts } from './options.js';
import { profileRun } from './profile.js';
import { report, type Results } from './report.js';
import { closedLoop, generatorCeiling, heapBreakdown, idleMemory, mergeClosed, mergeOpen, openLoop, type ClosedRow, type Load, type OpenRow } from './rows.js';

/**
 * Broadcast fan-out bench: Performer vs a bare uWebSockets.js pub/sub peer (the ceiling) vs socket.io.
 *
 *   npm run bench:broadcast -- [--quick] [--profile] [--out=results.json] [--compare=<git rev>]
 *        [--systems=performer,uws,socketio] [--n=100,1000,5000] [--gens=2] [--window=8] [--no-sio-client] [--no-ceiling]
 *        [--sections=ceiling,loops,sio-client,idle,memory,heap] [--reps=2] [--idle-reps=1] [--mem-reps=2]
 *
 * Every server runs in its own child process (CPU and RSS read from /proc), the subscribers in `--gens` generator
 * processes, the sender (+ probe subscribers that pace the closed loop) in one more. All traffic is on 127.0.0.1.
 * `--compare=<rev>` adds Performer as it was at that revision (`performer@<rev>`), paired with this tree's and the bare
 * peer in the loops and alternated with them in the memory sections; the report then has a before/after table.
 */

/** Rounds a rate down to two significant digits (at least 1 msg/s). */
function niceRate(r: number): number {
  if (r < 1) return 1;
  const mag = 10 ** Math.max(0, Math.floor(Math.log10(r)) - 1);
  return Math.floor(r / mag) * mag;
}

const logClosed = (row: ClosedRow, extra = '') =>
  console.log(
    `closed ${row.system} N=${row.n} ${size(row.payload)}: ${f0(row.deliveriesPerSec)} deliveries/s (${f0(row.msgsPerSec)} msg/s), ` +
      `server ${f0(row.serverPct)}% ${f3(row.cpuUsPerDelivery)} µs/delivery, ${f2(row.framesPerRead)} frames/read, gens ${row.genPcts.map(f0).join('/')}%, ` +
      `other ${f0(row.otherPct)}%, loss ${f0(row.loss)}, saturated ${row.saturated}${extra}`,
  );

const logOpen = (row: OpenRow) =>
  console.log(
    `open   ${row.system} N=${row.n} ${size(row.payload)} @${f0(row.rate)} msg/s (${row.load}): p50 ${f2(row.p50Ms)} ms p99 ${f2(row.p99Ms)} ms max ${f2(row.maxMs)} ms, ` +
      `server ${f0(row.serverPct)}% ${f3(row.cpuUsPerDelivery)} µs/delivery, gens ${row.genPcts.map(f0).join('/')}%, other ${f0(row.otherPct)}%, peak RSS ${f0(row.peakRssMb)} MB, ` +
      `loss ${f0(row.loss)}, send lag max ${f1(row.maxSendLagMs)} ms`,
  );

/** socket.io alone at N: closed loop, then open loop at the "common" rate (a fraction of its closed-loop rate). */
async function socketioLoops(results: Results, fleet: Fleet, n: number, commonRate: Map<number, number>): Promise<void> {
  const srv = await startSystem('socketio');
  try {
    const ms = await connectRoom(fleet, srv, n);
    for (const payload of opts.payloads) {
      const row = await best(() => closedLoop(srv, fleet, n, payload));
      results.closed.push(mergeClosed([row]));
      logClosed(row, ` [connect ${ms} ms]`);
      commonRate.set(payload, opts.openRate ? Number(opts.openRate) : niceRate(row.msgsPerSec * opts.openFraction));
    }
    for (const payload of opts.payloads) {
      const row = await best(() => openLoop(srv, fleet, n, payload, commonRate.get(payload) as number, 'common'));
      results.open.push(mergeOpen([row]));
      logOpen(row);
    }
  } finally {
    await disconnectAll(fleet);
    await srv.proc.stop();
  }
}

/**
 * Performer (both builds with --compare) and the bare uWS peer side by side at N (all servers up, all rooms
 * connected), their rows alternated A/B/B/A… `--reps` times so outside load and drift hit them alike. The bare peer's
 * closed-loop rate sets the "high" open-loop rate, run by these only (the common rate leaves them nearly idle).
 */
async function pairedLoops(results: Results, fleet: Fleet, n: number, paired: System[], commonRate: Map<number, number>): Promise<void> {
  const servers: RunningSystem[] = [];
  try {
    for (const system of paired) {
      const srv = await startSystem(system);
      servers.push(srv);
      console.log(`  ${system}: ${n} subscribers joined in ${await connectRoom(fleet, srv, n)} ms`);
    }
    // A/B, then B/A, …: each repetition flips the order.
    const turns = (rep: number) => (rep % 2 === 0 ? servers : [...servers].reverse());
    const runs = async <R extends { system: string; otherPct: number }>(items: readonly { key: string; run: (srv: RunningSystem) => Promise<R> }[], log: (row: R, rep: number) => void) => {
      const byKey = new Map<string, R[]>();
      for (let rep = 0; rep < opts.reps; rep++) {
        for (const item of items) {
          for (const srv of turns(rep)) {
            const row = await best(() => item.run(srv));
            log(row, rep);
            byKey.set(`${srv.system}|${item.key}`, [...(byKey.get(`${srv.system}|${item.key}`) ?? []), row]);
          }
        }
      }
      return byKey;
    };
    const closed = await runs(
      opts.payloads.map((payload) => ({ key: String(payload), run: (srv: RunningSystem) => closedLoop(srv, fleet, n, payload) })),
      (row, rep) => logClosed(row, opts.reps > 1 ? ` (rep ${rep + 1})` : ''),
    );
    const loads: { load: Load; payload: number; rate: number }[] = [];
    for (const payload of opts.payloads) {
      const repeated = paired.map((system) => closed.get(`${system}|${payload}`) ?? []);
      results.closedRuns.push(...repeated.flat());
      const merged = repeated.map(mergeClosed);
      results.closed.push(...merged);
      const ceiling = merged.find((r) => r.system === 'uws') ?? merged[0]!;
      if (!commonRate.has(payload)) commonRate.set(payload, opts.openRate ? Number(opts.openRate) : niceRate(Math.min(...merged.map((r) => r.msgsPerSec)) * opts.openFraction));
      const common = commonRate.get(payload) as number;
      loads.push({ load: 'common', payload, rate: common });
      const high = niceRate(ceiling.msgsPerSec * opts.highFraction);
      if (!opts.openRate && high > common * 1.5) loads.push({ load: 'high', payload, rate: high });
    }
    // `--sections=closed`: the closed loops only.
    if (!opts.sections.includes('loops')) return;
    const open = await runs(
      loads.map((l) => ({ key: `${l.payload}|${l.load}`, run: (srv: RunningSystem) => openLoop(srv, fleet, n, l.payload, l.rate, l.load) })),
      (row) => logOpen(row),
    );
    for (const rows of open.values()) results.open.push(mergeOpen(rows));
  } finally {
    await disconnectAll(fleet);
    for (const srv of servers) await srv.proc.stop();
  }
}

/** The memory sections: each repetition in its own fresh server process, the order of the systems flipping every time. */
async function memorySections(results: Results, fleet: Fleet): Promise<void> {
  const turns = (reps: number) => Array.from({ length: reps }, (_, rep) => (rep % 2 === 0 ? opts.systems : [...opts.systems].reverse())).flat();
  for (const system of opts.sections.includes('idle') ? turns(opts.idleReps) : []) {
    const row = await idleMemory(system, fleet);
    if (opts.sections.includes('heap') && system !== 'uws') row.heapTop = await heapBreakdown(system, fleet);
    results.idle.push(row);
    console.log(
      `idle   ${system}: ${f0(row.bytesPerSocket)} B RSS (marginal ${f0(row.marginalBytesPerSocket)} B; JS heap ${f0(row.heapBytesPerSocket)} B used, ` +
        `${f0(row.heapCommittedBytesPerSocket)} B committed) per joined socket (${f1(row.rssBeforeMb)} -> ${f1(row.rssAfterMb)} MB for ${row.sockets})`,
    );
  }
  for (const system of opts.sections.includes('memory') ? turns(opts.memReps) : []) {
    const o = { sockets: opts.memSockets, payloads: opts.payloads, settleS: opts.memSettleS, watchS: opts.memWatchS, allocProfile: args.flag('alloc-profile') };
    const row = await memoryAfterTraffic(system, fleet, o, serverFlags(system));
    results.memory.push(row);
    logMemory(row);
  }
}

async function main(): Promise<void> {
  await preparePerformers(performerBuilds(args));
  console.log(`performer: start flags ${serverFlags('performer').join(' ') || '(none)'}`);
  if (opts.profile) return profileRun();
  const t0 = Date.now();
  const results: Results = { machine: machine(), options: opts, ceiling: [], closed: [], closedRuns: [], open: [], idle: [], sioClient: [], memory: [] };
  console.log(`broadcast bench (${opts.quick ? 'quick' : 'full'}): ${results.machine}`);
  console.log(`systems ${opts.systems.join(', ')}; N ${opts.ns.join(', ')}; payloads ${opts.payloads.join(', ')} B; W=${opts.window}; generators ${opts.gens} + sender`);
  const fleet = await startFleet(opts.gens);
  try {
    if (opts.ceiling && opts.sections.includes('ceiling')) {
      for (const payload of opts.quick ? [100] : opts.payloads) {
        await quiet.wait();
        const row = await generatorCeiling(fleet, 1000, payload, opts.quick ? 1000 : 3000);
        results.ceiling.push(row);
        console.log(`ceiling ${size(payload)}: ${f0(row.deliveriesPerSec)} deliveries/s, generators ${row.genPcts.map(f0).join('/')}% CPU, blaster ${f0(row.blasterPct)}%`);
      }
    }
    const paired = opts.systems.filter((x) => x === 'uws' || x.startsWith('performer'));
    for (const n of opts.sections.includes('loops') || opts.sections.includes('closed') ? opts.ns : []) {
      const commonRate = new Map<number, number>();
      if (opts.systems.includes('socketio')) await socketioLoops(results, fleet, n, commonRate);
      if (paired.length > 0) await pairedLoops(results, fleet, n, paired, commonRate);
    }
    if (opts.sioClientRow && opts.sections.includes('sio-client') && opts.systems.includes('socketio')) {
      // The stock client as the subscriber, to show it is the bottleneck of a socket.io bench that uses it.
      const srv = await startSystem('socketio');
      try {
        await connectRoom(fleet, srv, 1000, 'socket.io-client');
        const row = await closedLoop(srv, fleet, 1000, 100, 'socketio (socket.io-client subs)');
        results.sioClient.push(mergeClosed([row]));
        console.log(`closed socket.io with socket.io-client subscribers N=1000 100 B: ${f0(row.deliveriesPerSec)} deliveries/s, server ${f0(row.serverPct)}%, gens ${row.genPcts.map(f0).join('/')}%`);
      } finally {
        await disconnectAll(fleet);
        await srv.proc.stop();
      }
    }
    await memorySections(results, fleet);
  } finally {
    await Promise.all(fleet.all.map((p) => p.stop(3000)));
  }
  console.log(`\n${report(results)}`);
  console.log(`\ntotal ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (opts.out) {
    writeFileSync(opts.out, JSON.stringify(results, (k, v) => (k === 'raw' ? undefined : v), 2));
    console.log(`results written to ${opts.out}`);
  }
}

runBench('broadcast', main, { hardLimitMs: 3 * 3600_000, cleanup: async () => undefined });
