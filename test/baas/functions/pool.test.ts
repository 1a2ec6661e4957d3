import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wagiEnvironment, type GuestRequest } from '../../../src/baas/functions/cgi.js';
import { CodeCache } from '../../../src/baas/functions/runtime/code-cache.js';
import { WorkerPool, type Job, type JobResult } from '../../../src/baas/functions/runtime/pool.js';
import { ECHO_WAT, wat } from './support.js';

const MEMORY = 8 * 1024 * 1024;
const LOOP_WAT = '(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))';

/**
 * The pool itself, one thread: WASI jobs queue behind the one it runs (several per message, answers several per
 * message), so what an overrun or a dead thread does to the jobs queued behind it shows here.
 */
describe('functions runtime: the worker pool with WASI jobs queued on a busy thread', () => {
  const pool = new WorkerPool({ size: 1, heapMb: 128, maxQueued: 1000, cachedVersions: 16 });
  const cache = new CodeCache(16);
  const sources = new Map<string, Uint8Array>();

  beforeAll(async () => {
    sources.set('echo', await wat(ECHO_WAT));
    sources.set('loop', await wat(LOOP_WAT));
    while (pool.readyCount() < 1) await new Promise((r) => setTimeout(r, 20));
  });
  afterAll(() => pool.close());

  const job = async (version: 'echo' | 'loop', body: string, timeoutMs: number): Promise<Job> => {
    const ready = await cache.get(version, 'wasm', MEMORY, async () => Buffer.from(sources.get(version) as Uint8Array));
    if (ready.kind !== 'wasm') throw new Error('not compiled');
    const request: GuestRequest = { method: 'POST', path: '', query: '', headers: { 'content-type': 'text/plain' }, body: new TextEncoder().encode(body) };
    return {
      versionId: version, kind: 'wasm', name: version, memoryBytes: MEMORY, module: ready.module, wasmMemory: ready.memory, request,
      env: wagiEnvironment(request, version, {}), url: 'http://localhost/', fetch: { allow: [], selfOrigin: null, selfAddress: null, host: '' },
      responseLimit: 1 << 20, timeoutMs,
    };
  };
  const text = (r: JobResult) => (r.response ? new TextDecoder().decode(r.response.body) : `${r.outcome}: ${r.message}`);

  it('answers many queued jobs each with its own body, in order', async () => {
    const jobs = await Promise.all(Array.from({ length: 40 }, (_, i) => job('echo', `body ${i}`, 5000)));
    const results = await Promise.all(jobs.map((j) => pool.run(j)));
    expect(results.map(text)).toEqual(jobs.map((_, i) => `body ${i}`));
  });

  it('stops the job over its budget and runs the jobs queued behind it on the thread that replaces it', async () => {
    const before = pool.replacements;
    const loop = pool.run(await job('loop', '', 300));
    const behind = await Promise.all(Array.from({ length: 6 }, (_, i) => job('echo', `after ${i}`, 5000)));
    const results = await Promise.all(behind.map((j) => pool.run(j)));
    expect((await loop).outcome).toBe('limit');
    expect(results.map(text)).toEqual(behind.map((_, i) => `after ${i}`));
    expect(pool.replacements).toBe(before + 1);
  });

  it('times the job the thread runs, not the first one not answered yet', async () => {
    // Quick jobs ahead of the loop, with budgets shorter than the loop's: none of them is blamed for its time.
    const quick = await Promise.all(Array.from({ length: 5 }, (_, i) => job('echo', `quick ${i}`, 200)));
    const runs = quick.map((j) => pool.run(j));
    const loop = pool.run(await job('loop', '', 600));
    let loopAnswered = false;
    void loop.then(() => (loopAnswered = true));
    expect((await Promise.all(runs)).map(text)).toEqual(quick.map((_, i) => `quick ${i}`));
    // Their answers did not wait for the loop (a thread holds answers only behind a version that was quick).
    expect(loopAnswered).toBe(false);
    const stopped = await loop;
    expect(stopped.outcome).toBe('limit');
    expect(stopped.message).toContain('600 ms');
  });
});
