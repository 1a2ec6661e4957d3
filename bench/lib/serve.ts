import { writeFileSync } from 'node:fs';
import inspector from 'node:inspector';
import v8 from 'node:v8';
import { allocationSites, heapSummary, type SamplingHeapProfile } from './heap.js';
import type { Reply } from './child.js';

/** Orchestrator -> child request (./child.ts); the child answers with `{ id, ok, ... }` or `{ id, ok: false, error }`. */
export interface Request {
  id: number;
  cmd: string;
  [k: string]: unknown;
}

export type Handler = (req: Request) => unknown;

/** Answers the orchestrator's requests in a child; a handler throwing becomes `{ ok: false, error }`. */
export function serveRequests(handlers: Record<string, Handler>): void {
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
        (err: unknown) => answer({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  // The orchestrator is gone: do not linger.
  process.on('disconnect', () => process.exit(0));
}

const gc = (): boolean => {
  const fn = (globalThis as { gc?: () => void }).gc;
  fn?.();
  return Boolean(fn);
};

/**
 * Memory after full GCs with pauses between them: V8 gives freed pages back a little after a GC, so RSS read right
 * after one still counts the previous phase's garbage.
 */
export async function settledMemory(): Promise<NodeJS.MemoryUsage & { gc: boolean }> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 200));
  }
  return { gc: gc(), ...process.memoryUsage() };
}

/** V8's sampling CPU profiler over IPC (`profileStart` / `profileStop` to a file): servers and load generators alike. */
export function profilerHandlers(): Record<string, Handler> {
  let session: inspector.Session | null = null;
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      (session as inspector.Session).post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))),
    );
  return {
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
  };
}

/**
 * Server children: `gc` (two full GCs when started with --expose-gc, then process memory), `settled`
 * ({@link settledMemory}), `mem` (memory as it is, with V8's heap spaces), `heap` (a heap summary), V8 CPU profiling
 * (`profileStart` / `profileStop`), allocation sampling (`allocStart` / `allocStop`) and `stop`; `extra` adds or
 * replaces commands.
 */
export function serveServerRequests(stop: () => Promise<void>, extra: Record<string, Handler> = {}): void {
  let session: inspector.Session | null = null;
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      (session as inspector.Session).post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))),
    );
  serveRequests({
    ...profilerHandlers(),
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
    gc: () => ({ gc: gc() && gc(), ...process.memoryUsage() }),
    /** Memory as it is, no GC forced: process.memoryUsage() and V8's heap spaces (committed = physical pages). */
    mem: () => ({
      ...process.memoryUsage(),
      spaces: v8.getHeapSpaceStatistics().map((s) => ({ name: s.space_name, size: s.space_size, used: s.space_used_size, physical: s.physical_space_size })),
    }),
    settled: settledMemory,
    heap: () => ({ entries: heapSummary(Number(process.env.BENCH_HEAP_TOP ?? 3000)) }),
    stop: async () => {
      await stop();
      // Exit after the reply is flushed; a normal exit writes --cpu-prof profiles.
      setTimeout(() => process.exit(0), 50);
    },
    ...extra,
  });
}
