import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import pg from 'pg';
import { formatSummary, summarize } from './cpuprofile.js';
import { machineCpuSeconds, procCpuSeconds, procMem, resetPeakRss, type HeapEntry, type Reply, type System, type Target } from './common.js';
import { buildPerformer, buildPerformerAt, startFlags } from '../common/performer.js';
import { f0, f1, f2, f3, size } from './format.js';
import { logMemory, memoryAfterTraffic, type MemoryRow } from './memory.js';
import { report } from './report.js';

/**
 * Broadcast fan-out bench: Performer vs a bare uWebSockets.js pub/sub peer (the ceiling) vs socket.io.
 *
 *   node --import tsx bench/broadcast/run.ts [--quick] [--profile] [--out=results.json]
 *        [--systems=performer,uws,socketio] [--n=100,1000,5000] [--gens=2] [--window=8] [--no-sio-client] [--no-ceiling]
 *
 * Every server runs in its own child process (CPU and RSS read from /proc), the subscribers in `--gens` generator
 * processes, the sender (+ probe subscribers that pace the closed loop) in one more. All traffic is on 127.0.0.1.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');

// ---- options ----

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const list = (name: string): string[] | undefined => option(name)?.split(',').filter(Boolean);

const quick = flag('quick');
const opts = {
  quick,
  profile: flag('profile'),
  systems: (list('systems') ?? ['uws', 'performer', ...(option('before') ? ['performer-before'] : []), 'socketio']) as System[],
  /** Git ref of the `performer-before` system: Performer as it was there, built and run beside the current one. */
  before: option('before'),
  ns: (list('n') ?? (quick ? ['100', '500'] : ['100', '1000', '5000'])).map(Number),
  payloads: (list('payloads') ?? (quick ? ['100'] : ['100', '1024'])).map(Number),
  gens: Number(option('gens') ?? 2),
  window: Number(option('window') ?? 8),
  probes: Number(option('probes') ?? 8),
  warmupMs: quick ? 300 : 500,
  closedMs: Number(option('closed-ms') ?? (quick ? 1000 : 3000)),
  openMs: Number(option('open-ms') ?? (quick ? 1000 : 3000)),
  idleSockets: Number(option('idle') ?? (quick ? 1000 : 10_000)),
  idleSettleMs: quick ? 500 : 1500,
  /** The `memory` section: joined sockets, idle seconds before the figure is read (load phase: closed loop per payload). */
  memSockets: Number(option('mem-sockets') ?? option('idle') ?? (quick ? 1000 : 10_000)),
  memSettleS: Number(option('mem-settle') ?? 10),
  memWatchS: Number(option('mem-watch') ?? 20),
  memReps: Number(option('mem-reps') ?? (quick ? 1 : 2)),
  /** Extra node flags for the Performer server process (experiments; the start script's flags are always used). */
  performerFlags: (option('performer-flags') ?? '').split(' ').filter(Boolean),
  /** Parts of the run: ceiling, loops (closed + open), sio-client, idle. */
  sections: list('sections') ?? ['ceiling', 'loops', 'sio-client', 'idle'],
  ceiling: !flag('no-ceiling'),
  sioClientRow: !quick && !flag('no-sio-client'),
  out: option('out'),
  /** A row is repeated while outside load exceeded 25% of a core, up to this many attempts. */
  attempts: Number(option('attempts') ?? (quick ? 1 : 2)),
  /** Seconds the whole run may spend on such repeats. */
  repeatBudgetS: Number(option('repeat-budget') ?? (quick ? 0 : 60)),
  /** Alternating repetitions of each Performer / bare uWS row. */
  reps: Number(option('reps') ?? (quick ? 1 : 2)),
  /**
   * "common" open-loop rate = this fraction of socket.io's (the slowest) closed-loop messages/s at that N and size.
   * Open loop costs more CPU per delivery than the closed loop (no batching of messages per socket write), so a
   * quarter of the closed-loop rate keeps the slowest server clear of saturation.
   */
  openFraction: Number(option('open-fraction') ?? 0.25),
  /** "high" open-loop rate (Performer and bare uWS only) = this fraction of the bare uWS peer's closed-loop messages/s. */
  highFraction: Number(option('high-fraction') ?? 0.12),
  /** Seconds the whole run may spend waiting for other load on the machine to pass. */
  quietBudgetS: Number(option('quiet-budget') ?? (quick ? 0 : 45)),
};

// ---- child processes ----

let nextId = 1;

class Proc {
  readonly child: ChildProcess;
  readonly ready: Promise<Record<string, unknown>>;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, ((msg: Record<string, unknown>) => void)[]>();
  exited = false;

  /** `file`: a .ts file of this directory (run through tsx), or an absolute path to plain JavaScript. */
  constructor(
    readonly name: string,
    file: string,
    extraExecArgv: string[] = [],
    env: Record<string, string> = {},
  ) {
    const plain = path.isAbsolute(file);
    this.child = fork(plain ? file : path.join(here, file), [], {
      cwd: repoRoot,
      execArgv: [...(plain ? [] : ['--import', 'tsx']), ...extraExecArgv],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within 60 s`)), 60_000);
      this.on('ready', (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
      this.child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code}) before it was ready`));
      });
    });
    this.ready.catch(() => undefined);
    this.child.on('message', (raw) => {
      const msg = raw as Record<string, unknown>;
      if (typeof msg.id === 'number') {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        const reply = msg as unknown as Reply;
        if (!p) return;
        if (reply.ok) p.resolve(reply);
        else p.reject(new Error(`${name}: ${reply.error}`));
        return;
      }
      const kind = String(msg.type ?? msg.event ?? '');
      for (const l of this.listeners.get(kind) ?? []) l(msg);
    });
    this.child.once('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${code ?? signal})`));
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  on(kind: string, fn: (msg: Record<string, unknown>) => void): () => void {
    const arr = this.listeners.get(kind) ?? [];
    arr.push(fn);
    this.listeners.set(kind, arr);
    return () => this.listeners.set(kind, (this.listeners.get(kind) ?? []).filter((f) => f !== fn));
  }

  call(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<Reply> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, cmd, ...args });
    });
  }

  /** Asks the child to stop, then kills it (by its pid) if it has not exited within `graceMs`. */
  async stop(graceMs = 8000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.call('stop', {}, graceMs).catch(() => undefined);
    const timer = setTimeout(() => {
      if (!this.exited) this.child.kill('SIGKILL');
    }, graceMs);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- database ----

/**
 * BENCH_DATABASE_URL as given, or `performer_bench` on the machine's PostgreSQL, recreated for every run: the default
 * tenant's limits are stored when the tenant is first created, so a database left by an older run could keep
 * lower limits.
 */
async function benchDatabaseUrl(name = 'performer_bench'): Promise<string> {
  const given = process.env.BENCH_DATABASE_URL;
  if (given && name === 'performer_bench') return given;
  const admin = given ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

// ---- servers ----

export interface RunningSystem {
  system: Target;
  proc: Proc;
  port: number;
  token: string;
}

const SERVER_FILES: Record<Target, string> = {
  performer: 'server-performer.ts',
  'performer-before': 'server-performer.ts',
  uws: 'peer-uws.ts',
  socketio: 'peer-socketio.ts',
  ceiling: 'ceiling-server.ts',
};

/**
 * Servers run as plain JavaScript, as `node dist/main.js` runs, not through tsx: tsx's loader runs in a thread of its
 * own (Node 20 module hooks) with its own V8 heap, tens of MB of RSS that grow and shrink on their own schedule and
 * would blur the server's memory figures. Each server file is bundled once (its bench imports inlined, packages
 * left to node_modules) into bench/.tmp/.
 */
const compiled = new Map<string, string>();

function compiledServer(file: string): string {
  let out = compiled.get(file);
  if (!out) {
    out = path.join(repoRoot, 'bench', '.tmp', 'broadcast-servers', file.replace(/\.ts$/, '.mjs'));
    buildSync({ entryPoints: [path.join(here, file)], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' });
    compiled.set(file, out);
  }
  return out;
}

/** `performer-before`: its build, start flags and database (set up by main when `--before` is given). */
let before: { dist: string; flags: string[]; dbUrl: string } | null = null;

/** The node flags a server runs with: Performer's are its start script's (as `npm start` runs it). */
function serverFlags(system: Target): string[] {
  if (system === 'performer') return [...startFlags(), ...opts.performerFlags];
  if (system === 'performer-before') return before?.flags ?? [];
  return [];
}

async function startSystem(system: Target, dbUrl: string, profileDir?: string, extraExecArgv: string[] = []): Promise<RunningSystem> {
  const execArgv = ['--expose-gc', ...serverFlags(system), ...extraExecArgv];
  if (profileDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  let env: Record<string, string> = { BENCH_DATABASE_URL: dbUrl };
  if (system === 'performer-before') {
    if (!before) throw new Error('performer-before needs --before=<git ref>');
    env = { BENCH_DATABASE_URL: before.dbUrl, BENCH_PERFORMER_DIST: before.dist, BENCH_DATA_NAME: 'performer-bench-before-data' };
  }
  // BENCH_PERFORMER_FROM_SRC=1 runs Performer's src/ through tsx, so its servers stay on tsx too.
  const plain = process.env.BENCH_PERFORMER_FROM_SRC !== '1';
  if (plain && system === 'performer') env.BENCH_PERFORMER_DIST = path.join(repoRoot, 'dist');
  const proc = new Proc(system, plain ? compiledServer(SERVER_FILES[system]) : SERVER_FILES[system], execArgv, env);
  const ready = await proc.ready;
  currentServerPid = proc.pid;
  return { system, proc, port: Number(ready.port), token: String(ready.token ?? '') };
}

// ---- generators ----

export interface Fleet {
  gens: Proc[];
  sender: Proc;
  all: Proc[];
}

async function startFleet(n: number): Promise<Fleet> {
  const gens = Array.from({ length: n }, (_, i) => new Proc(`gen${i}`, 'loadgen.ts'));
  const sender = new Proc('sender', 'loadgen.ts');
  const all = [...gens, sender];
  await Promise.all(all.map((p) => p.ready));
  currentFleet = { gens, sender, all };
  return currentFleet;
}

/** Connects `count` subscribers spread over the generators (indices first..first+count-1). */
async function connectSubscribers(fleet: Fleet, srv: RunningSystem, count: number, client?: 'socket.io-client'): Promise<number> {
  const started = Date.now();
  const g = fleet.gens.length;
  let first = 0;
  await Promise.all(
    fleet.gens.map((gen, i) => {
      const share = Math.floor(count / g) + (i < count % g ? 1 : 0);
      const start = first;
      first += share;
      if (share === 0) return Promise.resolve();
      return gen.call('connect', { tag: srv.system, target: srv.system, port: srv.port, token: srv.token, first: start, count: share, concurrency: 50, client }, 300_000);
    }),
  );
  return Date.now() - started;
}

/** Probe subscribers pacing the closed loop (in the sender process, counted in N). */
const probesFor = (n: number) => Math.max(1, Math.min(opts.probes, Math.floor(n / 20)));

/** N subscribers in total: N-P in the generators, P probes in the sender process; plus the sender itself. */
async function connectRoom(fleet: Fleet, srv: RunningSystem, n: number, client?: 'socket.io-client'): Promise<number> {
  const p = probesFor(n);
  const ms = await connectSubscribers(fleet, srv, n - p, client);
  await fleet.sender.call('sender', { tag: srv.system, target: srv.system, port: srv.port, token: srv.token, probes: p, firstProbeIndex: n - p });
  return ms;
}

async function disconnectAll(fleet: Fleet, tag?: string): Promise<void> {
  await Promise.all(fleet.all.map((p) => p.call('close', tag === undefined ? {} : { tag })));
  await sleep(300);
}

interface GenStats {
  delivered: number;
  warmDelivered: number;
  firstUs: number;
  lastUs: number;
  nSamples: number;
  unexpectedCloses: number;
  connections: number;
  reads: number;
  frames: number;
}

async function gatherStats(fleet: Fleet): Promise<GenStats> {
  const replies = await Promise.all(fleet.all.map((p) => p.call('stats')));
  const out: GenStats = { delivered: 0, warmDelivered: 0, firstUs: Infinity, lastUs: 0, nSamples: 0, unexpectedCloses: 0, connections: 0, reads: 0, frames: 0 };
  for (const r of replies) {
    out.delivered += Number(r.delivered);
    out.warmDelivered += Number(r.warmDelivered);
    if (Number(r.firstUs) > 0) out.firstUs = Math.min(out.firstUs, Number(r.firstUs));
    out.lastUs = Math.max(out.lastUs, Number(r.lastUs));
    out.nSamples += Number(r.nSamples);
    out.unexpectedCloses += Number(r.unexpectedCloses);
    out.connections += Number(r.connections);
    out.reads += Number(r.reads);
    out.frames += Number(r.frames);
  }
  return out;
}

/** Waits until every measured message reached every subscriber, or deliveries stop growing for 1.5 s. */
async function drain(fleet: Fleet, expected: number, maxMs = 20_000): Promise<GenStats> {
  const deadline = Date.now() + maxMs;
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const s = await gatherStats(fleet);
    if (s.delivered >= expected || Date.now() > deadline) return s;
    if (s.delivered !== last) {
      last = s.delivered;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > 1500) return s;
    await sleep(100);
  }
}

// ---- a shared machine ----

/**
 * The machine is shared (other people's test runs come and go): before a row, wait (bounded) until nothing outside
 * the bench uses more than `maxOtherPct` of a core; returns the last reading.
 */
let quietSpentMs = 0;

async function waitQuiet(fleet: Fleet | null, extraPids: number[], maxOtherPct = 15, maxWaitMs = 30_000): Promise<number> {
  if (opts.quietBudgetS <= 0) return NaN;
  const started = Date.now();
  const deadline = started + Math.min(maxWaitMs, Math.max(0, opts.quietBudgetS * 1000 - quietSpentMs));
  const pids = [...(fleet?.all.map((p) => p.pid) ?? []), ...extraPids, process.pid];
  for (;;) {
    const m0 = machineCpuSeconds().busy;
    const o0 = pids.reduce((a, pid) => a + (procCpuSeconds(pid) || 0), 0);
    await sleep(500);
    const other = (100 * (machineCpuSeconds().busy - m0 - (pids.reduce((a, pid) => a + (procCpuSeconds(pid) || 0), 0) - o0))) / 0.5;
    if (other <= maxOtherPct || Date.now() > deadline) {
      if (Date.now() - started > 1000) console.log(`  (waited ${((Date.now() - started) / 1000).toFixed(0)} s for outside load to pass; now ${f0(other)}% of a core)`);
      quietSpentMs += Math.max(0, Date.now() - started - 500);
      return other;
    }
  }
}

let currentServerPid = 0;

/**
 * Runs a row after waiting for a quiet machine; repeats it (up to `opts.attempts` times) while other processes took
 * more than 25% of a core during the measurement, keeping the attempt with the least outside load.
 */
async function best<T extends Usage>(run: () => Promise<T>): Promise<T> {
  let kept: T | null = null;
  const mayRepeat = () => repeatSpentMs < opts.repeatBudgetS * 1000 && Date.now() - runStarted < 8 * 60_000;
  for (let attempt = 1; attempt <= opts.attempts; attempt++) {
    await waitQuiet(currentFleet, [currentServerPid]);
    const t0 = Date.now();
    const row = await run();
    if (attempt > 1) repeatSpentMs += Date.now() - t0;
    if (kept === null || row.otherPct < kept.otherPct) kept = row;
    if (row.otherPct <= 25) break;
    const again = attempt < opts.attempts && mayRepeat();
    console.log(`  (outside load ${f0(row.otherPct)}% of a core during the row; ${again ? 'repeating' : 'kept the quietest attempt'})`);
    if (!again) break;
  }
  return kept as T;
}

let currentFleet: Fleet | null = null;
const runStarted = Date.now();
let repeatSpentMs = 0;

// ---- one measured row ----

interface CpuSnapshot {
  atUs: number;
  server: number;
  gens: number[];
  machineBusy: number;
  steal: number;
}

function snapshot(srv: RunningSystem, fleet: Fleet): CpuSnapshot {
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

function usage(a: CpuSnapshot, b: CpuSnapshot, srv: RunningSystem): Usage {
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

async function runLoop(
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

async function closedLoop(
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

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

async function openLoop(srv: RunningSystem, fleet: Fleet, n: number, payload: number, rate: number, load: Load): Promise<OpenRow> {
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

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]) => sum(xs) / Math.max(1, xs.length);
const range = (xs: number[], f: (v: number) => string) => `${f(Math.min(...xs))}-${f(Math.max(...xs))}`;

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
function mergeClosed(rows: ClosedRow[]): ClosedRow {
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
function mergeOpen(rows: OpenRow[]): OpenRow {
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

async function idleMemory(system: System, dbUrl: string, fleet: Fleet): Promise<IdleRow> {
  const srv = await startSystem(system, dbUrl);
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
async function heapBreakdown(system: System, dbUrl: string, fleet: Fleet): Promise<{ key: string; perSocket: number; bytesPerSocket: number }[]> {
  const srv = await startSystem(system, dbUrl);
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

async function generatorCeiling(fleet: Fleet, connections: number, payload: number, durationMs: number): Promise<CeilingRow> {
  const srv = await startSystem('ceiling', '');
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

// ---- main ----

export interface Results {
  machine: Record<string, unknown>;
  options: typeof opts;
  ceiling: CeilingRow[];
  closed: ClosedRow[];
  open: OpenRow[];
  idle: IdleRow[];
  sioClient: ClosedRow[];
  memory: MemoryRow[];
}

function machineInfo(): Record<string, unknown> {
  return {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model,
    node: process.version,
    date: new Date().toISOString(),
    memGb: Math.round(os.totalmem() / 2 ** 30),
  };
}

async function main(): Promise<void> {
  buildPerformer();
  const dbUrl = opts.systems.includes('performer') || opts.profile ? await benchDatabaseUrl() : '';
  if (opts.systems.includes('performer-before')) {
    if (!opts.before) throw new Error('--systems includes performer-before: give --before=<git ref>');
    const built = buildPerformerAt(opts.before);
    before = { dist: built.dist, flags: built.flags, dbUrl: await benchDatabaseUrl('performer_bench_before') };
    console.log(`performer-before: ${opts.before} built in ${built.dir}; start flags: ${built.flags.join(' ') || '(none)'}`);
  }
  console.log(`performer: start flags ${serverFlags('performer').join(' ') || '(none)'}`);
  if (opts.profile) return profileRun(dbUrl);
  const t0 = Date.now();
  const results: Results = { machine: machineInfo(), options: opts, ceiling: [], closed: [], open: [], idle: [], sioClient: [], memory: [] };
  console.log(`broadcast bench (${quick ? 'quick' : 'full'}): ${JSON.stringify(results.machine)}`);
  console.log(`systems ${opts.systems.join(', ')}; N ${opts.ns.join(', ')}; payloads ${opts.payloads.join(', ')} B; W=${opts.window}; generators ${opts.gens} + sender`);
  const fleet = await startFleet(opts.gens);
  try {
    if (opts.ceiling && opts.sections.includes('ceiling')) {
      for (const payload of quick ? [100] : opts.payloads) {
        await waitQuiet(fleet, []);
        const row = await generatorCeiling(fleet, 1000, payload, quick ? 1000 : 3000);
        results.ceiling.push(row);
        console.log(`ceiling ${size(payload)}: ${f0(row.deliveriesPerSec)} deliveries/s, generators ${row.genPcts.map(f0).join('/')}% CPU, blaster ${f0(row.blasterPct)}%`);
      }
    }
    // Per N: socket.io alone (closed loop, then open loop at the "common" rate: a fraction of its closed-loop rate,
    // so every system sustains it); then Performer and the bare uWS peer side by side (both servers up, both rooms
    // connected), their rows alternated A/B/B/A… `--reps` times so outside load and drift hit both alike. The bare
    // peer's closed-loop rate sets the "high" open-loop rate, run by these two only (the common rate leaves them
    // nearly idle).
    const paired = (['uws', 'performer', 'performer-before'] as System[]).filter((x) => opts.systems.includes(x));
    for (const n of opts.sections.includes('loops') ? opts.ns : []) {
      const commonRate = new Map<number, number>();
      const fixed = option('open-rate');
      const logClosed = (row: ClosedRow, extra = '') =>
        console.log(
          `closed ${row.system} N=${n} ${size(row.payload)}: ${f0(row.deliveriesPerSec)} deliveries/s (${f0(row.msgsPerSec)} msg/s), ` +
            `server ${f0(row.serverPct)}% ${f3(row.cpuUsPerDelivery)} µs/delivery, ${f2(row.framesPerRead)} frames/read, gens ${row.genPcts.map(f0).join('/')}%, ` +
            `other ${f0(row.otherPct)}%, loss ${f0(row.loss)}, saturated ${row.saturated}${extra}`,
        );
      const logOpen = (row: OpenRow) =>
        console.log(
          `open   ${row.system} N=${n} ${size(row.payload)} @${f0(row.rate)} msg/s (${row.load}): p50 ${f2(row.p50Ms)} ms p99 ${f2(row.p99Ms)} ms max ${f2(row.maxMs)} ms, ` +
            `server ${f0(row.serverPct)}% ${f3(row.cpuUsPerDelivery)} µs/delivery, gens ${row.genPcts.map(f0).join('/')}%, other ${f0(row.otherPct)}%, peak RSS ${f0(row.peakRssMb)} MB, ` +
            `loss ${f0(row.loss)}, send lag max ${f1(row.maxSendLagMs)} ms`,
        );
      if (opts.systems.includes('socketio')) {
        const srv = await startSystem('socketio', dbUrl);
        try {
          const ms = await connectRoom(fleet, srv, n);
          for (const payload of opts.payloads) {
            const row = await best(() => closedLoop(srv, fleet, n, payload));
            results.closed.push(mergeClosed([row]));
            logClosed(row, ` [connect ${ms} ms]`);
            commonRate.set(payload, fixed ? Number(fixed) : niceRate(row.msgsPerSec * opts.openFraction));
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
      if (paired.length === 0) continue;
      const servers: RunningSystem[] = [];
      try {
        for (const system of paired) {
          const srv = await startSystem(system, dbUrl);
          servers.push(srv);
          const ms = await connectRoom(fleet, srv, n);
          console.log(`  ${system}: ${n} subscribers joined in ${ms} ms`);
        }
        // A/B, then B/A, …: each repetition flips the order.
        const turns = (rep: number) => (rep % 2 === 0 ? servers : [...servers].reverse());
        const closedReps = new Map<string, ClosedRow[]>();
        for (let rep = 0; rep < opts.reps; rep++) {
          for (const payload of opts.payloads) {
            for (const srv of turns(rep)) {
              const row = await best(() => closedLoop(srv, fleet, n, payload));
              logClosed(row, opts.reps > 1 ? ` (rep ${rep + 1})` : '');
              const key = `${srv.system}|${payload}`;
              closedReps.set(key, [...(closedReps.get(key) ?? []), row]);
            }
          }
        }
        const loads: { load: Load; payload: number; rate: number }[] = [];
        for (const payload of opts.payloads) {
          const merged = paired.map((system) => mergeClosed(closedReps.get(`${system}|${payload}`) ?? []));
          results.closed.push(...merged);
          const ceiling = merged.find((r) => r.system === 'uws') ?? merged[0];
          if (!commonRate.has(payload)) commonRate.set(payload, fixed ? Number(fixed) : niceRate(Math.min(...merged.map((r) => r.msgsPerSec)) * opts.openFraction));
          const common = commonRate.get(payload) as number;
          loads.push({ load: 'common', payload, rate: common });
          const high = niceRate(ceiling.msgsPerSec * opts.highFraction);
          if (!fixed && high > common * 1.5) loads.push({ load: 'high', payload, rate: high });
        }
        const openReps = new Map<string, OpenRow[]>();
        for (let rep = 0; rep < opts.reps; rep++) {
          for (const l of loads) {
            for (const srv of turns(rep)) {
              const row = await best(() => openLoop(srv, fleet, n, l.payload, l.rate, l.load));
              logOpen(row);
              const key = `${srv.system}|${l.payload}|${l.load}`;
              openReps.set(key, [...(openReps.get(key) ?? []), row]);
            }
          }
        }
        for (const rows of openReps.values()) results.open.push(mergeOpen(rows));
      } finally {
        await disconnectAll(fleet);
        for (const srv of servers) await srv.proc.stop();
      }
    }
    if (opts.sioClientRow && opts.sections.includes('sio-client') && opts.systems.includes('socketio')) {
      // The stock client as the subscriber, to show it is the bottleneck of a socket.io bench that uses it.
      const srv = await startSystem('socketio', dbUrl);
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
    for (const system of opts.sections.includes('idle') ? opts.systems : []) {
      const row = await idleMemory(system, dbUrl, fleet);
      if (opts.sections.includes('heap') && system !== 'uws') row.heapTop = await heapBreakdown(system, dbUrl, fleet);
      results.idle.push(row);
      console.log(`idle   ${system}: ${f0(row.bytesPerSocket)} B RSS (marginal ${f0(row.marginalBytesPerSocket)} B; JS heap ${f0(row.heapBytesPerSocket)} B used, ${f0(row.heapCommittedBytesPerSocket)} B committed) per joined socket (${f1(row.rssBeforeMb)} -> ${f1(row.rssAfterMb)} MB for ${row.sockets})`);
    }
    // Each repetition in its own fresh server process; the order of the systems flips every repetition.
    const memoryTurns = Array.from({ length: opts.sections.includes('memory') ? opts.memReps : 0 }, (_, rep) => (rep % 2 === 0 ? opts.systems : [...opts.systems].reverse()));
    for (const system of memoryTurns.flat()) {
      const row = await memoryAfterTraffic(
        { startSystem, connectRoom, closedLoop: (srv, f, n, payload) => best(() => closedLoop(srv, f, n, payload)), disconnectAll },
        system,
        dbUrl,
        fleet,
        { sockets: opts.memSockets, payloads: opts.payloads, settleS: opts.memSettleS, watchS: opts.memWatchS, allocProfile: flag('alloc-profile') },
        serverFlags(system),
      );
      results.memory.push(row);
      logMemory(row);
    }
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

/** Rounds a rate down to two significant digits (at least 1 msg/s). */
function niceRate(r: number): number {
  if (r < 1) return 1;
  const mag = 10 ** Math.max(0, Math.floor(Math.log10(r)) - 1);
  return Math.floor(r / mag) * mag;
}

// ---- profile ----

/**
 * `--profile`: one closed-loop row (default N=1000, 100 B) for Performer and the bare peer, with two profilers on the
 * server process during the measured window only: V8's sampling profiler (JS frames; native uWS and kernel time
 * appear as idle to it) and `perf record` (everything: kernel, uWS, Node, JIT code via --perf-basic-prof).
 */
async function profileRun(dbUrl: string): Promise<void> {
  const n = Number(option('profile-n') ?? 1000);
  const payload = Number(option('profile-payload') ?? 100);
  const fleet = await startFleet(opts.gens);
  try {
    for (const system of ['performer', 'uws'] as const) {
      const dir = mkdtempSync(path.join(os.tmpdir(), `bench-prof-${system}-`));
      const srv = await startSystem(system, dbUrl, undefined, ['--perf-basic-prof-only-functions']);
      const cpuprofile = path.join(dir, `${system}.cpuprofile`);
      const perfData = path.join(dir, `${system}.perf.data`);
      let perf: ChildProcess | null = null;
      let row: ClosedRow;
      const stopped: Promise<unknown>[] = [];
      try {
        await connectRoom(fleet, srv, n);
        await waitQuiet(fleet, [srv.proc.pid]);
        row = await closedLoop(srv, fleet, n, payload, system, {
          onStart: () => {
            stopped.push(srv.proc.call('profileStart', { intervalUs: 200 }));
            perf = spawn('perf', ['record', '-F', '999', '-g', '-p', String(srv.proc.pid), '-o', perfData], { stdio: 'ignore' });
          },
          onEnd: () => {
            stopped.push(srv.proc.call('profileStop', { file: cpuprofile }));
            const p = perf as ChildProcess | null;
            if (p?.pid) {
              stopped.push(new Promise((r) => p.once('exit', r)));
              p.kill('SIGINT');
            }
          },
        });
        await Promise.all(stopped);
      } finally {
        await disconnectAll(fleet);
        await srv.proc.stop();
      }
      console.log(
        `\n=== ${system}, closed loop N=${n} ${size(payload)} with profilers on: ${f0(row.deliveriesPerSec)} deliveries/s, ` +
          `${f3(row.cpuUsPerDelivery)} µs CPU/delivery, server ${f0(row.serverPct)}% of a core (${f2(row.serverCpuS)} s CPU in ${f2(row.windowS)} s) ===`,
      );
      const js = summarize(cpuprofile);
      const messages = row.delivered / n;
      console.log(
        `${f2(row.framesPerRead)} frames/read at the receivers; ${f0(messages)} messages: ` +
          `${f1((js.busyMs * 1000) / messages)} µs of JS per message (native calls made from JS included), ${f3((row.serverCpuS * 1e6) / row.delivered)} µs CPU per delivery`,
      );
      console.log(`\n--- V8 sampling profile (JS only; native uWS/kernel time shows as idle to V8) ---`);
      console.log(formatSummary(js, 30, row.serverCpuS * 1000));
      console.log(`\n--- perf (all CPU of the server process) ---`);
      console.log(perfReport(perfData));
      if (!flag('keep-profiles')) rmSync(dir, { recursive: true, force: true });
      else console.log(`profiles kept in ${dir}`);
      rmSync(`/tmp/perf-${srv.proc.pid}.map`, { force: true });
    }
  } finally {
    await Promise.all(fleet.all.map((p) => p.stop(3000)));
  }
}

function perfReport(file: string): string {
  const run = (args: string[]) => {
    const r = spawnSync('perf', ['report', '-i', file, '--stdio', '--no-children', '-g', 'none', '--percent-limit', '0.7', ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    return (r.stdout ?? '')
      .split('\n')
      .filter((l) => /^\s+\d/.test(l))
      .map((l) => `  ${l.trim().replace(/\s{2,}/g, '  ')}`)
      .join('\n');
  };
  return `by shared object:\n${run(['--sort', 'dso'])}\n\nby symbol (self):\n${run(['--sort', 'dso,sym'])}`;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
