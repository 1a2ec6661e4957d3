import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { Args } from '../lib/args.js';
import type { NotifyPayload, RlsCheck, Shape } from './types.js';

/** The Postgres Changes bench's options and fixed parameters (see run.ts for the command line). */

export const args = new Args();
export const quick = args.quick;
/** Issue 14's rows only: N=100 with and without RLS, each RLS check variant, paced at 1,000/s (see scaleRows). */
const scale = args.flag('scale');
/** --compare: each build's live rows this many times, alternating which goes first. */
export const reps = args.number('reps', 1);
export const opts = {
  quick,
  scale,
  rows: args.number('rows', quick ? 4000 : scale ? 10_000 : 20_000),
  batch: args.number('batch', 100),
  ns: args.numbers('n', scale ? [100] : [1, 100]),
  batchConns: args.number('batch-conns', 2),
  singleConns: args.number('single-conns', 4),
  /** Production stops after this long even if not all rows went in (slow configurations). */
  produceCapMs: args.number('produce-cap-ms', quick ? 4000 : 15_000),
  /** Waiting for the last deliveries stops after this long (from the end of production). */
  drainCapMs: args.number('drain-cap-ms', quick ? 4000 : 15_000),
  /** ...or after this long without a new delivery. */
  stallMs: 3000,
  bodyLen: args.number('body', 100),
  notify: !args.flag('no-notify'),
  /**
   * What the LISTEN/NOTIFY pipeline sends: `bare` (the row's JSON, the cheapest forwarder) and/or `envelope`
   * (Performer's own frame and data object, built by the trigger: the same bytes per change as Performer sends).
   */
  notifyPayloads: (args.list('notify-payload') ?? [scale ? 'envelope' : 'bare']).filter((x): x is NotifyPayload => x === 'bare' || x === 'envelope'),
  rls: !args.flag('no-rls'),
  catchup: scale ? args.flag('catchup') : args.fullOnly('catchup'),
  paced: args.fullOnly('paced'),
  pacedRate: args.number('paced-rate', scale ? 1000 : 500),
  pacedMs: args.number('paced-ms', scale ? 10_000 : 2000),
  profile: scale ? args.flag('profile') : args.fullOnly('profile'),
  /** --scale: V8's sampling profiler in Performer during each RLS steady-rate row (where its time goes per call). */
  profilePaced: scale && args.flag('profile-paced'),
  /** pg_recvlogical rows (live reference, ceilings per row): off in --scale mode. */
  recv: !args.flag('no-recv') && !scale,
  /** --scale: how the RLS rows check visibility, each variant in its own Performer process (CHANGES_RLS_BATCH). */
  rlsChecks: (args.list('rls-check') ?? (scale ? ['batch', 'per-viewer'] : ['batch'])).filter((x): x is RlsCheck => x === 'batch' || x === 'serial' || x === 'per-viewer'),
  /** --scale: the whole sequence this many times (variants alternate which goes first), for ranges. */
  repeat: args.number('repeat', 1),
  /** Profiled rows (no RLS), `N:shape`. */
  profileRows: args.list('profile-rows') ?? ['1:batch', '1:single', '100:batch'],
  write: scale ? args.flag('write') : args.fullOnly('write'),
  catchupNs: args.numbers('catchup-n', [1]),
  /** Compared runs take `reps` times the live rows, each of two systems. */
  budgetMs: (quick ? 47_000 : scale ? args.number('budget', 900) * 1000 : 330_000) * (args.option('compare') ? 2 * reps : 1),
  quietBudgetMs: args.number('quiet-budget', quick ? 0 : 30) * 1000,
  repeatBudgetMs: args.number('repeat-budget', quick ? 0 : 45) * 1000,
  strace: args.flag('strace'),
  /** Transaction shapes measured: `batch` (100 rows/txn), `single` (1 row/txn). */
  shapes: (args.list('shapes') ?? ['batch', 'single']).filter((x): x is Shape => x === 'batch' || x === 'single'),
};

/** Row owners (uuid) cycle over K users: row id -> OWNERS[id % K]. */
export const K = 10;
export const OWNERS = Array.from({ length: K }, () => randomUUID());
export const ROOM_TOPIC = 'realtime:bench';
export const NOTIFY_CHANNEL = 'bench_changes';
export const PUBLICATION = 'supabase_realtime';
export const SAMPLE_CAP = 200_000;
export const JIT_WARM_ROWS = quick ? 2000 : 5000;
/** pg_recvlogical runs per row (one slot each, all created before the row): the fastest is the ceiling. */
export const RECV_RUNS = quick ? 1 : 3;
/** Catch-up repetitions per shape (the fastest is kept, as the ceiling keeps its fastest run). */
export const CATCHUP_RUNS = quick ? 1 : 3;
export const RECV_LIVE_TABLE = 'bench_recv';
export const RECV_LIVE_PUBLICATION = 'bench_recv_live';

const runStarted = Date.now();
export const loadAtStart = os.loadavg()[0]!;
export const timeLeftMs = () => opts.budgetMs - (Date.now() - runStarted);
/** Worst case of one closed-loop row: production cap + drain cap + the pg_recvlogical run and bookkeeping. */
export const rowWorstMs = () => opts.produceCapMs + opts.drainCapMs + 4000;
