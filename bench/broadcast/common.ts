import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import inspector from 'node:inspector';
import v8 from 'node:v8';
import type * as UwsTypes from 'uWebSockets.js';

/**
 * Shared by every process of the broadcast bench: the room and topic, the fixed-layout payload the receivers parse
 * without allocating, the monotonic clock (CLOCK_MONOTONIC is system-wide, so timestamps compare across processes),
 * /proc readers for CPU and RSS, and the IPC message shapes.
 */

export const ROOM = 'bench';
/** Channel topic on the wire; also the uWS pub/sub topic of the bare peer, so frames are byte-for-byte the same size. */
export const TOPIC = `realtime:${ROOM}`;
export const EVENT = 'b';

/**
 * Which server a run talks to; `performer-before` is Performer built at another git ref (`--before=REF`), run beside
 * the current one; `ceiling` is the frame blaster that measures the load generator alone.
 */
export type System = 'performer' | 'performer-before' | 'uws' | 'socketio';
export type Target = System | 'ceiling';
/** The subscriber protocol a raw connection speaks after the upgrade. */
export type Proto = 'phoenix' | 'simple' | 'sio';

export function protoOf(target: Target): Proto {
  return target.startsWith('performer') ? 'phoenix' : target === 'socketio' ? 'sio' : 'simple';
}

export function pathOf(target: Target, token: string): string {
  if (target.startsWith('performer')) return `/socket/websocket?apikey=${token}&vsn=2.0.0`;
  if (target === 'socketio') return `/socket.io/?EIO=4&transport=websocket&room=${ROOM}`;
  return '/ws';
}

/*
 * Payload (JSON, identical for every system):
 *   {"t":"TTTTTTTTTTTTTTTT","s":"SSSSSSSSSS","f":"P","p":"xxxx…"}
 * t = send time in µs (monotonic), s = sequence number, f = phase (w warm-up, m measured), p = padding to the size.
 * Strings, not numbers, so socket.io's parse/re-stringify keeps the fixed layout.
 */
export const TS_OFF = 6;
export const SEQ_OFF = 29;
export const PHASE_OFF = 46;
/** Bytes of the payload a receiver must see to read t, s and f. */
export const PAYLOAD_PREFIX_LEN = 47;
export const PHASE_WARM = 0x77; // 'w'
export const PHASE_MEASURE = 0x6d; // 'm'

export function payloadTemplate(size: number): Buffer {
  const head = '{"t":"0000000000000000","s":"0000000000","f":"w","p":"';
  const tail = '"}';
  const pad = Math.max(0, size - head.length - tail.length);
  const buf = Buffer.from(head + 'x'.repeat(pad) + tail, 'latin1');
  if (buf[TS_OFF - 1] !== 0x22 || buf[SEQ_OFF - 1] !== 0x22 || buf[PHASE_OFF - 1] !== 0x22) throw new Error('payload layout');
  return buf;
}

export function writeDigits(buf: Uint8Array, off: number, width: number, value: number): void {
  let v = Math.floor(value);
  for (let i = width - 1; i >= 0; i--) {
    buf[off + i] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
}

export function readDigits(buf: Uint8Array, off: number, width: number): number {
  let v = 0;
  for (let i = 0; i < width; i++) v = v * 10 + (buf[off + i] - 48);
  return v;
}

/** Stamps t, s and f into a payload that starts at `off` of `buf`. */
export function stamp(buf: Uint8Array, off: number, tsUs: number, seq: number, phase: number): void {
  writeDigits(buf, off + TS_OFF, 16, tsUs);
  writeDigits(buf, off + SEQ_OFF, 10, seq);
  buf[off + PHASE_OFF] = phase;
}

/** Monotonic microseconds, comparable between processes of this machine. */
export function nowUs(): number {
  const t = process.hrtime();
  return t[0] * 1e6 + Math.floor(t[1] / 1000);
}

/** Loads the native uWebSockets.js binding directly, as src/http/uws.ts does (no JavaScript fallback). */
export function loadUws(): typeof UwsTypes {
  const require = createRequire(import.meta.url);
  return require(`uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`) as typeof UwsTypes;
}

// ---- /proc ----

const CLK_TCK = 100;

/** User + system CPU seconds of a process, all its threads (GC and uWS included). */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Machine-wide busy and steal CPU seconds (all cores) from /proc/stat. */
export function machineCpuSeconds(): { busy: number; steal: number } {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice
    const busy = v[0] + v[1] + v[2] + v[5] + v[6];
    return { busy: busy / CLK_TCK, steal: (v[7] ?? 0) / CLK_TCK };
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
    // Not fatal: the peak is then the lifetime peak of that server process.
  }
}

// ---- IPC ----

/** Orchestrator -> child request; the child answers with `{ id, ok, ... }` or `{ id, ok: false, error }`. */
export interface Request {
  id: number;
  cmd: string;
  [k: string]: unknown;
}

export interface Reply {
  id: number;
  ok: boolean;
  error?: string;
  [k: string]: unknown;
}

/** Answers the orchestrator's requests in a child; a handler throwing becomes `{ ok: false, error }`. */
export function serveRequests(handlers: Record<string, (req: Request) => unknown>): void {
  process.on('message', (raw) => {
    const req = raw as Request;
    if (typeof req?.id !== 'number') return;
    const handler = handlers[req.cmd];
    const answer = (r: Omit<Reply, 'id'>) => process.send?.({ id: req.id, ...r });
    if (!handler) return answer({ ok: false, error: `unknown command ${req.cmd}` });
    Promise.resolve()
      .then(() => handler(req))
      .then(
        (result) => answer({ ok: true, ...((result as object | undefined) ?? {}) }),
        (err: unknown) => answer({ ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
      );
  });
  // The orchestrator is gone: do not linger.
  process.on('disconnect', () => process.exit(0));
}

export interface HeapEntry {
  key: string;
  count: number;
  bytes: number;
}

/**
 * Self size of the JS heap grouped by node type and constructor/name, and for values (strings, arrays, plain
 * objects, closures, numbers) also by what holds them (`<- Owner.property`, cons-string trees credited to their
 * root's holder). A heap snapshot, summarised in-process so only the summary crosses IPC.
 */
export function heapSummary(top = 200): HeapEntry[] {
  const file = v8.writeHeapSnapshot(path.join(os.tmpdir(), `bench-heap-${process.pid}-${Date.now()}.heapsnapshot`));
  try {
    const snap = JSON.parse(readFileSync(file, 'utf8')) as {
      snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
      nodes: number[];
      edges: number[];
      strings: string[];
    };
    const meta = snap.snapshot.meta;
    const stride = meta.node_fields.length;
    const types = meta.node_types[0];
    const iType = meta.node_fields.indexOf('type');
    const iName = meta.node_fields.indexOf('name');
    const iSize = meta.node_fields.indexOf('self_size');
    const iEdges = meta.node_fields.indexOf('edge_count');
    const eStride = meta.edge_fields.length;
    const eType = meta.edge_fields.indexOf('type');
    const eName = meta.edge_fields.indexOf('name_or_index');
    const eTo = meta.edge_fields.indexOf('to_node');
    const edgeTypes = meta.edge_types[0];
    const nodeCount = snap.nodes.length / stride;
    // First strong retainer of every node: owner node ordinal and edge label.
    const owner = new Int32Array(nodeCount).fill(-1);
    const label = new Array<string>(nodeCount);
    let e = 0;
    for (let n = 0; n < nodeCount; n++) {
      const count = snap.nodes[n * stride + iEdges];
      for (let k = 0; k < count; k++, e += eStride) {
        const et = edgeTypes[snap.edges[e + eType]];
        if (et === 'weak' || et === 'shortcut') continue;
        const to = snap.edges[e + eTo] / stride;
        if (owner[to] !== -1) continue;
        owner[to] = n;
        const nm = snap.edges[e + eName];
        label[to] = et === 'element' || et === 'hidden' ? `[${nm}]` : snap.strings[nm];
      }
    }
    const typeOf = (n: number) => types[snap.nodes[n * stride + iType]];
    const nameOf = (n: number) => {
      const t = typeOf(n);
      if (t === 'string' || t === 'concatenated string' || t === 'sliced string' || t === 'number') return '';
      const name = snap.strings[snap.nodes[n * stride + iName]];
      return name.length > 50 ? `${name.slice(0, 47)}...` : name;
    };
    const isValue = (t: string, name: string) =>
      t === 'string' || t === 'concatenated string' || t === 'sliced string' || t === 'array' || t === 'closure' || t === 'number' || (t === 'object' && (name === 'Object' || name === 'Array'));
    const agg = new Map<string, HeapEntry>();
    for (let n = 0; n < nodeCount; n++) {
      const type = typeOf(n);
      const name = nameOf(n);
      let key = `${type}:${name}`;
      if (isValue(type, name)) {
        // Walk up through value holders (cons-string parts, arrays, plain objects) to the first named owner.
        let cur = n;
        let via = '';
        for (let hops = 0; hops < 256 && owner[cur] !== -1; hops++) {
          const o = owner[cur];
          // Collapse cons-string chains (a += b … builds first.first.first…) to one step.
          if (!(typeOf(cur) === 'concatenated string' && typeOf(o) === 'concatenated string')) via = `${label[cur]}${via ? `.${via}` : ''}`;
          cur = o;
          if (!isValue(typeOf(o), nameOf(o))) break;
        }
        if (cur !== n) key += ` <- ${typeOf(cur)}:${nameOf(cur)}.${via}`;
      }
      const entry = agg.get(key) ?? { key, count: 0, bytes: 0 };
      entry.count++;
      entry.bytes += snap.nodes[n * stride + iSize];
      agg.set(key, entry);
    }
    return [...agg.values()].sort((a, b) => b.bytes - a.bytes).slice(0, top);
  } finally {
    rmSync(file, { force: true });
  }
}

interface SamplingHeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingHeapNode[];
}

interface SamplingHeapProfile {
  head: SamplingHeapNode;
}

export interface AllocationSite {
  /** `function (file:line)` of the allocating frame, with its caller's for context. */
  site: string;
  bytes: number;
}

/** Bytes allocated in all, and by function (self, with its caller), largest first, from a sampling heap profile. */
export function allocationSites(profile: SamplingHeapProfile, top: number): { totalBytes: number; sites: AllocationSite[] } {
  let totalBytes = 0;
  const bySite = new Map<string, number>();
  const name = (n: SamplingHeapNode) => {
    const f = n.callFrame;
    const file = f.url.replace(/^.*\/(node_modules\/)/, '$1').replace(/^.*\/(dist|src)\//, '$1/');
    return `${f.functionName || '(anonymous)'}${file ? ` (${file}:${f.lineNumber + 1})` : ''}`;
  };
  const walk = (n: SamplingHeapNode, parent: string) => {
    totalBytes += n.selfSize;
    if (n.selfSize > 0) {
      const key = `${name(n)} <- ${parent}`;
      bySite.set(key, (bySite.get(key) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, name(n));
  };
  walk(profile.head, '');
  const sites = [...bySite.entries()].map(([site, bytes]) => ({ site, bytes })).sort((a, b) => b.bytes - a.bytes).slice(0, top);
  return { totalBytes, sites };
}

/** Server children: `gc` (when started with --expose-gc), `heap` (a heap summary), V8 CPU profiling and `stop`. */
export function serveServerRequests(stop: () => Promise<void>): void {
  let session: inspector.Session | null = null;
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      (session as inspector.Session).post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))),
    );
  serveRequests({
    profileStart: async (req) => {
      session = new inspector.Session();
      session.connect();
      await post('Profiler.enable');
      await post('Profiler.setSamplingInterval', { interval: Number(req.intervalUs ?? 200) });
      await post('Profiler.start');
      return {};
    },
    profileStop: async (req) => {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      session?.disconnect();
      session = null;
      writeFileSync(String(req.file), JSON.stringify(profile));
      return { file: req.file };
    },
    /** Sampling allocation profiler (garbage included): where a phase allocates, not what it keeps. */
    allocStart: async () => {
      session = new inspector.Session();
      session.connect();
      await post('HeapProfiler.enable');
      await post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      return {};
    },
    allocStop: async (req) => {
      const { profile } = (await post('HeapProfiler.stopSampling')) as { profile: SamplingHeapProfile };
      session?.disconnect();
      session = null;
      return allocationSites(profile, Number(req.top ?? 25));
    },
    gc: () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (gc) {
        gc();
        gc();
      }
      return { gc: Boolean(gc), ...process.memoryUsage() };
    },
    /** Memory as it is, no GC forced: process.memoryUsage() and V8's heap spaces (committed = physical pages). */
    mem: () => ({
      ...process.memoryUsage(),
      spaces: v8.getHeapSpaceStatistics().map((s) => ({ name: s.space_name, size: s.space_size, used: s.space_used_size, physical: s.physical_space_size })),
    }),
    heap: () => ({ entries: heapSummary(Number(process.env.BENCH_HEAP_TOP ?? 3000)) }),
    stop: async () => {
      await stop();
      // Exit after the reply is flushed; a normal exit writes --cpu-prof profiles.
      setTimeout(() => process.exit(0), 50);
    },
  });
}
