import { Child } from '../lib/child.js';
import { recreateDatabase } from '../lib/db.js';
import { startPerformer, type PerformerBuild } from '../lib/performer.js';
import { otherLoadPct, QuietMachine } from '../lib/quiet.js';
import { sleep, waitForCount } from '../lib/time.js';
import type { System, Target } from './common.js';
import { opts } from './options.js';

/**
 * The processes of a broadcast run: the server under test (each in its own child, so its CPU and RSS are read apart
 * from the load generator), the generators holding the subscribers, and the sender (with probe subscribers that pace
 * the closed loop). All traffic is on 127.0.0.1.
 */

export interface RunningSystem {
  system: Target;
  proc: Child;
  port: number;
  token: string;
}

const PEER_FILES: Record<'uws' | 'socketio' | 'ceiling', string> = {
  uws: 'bench/broadcast/peer-uws.ts',
  socketio: 'bench/broadcast/peer-socketio.ts',
  ceiling: 'bench/broadcast/ceiling-server.ts',
};

/** The Performer builds of the run (this tree's, and `--compare`'s), and each one's database. */
const performers = new Map<string, { build: PerformerBuild; databaseUrl: string }>();

/**
 * Each build gets a database of its own on the machine's PostgreSQL, recreated for the run (the default tenant's
 * limits are stored when the tenant is first created); BENCH_DATABASE_URL, if set, is this tree's.
 */
export async function preparePerformers(builds: PerformerBuild[]): Promise<void> {
  for (const [i, build] of builds.entries()) {
    const given = i === 0 ? process.env.BENCH_DATABASE_URL : undefined;
    performers.set(build.label, { build, databaseUrl: given ?? (await recreateDatabase(i === 0 ? 'performer_bench' : `performer_bench_${i}`)) });
  }
}

/** The node flags a system's server runs with (Performer: its start script's, as `npm start` runs it). */
export function serverFlags(system: Target): string[] {
  const p = performers.get(system);
  return p ? [...p.build.flags, ...(system === 'performer' ? opts.performerFlags : [])] : [];
}

let currentServerPid = 0;

export async function startSystem(system: Target, extraExecArgv: string[] = []): Promise<RunningSystem> {
  let proc: Child;
  if (system === 'uws' || system === 'socketio' || system === 'ceiling') {
    // Plain JavaScript like Performer's server (see Child's `plain`), unless Performer runs from src/ through tsx.
    proc = new Child(system, PEER_FILES[system], { execArgv: ['--expose-gc', ...extraExecArgv], readyTimeoutMs: 60_000, plain: process.env.BENCH_PERFORMER_FROM_SRC !== '1' });
  } else {
    const p = performers.get(system);
    if (!p) throw new Error(`${system}: not a Performer of this run (see --compare)`);
    const dataName = system === 'performer' ? 'performer-bench-data' : 'performer-bench-compare-data';
    proc = startPerformer({ ...p.build, flags: serverFlags(system) }, { databaseUrl: p.databaseUrl, dataName, execArgv: extraExecArgv });
  }
  const ready = await proc.ready;
  currentServerPid = proc.pid;
  return { system, proc, port: Number(ready.port), token: String(ready.token ?? '') };
}

// ---- generators ----

export interface Fleet {
  gens: Child[];
  sender: Child;
  all: Child[];
}

let currentFleet: Fleet | null = null;

export async function startFleet(n: number): Promise<Fleet> {
  const gens = Array.from({ length: n }, (_, i) => new Child(`gen${i}`, 'bench/broadcast/loadgen.ts', { readyTimeoutMs: 60_000 }));
  const sender = new Child('sender', 'bench/broadcast/loadgen.ts', { readyTimeoutMs: 60_000 });
  const all = [...gens, sender];
  await Promise.all(all.map((p) => p.ready));
  currentFleet = { gens, sender, all };
  return currentFleet;
}

/** Connects `count` subscribers spread over the generators (indices first..first+count-1). */
export async function connectSubscribers(fleet: Fleet, srv: RunningSystem, count: number, client?: 'socket.io-client'): Promise<number> {
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
export async function connectRoom(fleet: Fleet, srv: RunningSystem, n: number, client?: 'socket.io-client'): Promise<number> {
  const p = probesFor(n);
  const ms = await connectSubscribers(fleet, srv, n - p, client);
  await fleet.sender.call('sender', { tag: srv.system, target: srv.system, port: srv.port, token: srv.token, probes: p, firstProbeIndex: n - p });
  return ms;
}

export async function disconnectAll(fleet: Fleet, tag?: string): Promise<void> {
  await Promise.all(fleet.all.map((p) => p.call('close', tag === undefined ? {} : { tag })));
  await sleep(300);
}

export interface GenStats {
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

export async function gatherStats(fleet: Fleet): Promise<GenStats> {
  const replies = await Promise.all(fleet.all.map((p) => p.call('stats')));
  const out: GenStats = { delivered: 0, warmDelivered: 0, firstUs: Infinity, lastUs: 0, nSamples: 0, unexpectedCloses: 0, connections: 0, reads: 0, frames: 0 };
  for (const r of replies) {
    for (const k of ['delivered', 'warmDelivered', 'nSamples', 'unexpectedCloses', 'connections', 'reads', 'frames'] as const) out[k] += Number(r[k]);
    if (Number(r.firstUs) > 0) out.firstUs = Math.min(out.firstUs, Number(r.firstUs));
    out.lastUs = Math.max(out.lastUs, Number(r.lastUs));
  }
  return out;
}

/** Waits until every measured message reached every subscriber, or deliveries stop growing for 1.5 s. */
export async function drain(fleet: Fleet, expected: number, maxMs = 20_000): Promise<GenStats> {
  await waitForCount(async () => (await gatherStats(fleet)).delivered, expected, { capMs: maxMs, stallMs: 1500, pollMs: 100 });
  return gatherStats(fleet);
}

// ---- a shared machine ----

const runStarted = Date.now();

/** Waits before a row until nothing outside the bench (generators, sender, server, this process) uses over 15 % of a core. */
export const quiet = new QuietMachine({
  measure: () => otherLoadPct(() => [...(currentFleet?.all.map((p) => p.pid) ?? []), currentServerPid, process.pid]),
  maxOtherPct: 15,
  perWaitMs: 30_000,
  budgetMs: opts.quietBudgetS * 1000,
  repeatBudgetMs: opts.repeatBudgetS * 1000,
});

/**
 * Runs a row after waiting for a quiet machine; repeats it (up to `opts.attempts` times) while other processes took
 * more than 25% of a core during the measurement, keeping the attempt with the least outside load.
 */
export async function best<T extends { otherPct: number }>(run: () => Promise<T>): Promise<T> {
  return (await quiet.best(run, (r) => r.otherPct, { maxOtherPct: 25, attempts: opts.attempts, canRepeat: () => Date.now() - runStarted < 8 * 60_000 })).row;
}

export type { System };
