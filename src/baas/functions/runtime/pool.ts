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
import { fromResultWire, toInvokeWire, type FromWorker, type InvokeMessage, type ResultMessage } from './protocol.js';

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

interface Slot {
  worker: Worker;
  ready: boolean;
  running: { id: number; resolve: (r: JobResult) => void; timer: NodeJS.Timeout } | null;
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
    const worker = new Worker(entry, {
      eval: evaluated,
      resourceLimits: { maxOldGenerationSizeMb: this.options.heapMb, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
      stdout: false,
      stderr: false,
    });
    const slot: Slot = { worker, ready: false, running: null, loaded: new Set(), retired: false };
    worker.on('message', (message: FromWorker) => {
      if (message.type === 'ready') {
        slot.ready = true;
        return this.pump();
      }
      const running = slot.running;
      if (!running || running.id !== message.id) return;
      clearTimeout(running.timer);
      slot.running = null;
      const { type: _type, id: _id, ...result } = fromResultWire(message);
      running.resolve(result);
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
      const slot = this.slots.find((s) => s.ready && s.running === null && !s.retired);
      if (!slot) return;
      const { job, resolve } = this.queue.shift() as { job: Job; resolve: (r: JobResult) => void };
      this.dispatch(slot, job, resolve);
    }
  }

  private dispatch(slot: Slot, job: Job, resolve: (r: JobResult) => void): void {
    const id = this.nextId++;
    const { timeoutMs, module, source, ...rest } = job;
    const message: InvokeMessage = { type: 'invoke', id, ...rest };
    if (slot.loaded.has(job.versionId)) {
      slot.loaded.delete(job.versionId);
    } else {
      if (module) message.module = module;
      if (source !== undefined) message.source = source;
    }
    slot.loaded.add(job.versionId);
    if (slot.loaded.size > this.options.cachedVersions) {
      const oldest = slot.loaded.values().next().value as string;
      slot.loaded.delete(oldest);
      slot.worker.postMessage({ type: 'forget', versionId: oldest });
    }
    const timer = setTimeout(() => this.replace(slot, failed('limit', `time budget of ${timeoutMs} ms exceeded`)), timeoutMs);
    slot.running = { id, resolve, timer };
    slot.worker.postMessage(toInvokeWire(message));
  }

  /**
   * Stops a thread (answering what it ran with `result`) and starts another in its place; a thread that died before
   * it was ever ready (a broken install, say) is replaced after a pause, so a failing start cannot spin.
   */
  private replace(slot: Slot, result: JobResult): void {
    if (slot.retired) return;
    const everReady = slot.ready || slot.running !== null || slot.loaded.size > 0;
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
    if (slot.running) {
      clearTimeout(slot.running.timer);
      slot.running.resolve(result);
      slot.running = null;
    }
    await slot.worker.terminate().catch(() => undefined);
  }
}

function failed(outcome: 'error' | 'limit', message: string): JobResult {
  return { outcome, response: null, message, logs: [], memoryBytes: 0 };
}
