import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

/*
 * Gives V8's young generation back once the process goes idle.
 *
 * A burst of joins (every client reconnecting after a restart) grows V8's young generation to its maximum,
 * 2 x 16 MiB: the sockets' objects survive, and V8 grows the space after enough survivors. It shrinks it only at a
 * GC that sees a low allocation rate (< 1 KB/ms over its last 5 s), and an idle server allocates so little that its
 * next GC is minutes away; V8's memory reducer comes 10-20 s later, or not at all. Chrome gives V8 idle time for
 * this; Node does not. So: once the event loop has been idle for `idleMs` (at least V8's 5 s window) and the young
 * generation is larger than `minBytes`, one young-generation GC (a scavenge: a few ms, proportional to what survives)
 * lets V8 shrink it. 20-30 MB of RSS, ~2-3 KiB per socket at 10,000 sockets.
 *
 * Capping the young generation instead (node --max-semi-space-size) costs Postgres Changes 30-75% more CPU per change
 * at full speed, where a backlog lives in the young generation (bench/RESULTS.md).
 */

export interface HeapTrimOptions {
  /** How often the event loop's utilization is sampled. */
  checkMs: number;
  /** Idle time before a trim: V8 measures its allocation rate over 5 s, so a trim sooner would not shrink. */
  idleMs: number;
  /** Event loop utilization (0-1) below which a check interval counts as idle. */
  maxUtilization: number;
  /** Young generation (committed) above which a trim is worth a GC: V8 starts at 2 x 1 MiB. */
  minBytes: number;
  /** After a trim V8 did not act on (allocation rate still too high): the next after `idleMs`, then twice that, up to this. */
  maxRetryMs: number;
}

export const DEFAULT_HEAP_TRIM: HeapTrimOptions = {
  checkMs: 1000,
  idleMs: 5500,
  maxUtilization: 0.1,
  minBytes: 8 * 2 ** 20,
  maxRetryMs: 5 * 60_000,
};

type YoungGc = () => void;

/** A young-generation GC: `gc` if node runs with --expose-gc, else from a context made with it exposed. */
function youngGc(): YoungGc | null {
  try {
    let gc = (globalThis as { gc?: unknown }).gc;
    if (typeof gc !== 'function') {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as unknown;
    }
    if (typeof gc !== 'function') return null;
    const collect = gc as (options: { type: 'minor' }) => void;
    return () => collect({ type: 'minor' });
  } catch {
    return null;
  }
}

/** Committed bytes of V8's young generation. */
export function youngGenerationBytes(): number {
  let bytes = 0;
  for (const space of v8.getHeapSpaceStatistics()) {
    if (space.space_name === 'new_space' || space.space_name === 'new_large_object_space') bytes += space.physical_space_size;
  }
  return bytes;
}

/** Trims after idle periods until stopped; one per process is enough (see startHeapTrim). */
export class HeapTrim {
  private readonly timer: NodeJS.Timeout;
  private last = performance.eventLoopUtilization();
  private idleSince: number | null = null;
  private notBefore = 0;
  private retryMs: number;
  /** Trims that found the young generation large and made V8 shrink it. */
  trims = 0;

  constructor(
    private readonly gc: YoungGc,
    private readonly opts: HeapTrimOptions = DEFAULT_HEAP_TRIM,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.retryMs = opts.idleMs;
    this.timer = setInterval(() => this.check(), opts.checkMs);
    this.timer.unref();
  }

  check(): void {
    const current = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(current, this.last);
    this.last = current;
    const now = this.now();
    if (utilization > this.opts.maxUtilization) {
      this.idleSince = null;
      this.retryMs = this.opts.idleMs;
      return;
    }
    this.idleSince ??= now - this.opts.checkMs;
    if (now - this.idleSince < this.opts.idleMs || now < this.notBefore) return;
    if (youngGenerationBytes() <= this.opts.minBytes) return;
    this.gc();
    if (youngGenerationBytes() > this.opts.minBytes) {
      this.notBefore = now + this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, this.opts.maxRetryMs);
    } else {
      this.trims++;
      this.retryMs = this.opts.idleMs;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

let shared: { trim: HeapTrim; users: number } | null = null;

/**
 * Starts the process's heap trim (shared by every server of the process: the heap is the process's); the returned
 * function stops this user's share. Without a way to run a GC, nothing runs.
 */
export function startHeapTrim(): () => void {
  if (shared === null) {
    const gc = youngGc();
    if (gc === null) return () => undefined;
    shared = { trim: new HeapTrim(gc), users: 0 };
  }
  shared.users++;
  let stopped = false;
  return () => {
    if (stopped || shared === null) return;
    stopped = true;
    if (--shared.users === 0) {
      shared.trim.stop();
      shared = null;
    }
  };
}
