import { readFileSync } from 'node:fs';
import type { Reply } from '../lib/child.js';
import { procMem } from '../lib/cpu.js';
import type { AllocationSite } from '../lib/heap.js';
import { sleep } from '../lib/time.js';
import type { System } from './common.js';
import { best, connectRoom, disconnectAll, startSystem, type Fleet, type RunningSystem } from './fleet.js';
import { f0, f1, f3, size } from './format.js';
import { closedLoop } from './rows.js';

/**
 * Memory per idle joined socket as a user meets it: one server process, `sockets` subscribers connected and joined
 * to one channel, a broadcast load phase to all of them, then idle. RSS (from /proc, no GC forced) is read before
 * the first connection, once everyone joined, and every second of the idle period after the load; the figure per
 * socket is RSS growth / sockets at `settleS` seconds of idle. A forced GC at the very end shows how much of it is
 * garbage V8 had not collected yet, and V8's heap spaces and the process's mappings say where the bytes are.
 */

export interface SpaceStat {
  name: string;
  size: number;
  used: number;
  physical: number;
}

/** Resident memory of a process by kind of mapping (/proc/<pid>/smaps), in KiB. */
export interface Mappings {
  /** glibc malloc's main arena (brk heap): uWS, libuv, node's C++ objects. */
  brkKb: number;
  /** Anonymous mappings: V8's heap pages, malloc's large blocks and thread arenas, stacks of threads. */
  anonKb: number;
  /** File-backed: node's binary, shared libraries, the uWS addon. */
  fileKb: number;
}

export interface MemPoint {
  rssKb: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  spaces: SpaceStat[];
  maps: Mappings;
}

export interface MemoryRow {
  system: string;
  /** Node flags the server ran with (beyond the bench's --expose-gc). */
  flags: string;
  /** Joined sockets: subscribers, the closed loop's probes and the sender. */
  sockets: number;
  connectMs: number;
  before: MemPoint;
  joined: MemPoint;
  /** RSS each second of the idle period after the load phase, from 0 s. */
  idleRssKb: number[];
  settleS: number;
  settled: MemPoint;
  /** After a forced full GC, at the end. */
  gc: MemPoint;
  load: { payload: number; msgsPerSec: number; deliveriesPerSec: number; cpuUsPerDelivery: number; loss: number }[];
  /** RSS growth per joined socket at `settleS` seconds of idle after the load: the headline figure. */
  bytesPerSocket: number;
  /** The same right after the joins, before any broadcast. */
  joinedBytesPerSocket: number;
  /** The same after the forced GC. */
  gcBytesPerSocket: number;
  /** Bytes allocated (garbage included) per connect + join, and by whom, when `allocProfile` is on. */
  connectAllocation?: { bytesPerSocket: number; sites: { site: string; bytesPerSocket: number }[] };
  /** Bytes allocated during the load phase, and by whom, when `allocProfile` is on. */
  loadAllocation?: { totalBytes: number; sites: AllocationSite[]; phases: number };
}

export interface MemoryOptions {
  sockets: number;
  payloads: number[];
  settleS: number;
  /** Seconds of idle RSS sampling after the load (at least settleS). */
  watchS: number;
  /** Sample what the connects and joins allocate (a sampling heap profiler: slows them down a little). */
  allocProfile: boolean;
}

export function mappings(pid: number): Mappings {
  const out: Mappings = { brkKb: 0, anonKb: 0, fileKb: 0 };
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'latin1');
  } catch {
    return { brkKb: NaN, anonKb: NaN, fileKb: NaN };
  }
  let kind: keyof Mappings = 'anonKb';
  for (const line of text.split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      const path = line.split(/\s+/).slice(5).join(' ');
      kind = path === '[heap]' ? 'brkKb' : path === '' || path.startsWith('[') ? 'anonKb' : 'fileKb';
    } else if (line.startsWith('Rss:')) {
      out[kind] += Number(/(\d+)/.exec(line)?.[1] ?? 0);
    }
  }
  return out;
}

async function point(srv: RunningSystem, gc = false): Promise<MemPoint> {
  const m: Reply = gc ? await srv.proc.call('gc').then(() => sleep(500)).then(() => srv.proc.call('mem')) : await srv.proc.call('mem');
  return {
    rssKb: procMem(srv.proc.pid).rssKb,
    heapUsed: Number(m.heapUsed),
    heapTotal: Number(m.heapTotal),
    external: Number(m.external),
    arrayBuffers: Number(m.arrayBuffers),
    spaces: m.spaces as SpaceStat[],
    maps: mappings(srv.proc.pid),
  };
}

export async function memoryAfterTraffic(
  system: System,
  fleet: Fleet,
  o: MemoryOptions,
  /** The node flags the server runs with (for the report). */
  flags: string[] = [],
): Promise<MemoryRow> {
  const srv = await startSystem(system);
  try {
    await sleep(1000);
    // The baseline is the fresh server with its start-up garbage collected: the growth is all the sockets'.
    const before = await point(srv, true);
    if (o.allocProfile) await srv.proc.call('allocStart');
    const connectMs = await connectRoom(fleet, srv, o.sockets);
    let connectAllocation: MemoryRow['connectAllocation'];
    if (o.allocProfile) {
      const r = await srv.proc.call('allocStop', { top: 30 });
      const perSocket = (b: number) => b / (o.sockets + 1);
      connectAllocation = {
        bytesPerSocket: perSocket(Number(r.totalBytes)),
        sites: (r.sites as AllocationSite[]).map((x) => ({ site: x.site, bytesPerSocket: perSocket(x.bytes) })),
      };
    }
    await sleep(2000);
    const joined = await point(srv);
    const load: MemoryRow['load'] = [];
    if (o.allocProfile) await srv.proc.call('allocStart');
    for (const payload of o.payloads) {
      const row = await best(() => closedLoop(srv, fleet, o.sockets, payload));
      load.push({ payload, msgsPerSec: row.msgsPerSec, deliveriesPerSec: row.deliveriesPerSec, cpuUsPerDelivery: row.cpuUsPerDelivery, loss: row.loss });
    }
    let loadAllocation: MemoryRow['loadAllocation'];
    if (o.allocProfile) {
      const r = await srv.proc.call('allocStop', { top: 30 });
      const messages = load.reduce((a, l) => a + (l.deliveriesPerSec > 0 ? 1 : 0), 0);
      loadAllocation = { totalBytes: Number(r.totalBytes), sites: r.sites as AllocationSite[], phases: messages };
    }
    const idleRssKb: number[] = [];
    let settled: MemPoint | null = null;
    const watch = Math.max(o.watchS, o.settleS);
    for (let s = 0; s <= watch; s++) {
      if (s === o.settleS) {
        settled = await point(srv);
        idleRssKb.push(settled.rssKb);
      } else {
        idleRssKb.push(procMem(srv.proc.pid).rssKb);
      }
      if (s < watch) await sleep(1000);
    }
    const gc = await point(srv, true);
    const joinedSockets = o.sockets + 1;
    const per = (p: MemPoint) => ((p.rssKb - before.rssKb) * 1024) / joinedSockets;
    const s = settled as MemPoint;
    return {
      system,
      flags: flags.join(' '),
      sockets: joinedSockets,
      connectMs,
      before,
      joined,
      idleRssKb,
      settleS: o.settleS,
      settled: s,
      gc,
      load,
      bytesPerSocket: per(s),
      joinedBytesPerSocket: per(joined),
      gcBytesPerSocket: per(gc),
      connectAllocation,
      loadAllocation,
    };
  } finally {
    await disconnectAll(fleet);
    await srv.proc.stop();
  }
}

export function logMemory(row: MemoryRow): void {
  const mb = (kb: number) => f1(kb / 1024);
  const sp = (p: MemoryRow['before']) => p.spaces.map((x) => `${x.name.replace('_space', '')} ${mb(x.physical / 1024)}`).join(', ');
  console.log(
    `memory ${row.system}${row.flags ? ` [${row.flags}]` : ''}: ${f0(row.bytesPerSocket)} B RSS per joined socket after load + ${row.settleS} s idle ` +
      `(joined, before load ${f0(row.joinedBytesPerSocket)} B; after a forced GC ${f0(row.gcBytesPerSocket)} B); ${row.sockets} sockets joined in ${row.connectMs} ms`,
  );
  console.log(`  RSS MB: before ${mb(row.before.rssKb)}, joined ${mb(row.joined.rssKb)}, idle after load ${row.idleRssKb.map(mb).join(' ')}, after GC ${mb(row.gc.rssKb)}`);
  for (const [name, p] of [['before', row.before], ['joined', row.joined], ['settled', row.settled], ['gc', row.gc]] as const) {
    console.log(
      `  ${name}: heap used ${mb(p.heapUsed / 1024)} / committed ${mb(p.heapTotal / 1024)} MB, external ${mb(p.external / 1024)}, maps brk ${mb(p.maps.brkKb)} anon ${mb(p.maps.anonKb)} file ${mb(p.maps.fileKb)}; spaces (physical MB): ${sp(p)}`,
    );
  }
  if (row.connectAllocation) {
    console.log(`  allocated per connect + join: ${f0(row.connectAllocation.bytesPerSocket)} B (sampled); by function (self) <- caller:`);
    for (const x of row.connectAllocation.sites) console.log(`    ${f0(x.bytesPerSocket).padStart(6)} B  ${x.site}`);
  }
  if (row.loadAllocation) {
    console.log(`  allocated during the load phase: ${f0(row.loadAllocation.totalBytes / 2 ** 20)} MB (sampled); by function (self) <- caller:`);
    for (const x of row.loadAllocation.sites) console.log(`    ${f0(x.bytes / 1024).padStart(8)} KB  ${x.site}`);
  }
  console.log(`  load: ${row.load.map((l) => `${size(l.payload)} ${f0(l.deliveriesPerSec)} deliveries/s (${f0(l.msgsPerSec)} msg/s) ${f3(l.cpuUsPerDelivery)} µs/delivery, lost ${f0(l.loss)}`).join('; ')}`);
}
