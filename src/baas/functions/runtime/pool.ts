/**
 * The warm worker threads that run invocations, one at a time each, and the time budget, enforced from here: when
 * an invocation overruns, its whole thread is terminated (whatever the guest is doing, an infinite loop included),
 * the invocation is answered as over its limit, and a fresh thread takes the place, while the event loop and the
 * other threads never wait on it. A thread that dies (its heap limit, a crash) is replaced the same way.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { fromResultWire, toInvokeWire, type FromWorker, type InvokeMessage, type ResultMessage, type ResultWire, type ToWorker } from './protocol.js';

/** How long a thread that died while starting waits to be replaced. */
const FAILED_START_PAUSE_MS = 1000;

export interface PoolOptions {
  size: number;
  /** A worker thread's V8 heap cap (its JavaScript, not the guests' WebAssembly memory). */
  heapMb: number;
  /** Invocations waiting for a thread beyond which new ones are refused as over the limit. */
  maxQueued: number;
  /** Versions a thread keeps compiled before the least recently used is forgotten. */
  cachedVersions: number;
}

export type Job = Omit<InvokeMessage, 'type' | 'id' | 'module' | 'source'> & { module?: WebAssembly.Module; source?: string; timeoutMs: number };
export type JobResult = Omit<ResultMessage, 'type' | 'id'>;

/**
 * WASI invocations a busy thread may hold queued behind the one it runs: a thread with work waiting never sleeps
 * between invocations, and several go over in one message. Only WASI ones: a WASI guest has no way out of its memory,
 * so one queued behind an invocation that overran (and was never started) can be run again on another thread
 * unobserved, while a JavaScript function may have fetched something, so it is only ever sent to an idle thread.
 */
const PIPELINE_DEPTH = 8;

interface Sent {
  id: number;
  job: Job;
  resolve: (r: JobResult) => void;
  /** The budget's timer, on the first of `sent` only (it watches whichever the thread runs). */
  timer: NodeJS.Timeout | null;
}

interface Slot {
  worker: Worker;
  /** Written by the thread (shared memory, no message): the id of the invocation it runs and since when (Date.now()). */
  runningId: Int32Array;
  runningSince: Float64Array;
  ready: boolean;
  /** Invocations sent (or about to be), in the order the thread runs them; the first is running. */
  sent: Sent[];
  /** Messages waiting for the next flush, so that several go in one postMessage. */
  outbox: ToWorker[];
  /** Versions this thread has compiled, least recently used first. */
  loaded: Set<string>;
  retired: boolean;
}

/**
 * The worker's code: the compiled .js in production; in tests and benches, which run the .ts sources, a bootstrap
 * that registers tsx's loader in the thread first (Node 20 resolves a worker's entry before `--import` hooks apply).
 */
function workerEntry(): { entry: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { entry: new URL('./worker.js', import.meta.url), eval: false };
  // The ESM build of tsx's API (require.resolve finds the CommonJS one).
  const tsx = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
  const worker = new URL('./worker.ts', import.meta.url).href;
  return { entry: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(worker)}); });`, eval: true };
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: { job: Job; resolve: (r: JobResult) => void }[] = [];
  private nextId = 1;
  private closed = false;
  private flushScheduled = false;
  /** Threads started to replace one that was stopped or died. */
  replacements = 0;

  constructor(private readonly options: PoolOptions) {
    for (let i = 0; i < options.size; i++) this.slots.push(this.spawn());
  }

  /** Runs a job on the next free thread; never rejects. */
  run(job: Job): Promise<JobResult> {
    if (this.closed) return Promise.resolve(failed('error', 'the functions runtime is stopping'));
    if (this.queue.length >= this.options.maxQueued) return Promise.resolve(failed('limit', 'too many invocations waiting'));
    return new Promise((resolve) => {
      this.queue.push({ job, resolve });
      this.pump();
    });
  }

  /** Threads ready for work (all of them once warm). */
  readyCount(): number {
    return this.slots.filter((s) => s.ready).length;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const { resolve } of this.queue.splice(0)) resolve(failed('error', 'the functions runtime is stopping'));
    await Promise.all(this.slots.map((slot) => this.retire(slot, failed('error', 'the functions runtime is stopping'))));
  }

  private spawn(): Slot {
    const { entry, eval: evaluated } = workerEntry();
    const progress = new SharedArrayBuffer(16);
    const worker = new Worker(entry, {
      eval: evaluated,
      workerData: { progress },
      resourceLimits: { maxOldGenerationSizeMb: this.options.heapMb, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
      stdout: false,
      stderr: false,
    });
    const slot: Slot = {
      worker, runningId: new Int32Array(progress, 0, 1), runningSince: new Float64Array(progress, 8, 1), ready: false, sent: [], outbox: [], loaded: new Set(), retired: false,
    };
    worker.on('message', (message: FromWorker | ResultWire[]) => {
      if (!Array.isArray(message) && message.type === 'ready') {
        slot.ready = true;
        return this.pump();
      }
      // Results come in the order the jobs were sent, several in one message when the thread had more queued.
      for (const result of Array.isArray(message) ? message : [message as ResultWire]) {
        const done = slot.sent[0];
        if (!done || done.id !== result.id) continue;
        if (done.timer) clearTimeout(done.timer);
        slot.sent.shift();
        done.resolve(fromResultWire(result));
      }
      if (slot.sent.length > 0 && !slot.sent[0].timer) this.arm(slot);
      this.pump();
    });
    const lost = (why: string, limit: boolean) => {
      if (slot.retired) return;
      this.replace(slot, failed(limit ? 'limit' : 'error', why));
    };
    worker.on('error', (err: Error & { code?: string }) => lost(`worker failed: ${err.message}`, err.code === 'ERR_WORKER_OUT_OF_MEMORY'));
    worker.on('exit', (code) => lost(`worker exited with ${code}`, false));
    worker.unref();
    return slot;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const slot = this.pick(this.queue[0].job.kind);
      if (!slot) return;
      const { job, resolve } = this.queue.shift() as { job: Job; resolve: (r: JobResult) => void };
      this.dispatch(slot, job, resolve);
    }
  }

  /** An idle thread first; for a WASI job, else the least busy thread with only WASI jobs and room in its queue. */
  private pick(kind: Job['kind']): Slot | null {
    let best: Slot | null = null;
    for (const slot of this.slots) {
      if (!slot.ready || slot.retired) continue;
      if (slot.sent.length === 0) return slot;
      if (kind !== 'wasm' || slot.sent.length >= PIPELINE_DEPTH || (best && best.sent.length <= slot.sent.length)) continue;
      if (slot.sent.every((s) => s.job.kind === 'wasm')) best = slot;
    }
    return best;
  }

  private dispatch(slot: Slot, job: Job, resolve: (r: JobResult) => void): void {
    const id = this.nextId++;
    const message: InvokeMessage = {
      type: 'invoke', id, versionId: job.versionId, kind: job.kind, name: job.name, memoryBytes: job.memoryBytes, wasmMemory: job.wasmMemory,
      request: job.request, env: job.env, url: job.url, fetch: job.fetch, responseLimit: job.responseLimit,
    };
    if (slot.loaded.has(job.versionId)) {
      slot.loaded.delete(job.versionId);
    } else {
      if (job.module) message.module = job.module;
      if (job.source !== undefined) message.source = job.source;
    }
    slot.loaded.add(job.versionId);
    if (slot.loaded.size > this.options.cachedVersions) {
      const oldest = slot.loaded.values().next().value as string;
      slot.loaded.delete(oldest);
      slot.outbox.push({ type: 'forget', versionId: oldest });
    }
    slot.sent.push({ id, job, resolve, timer: null });
    slot.outbox.push(toInvokeWire(message));
    if (slot.sent.length === 1) {
      // An idle thread starts at once; work for a busy one is sent once this turn of the event loop is over.
      this.arm(slot);
      this.flush(slot);
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        for (const s of this.slots) this.flush(s);
      });
    }
  }

  /**
   * Arms the budget's timer (on the first job not answered yet) for the job the thread runs now: its start is in the
   * shared progress words; one not started yet gets its whole budget from now.
   */
  private arm(slot: Slot): void {
    const head = slot.sent[0];
    const running = slot.sent.find((s) => s.id === Atomics.load(slot.runningId, 0));
    const due = running ? slot.runningSince[0] + running.job.timeoutMs : Date.now() + head.job.timeoutMs;
    head.timer = setTimeout(() => this.overrun(slot), Math.max(1, due - Date.now()));
  }

  /** The timer fired: the job the thread runs is over its budget, or the one timed finished and another runs now. */
  private overrun(slot: Slot): void {
    if (slot.retired || slot.sent.length === 0) return;
    slot.sent[0].timer = null;
    const running = slot.sent.find((s) => s.id === Atomics.load(slot.runningId, 0));
    if (running && Date.now() >= slot.runningSince[0] + running.job.timeoutMs) {
      this.replace(slot, failed('limit', `time budget of ${running.job.timeoutMs} ms exceeded`));
    } else {
      this.arm(slot);
    }
  }

  private flush(slot: Slot): void {
    if (slot.outbox.length === 0 || slot.retired) return;
    slot.worker.postMessage(slot.outbox.length === 1 ? slot.outbox[0] : slot.outbox);
    slot.outbox = [];
  }

  /**
   * Stops a thread (answering what it ran with `result`) and starts another in its place; a thread that died before
   * it was ever ready (a broken install, say) is replaced after a pause, so a failing start cannot spin.
   */
  private replace(slot: Slot, result: JobResult): void {
    if (slot.retired) return;
    const everReady = slot.ready || slot.sent.length > 0 || slot.loaded.size > 0;
    void this.retire(slot, result);
    if (this.closed) return;
    this.replacements++;
    const respawn = () => {
      if (this.closed) return;
      const index = this.slots.indexOf(slot);
      if (index !== -1) this.slots[index] = this.spawn();
    };
    if (everReady) respawn();
    else setTimeout(respawn, FAILED_START_PAUSE_MS).unref();
  }

  private async retire(slot: Slot, result: JobResult): Promise<void> {
    if (slot.retired) return;
    slot.retired = true;
    slot.ready = false;
    slot.outbox = [];
    const sent = slot.sent.splice(0);
    if (sent[0]?.timer) clearTimeout(sent[0].timer);
    // The one the thread ran gets `result`. The others are WASI jobs (see PIPELINE_DEPTH), not started yet or done
    // with an answer that went down with the thread: they go first to the other threads.
    const runningId = Atomics.load(slot.runningId, 0);
    const culprit = sent.find((s) => s.id === runningId) ?? sent[0];
    culprit?.resolve(result);
    const others = sent.filter((s) => s !== culprit);
    if (this.closed) for (const s of others) s.resolve(result);
    else if (others.length > 0) {
      this.queue.unshift(...others.map(({ job, resolve }) => ({ job, resolve })));
      this.pump();
    }
    await slot.worker.terminate().catch(() => undefined);
  }
}

function failed(outcome: 'error' | 'limit', message: string): JobResult {
  return { outcome, response: null, message, logs: [], memoryBytes: 0 };
}
