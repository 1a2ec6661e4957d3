import { Args } from '../lib/args.js';
import type { System } from './common.js';

/**
 * The broadcast bench's options (see run.ts for the command line). `--compare=<rev>` (or `--before=<rev>`) adds
 * Performer built at that revision as the system `performer@<rev>`, measured beside this tree's in the same run.
 */
export const args = new Args();
const quick = args.quick;
const compare = args.option('compare') ?? args.option('before');

export const opts = {
  quick,
  profile: args.flag('profile'),
  /** Git revision of the second Performer (`performer@<rev>`), if any. */
  compare,
  systems: (args.list('systems') ?? ['uws', 'performer', ...(compare ? [`performer@${compare}`] : []), 'socketio']) as System[],
  ns: args.numbers('n', quick ? [100, 500] : [100, 1000, 5000]),
  payloads: args.numbers('payloads', quick ? [100] : [100, 1024]),
  gens: args.number('gens', 2),
  window: args.number('window', 8),
  probes: args.number('probes', 8),
  warmupMs: quick ? 300 : 500,
  closedMs: args.number('closed-ms', quick ? 1000 : 3000),
  openMs: args.number('open-ms', quick ? 1000 : 3000),
  idleSockets: args.number('idle', quick ? 1000 : 10_000),
  idleSettleMs: quick ? 500 : 1500,
  /** Repetitions of the `idle` section, each a fresh server, the order of the systems flipping every repetition. */
  idleReps: args.number('idle-reps', 1),
  /** The `memory` section: joined sockets, idle seconds before the figure is read (load phase: closed loop per payload). */
  memSockets: args.number('mem-sockets', args.number('idle', quick ? 1000 : 10_000)),
  memSettleS: args.number('mem-settle', 10),
  memWatchS: args.number('mem-watch', 20),
  memReps: args.number('mem-reps', quick ? 1 : 2),
  /** Extra node flags for this tree's Performer server process (experiments; the start script's flags are always used). */
  performerFlags: (args.option('performer-flags') ?? '').split(' ').filter(Boolean),
  /** Parts of the run: ceiling, loops (closed + open; `closed`: closed only), sio-client, idle, memory, heap. */
  sections: args.list('sections') ?? ['ceiling', 'loops', 'sio-client', 'idle'],
  ceiling: !args.flag('no-ceiling'),
  sioClientRow: !quick && !args.flag('no-sio-client'),
  out: args.option('out'),
  /** A row is repeated while outside load exceeded 25% of a core, up to this many attempts. */
  attempts: args.number('attempts', quick ? 1 : 2),
  /** Seconds the whole run may spend on such repeats. */
  repeatBudgetS: args.number('repeat-budget', quick ? 0 : 60),
  /** Alternating repetitions of each Performer / bare uWS row. */
  reps: args.number('reps', quick ? 1 : 2),
  /**
   * "common" open-loop rate = this fraction of socket.io's (the slowest) closed-loop messages/s at that N and size.
   * Open loop costs more CPU per delivery than the closed loop (no batching of messages per socket write), so a
   * quarter of the closed-loop rate keeps the slowest server clear of saturation.
   */
  openFraction: args.number('open-fraction', 0.25),
  /** "high" open-loop rate (Performer and bare uWS only) = this fraction of the bare uWS peer's closed-loop messages/s. */
  highFraction: args.number('high-fraction', 0.12),
  /** A fixed open-loop rate instead of the fractions above. */
  openRate: args.option('open-rate'),
  /** Seconds the whole run may spend waiting for other load on the machine to pass. */
  quietBudgetS: args.number('quiet-budget', quick ? 0 : 45),
};

export type Options = typeof opts;
