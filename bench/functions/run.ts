/**
 * Functions runtime bench (issue 19): cold (first call of a new version) and warm invocation p50/p99 and
 * invocations/s of an echo function as a WASI module (examples/functions/echo-wasi) and as JavaScript in QuickJS,
 * beside the same echo as plain JavaScript in a Node worker thread (no sandbox; one invocation per thread at a time,
 * one message each way, while the pool queues WASI jobs on busy threads and batches their messages), all in the
 * same run on the same pool size. Measured at the runtime (WorkerPool.run), without HTTP.
 * Targets: warm WASI p50 <= 1 ms, WASI throughput >= 0.5x the baseline, cold p50 <= 50 ms.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import wabt from 'wabt';
import { CodeCache } from '../../src/baas/functions/runtime/code-cache.js';
import { WorkerPool, type Job, type JobResult } from '../../src/baas/functions/runtime/pool.js';
import { wagiEnvironment, type GuestRequest } from '../../src/baas/functions/cgi.js';
import { Args } from '../lib/args.js';
import { runBench } from '../lib/main.js';
import { f, ratio, runLine, table, writeSection } from '../lib/report.js';
import { median, percentile } from '../lib/stats.js';

const args = new Args();
const WORKERS = args.number('workers', 2);
const WARM_CALLS = args.number('warm', args.quick ? 500 : 3000);
const COLD_CALLS = args.number('cold', args.quick ? 10 : 40);
const THROUGHPUT_MS = args.number('seconds', args.quick ? 1 : 4) * 1000;
const IN_FLIGHT = args.number('in-flight', 32);
const ROUNDS = args.number('rounds', args.quick ? 3 : 5);
const MEMORY = 128 * 1024 * 1024;

const JS_ECHO = "module.exports.default = { async fetch(r) { return new Response(await r.arrayBuffer(), { headers: { 'content-type': 'text/plain' } }); } };";
const BASELINE_WORKER = `
const { parentPort } = require('node:worker_threads');
const handler = (request) => ({ status: 200, headers: [['content-type', 'text/plain']], body: request.body });
parentPort.on('message', (m) => parentPort.postMessage({ id: m.id, response: handler(m.request) }));
parentPort.postMessage({ ready: true });`;

type Invoke = () => Promise<unknown>;

/** The same echo as plain JavaScript on worker threads, one invocation at a time each, with a queue. */
class BaselinePool {
  private readonly idle: Worker[] = [];
  private readonly waiting: (() => void)[] = [];
  private readonly pending = new Map<number, (v: unknown) => void>();
  private next = 1;
  readonly ready: Promise<void>;
  private readonly workers: Worker[] = [];

  constructor(size: number) {
    const readies: Promise<void>[] = [];
    for (let i = 0; i < size; i++) {
      const w = new Worker(BASELINE_WORKER, { eval: true });
      this.workers.push(w);
      readies.push(new Promise((r) => w.once('message', () => r())));
      w.on('message', (m: { id: number; response: unknown }) => {
        this.pending.get(m.id)?.(m.response);
        this.pending.delete(m.id);
        this.release(w);
      });
    }
    this.ready = Promise.all(readies).then(() => {
      this.idle.push(...this.workers);
    });
  }

  async run(request: GuestRequest): Promise<unknown> {
    const worker = await this.acquire();
    const id = this.next++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      worker.postMessage({ id, request });
    });
  }

  close(): Promise<unknown> {
    return Promise.all(this.workers.map((w) => w.terminate()));
  }

  private acquire(): Promise<Worker> {
    const w = this.idle.pop();
    if (w) return Promise.resolve(w);
    return new Promise((resolve) => this.waiting.push(() => resolve(this.idle.pop() as Worker)));
  }

  private release(w: Worker): void {
    this.idle.push(w);
    this.waiting.shift()?.();
  }
}

const request = (n: number): GuestRequest => ({ method: 'POST', path: '', query: '', headers: { 'content-type': 'text/plain' }, body: new TextEncoder().encode(`hello ${n}`) });

function check(result: JobResult): void {
  if (result.outcome !== 'ok') throw new Error(`invocation failed: ${result.outcome} ${result.message}`);
}

async function latencies(invoke: Invoke, calls: number): Promise<number[]> {
  for (let i = 0; i < Math.min(200, calls); i++) await invoke();
  const out: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = process.hrtime.bigint();
    await invoke();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out.sort((a, b) => a - b);
}

async function throughput(invoke: Invoke): Promise<number> {
  let done = 0;
  const end = Date.now() + THROUGHPUT_MS;
  const loop = async () => {
    while (Date.now() < end) {
      await invoke();
      done++;
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: IN_FLIGHT }, loop));
  return done / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function main(): Promise<void> {
  const loadAtStart = os.loadavg()[0];
  const toolkit = await wabt();
  const parsed = toolkit.parseWat('echo.wat', readFileSync(new URL('../../examples/functions/echo-wasi/echo.wat', import.meta.url), 'utf8'));
  const wasm = Buffer.from(parsed.toBinary({}).buffer);
  parsed.destroy();
  const pool = new WorkerPool({ size: WORKERS, heapMb: 256, maxQueued: 10_000, cachedVersions: 4096 });
  const baseline = new BaselinePool(WORKERS);
  await baseline.ready;
  while (pool.readyCount() < WORKERS) await new Promise((r) => setTimeout(r, 20));
  const policy = { allow: [], selfOrigin: null, selfAddress: null, host: '' };
  let versions = 0;
  const cache = new CodeCache(4096);
  /** One invocation of a version, its code prepared through the same cache the service uses. */
  const invoke = async (kind: 'wasm' | 'js', versionId: string, n: number) => {
    const ready = await cache.get(versionId, kind, MEMORY, async () => (kind === 'wasm' ? wasm : Buffer.from(JS_ECHO)));
    if (ready.kind === 'failed') throw new Error(ready.message);
    const req = request(n);
    const job: Job = {
      versionId, kind, name: 'echo', memoryBytes: MEMORY, request: req, url: 'http://localhost/functions/v1/echo',
      env: kind === 'wasm' ? wagiEnvironment(req, 'echo', {}) : {}, fetch: policy, responseLimit: 1 << 20, timeoutMs: 10_000,
      ...(ready.kind === 'wasm' ? { module: ready.module, wasmMemory: ready.memory } : { source: ready.source }),
    };
    const result = await pool.run(job);
    check(result);
    return result;
  };
  const rows: Record<string, { cold: number[]; warm: number[]; rate: number }> = {};
  for (const kind of ['wasm', 'js'] as const) {
    const cold: number[] = [];
    for (let i = 0; i < COLD_CALLS; i++) {
      const id = `cold-${kind}-${versions++}`;
      const t0 = process.hrtime.bigint();
      await invoke(kind, id, i);
      cold.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    cold.sort((a, b) => a - b);
    const id = `warm-${kind}`;
    rows[kind] = { cold, warm: await latencies(() => invoke(kind, id, 1), WARM_CALLS), rate: 0 };
  }
  const baseWarm = await latencies(() => baseline.run(request(1)), WARM_CALLS);
  // Throughput in interleaved rounds, the median of each: the machine's load (other processes) then weighs on all
  // three alike rather than on whichever ran during a busy spell.
  const rates: Record<'wasm' | 'js' | 'base', number[]> = { wasm: [], js: [], base: [] };
  for (let round = 0; round < ROUNDS; round++) {
    rates.wasm.push(await throughput(() => invoke('wasm', 'warm-wasm', 2)));
    rates.base.push(await throughput(() => baseline.run(request(2))));
    rates.js.push(await throughput(() => invoke('js', 'warm-js', 2)));
  }
  rows.wasm.rate = median(rates.wasm);
  rows.js.rate = median(rates.js);
  const baseRate = median(rates.base);
  await pool.close();
  await baseline.close();

  const ms = (sorted: number[], p: number) => f(percentile(sorted, p * 100), 3);
  const line = (name: string, r: { cold: number[] | null; warm: number[]; rate: number }) => [
    name,
    r.cold ? `${ms(r.cold, 0.5)} / ${ms(r.cold, 0.99)}` : '-',
    `${ms(r.warm, 0.5)} / ${ms(r.warm, 0.99)}`,
    f(r.rate),
    ratio(r.rate, baseRate),
  ];
  const text = [
    '## Functions runtime',
    '',
    runLine(`npm run bench:functions${args.quick ? ' -- --quick' : ''}`),
    `Pool of ${WORKERS} worker threads; warm = ${WARM_CALLS} sequential invocations of one version after 200 warm-up calls; cold = the first`,
    `invocation of ${COLD_CALLS} new versions each (WASI: memory cap written in, compiled, sent to the worker, instantiated;`,
    `JavaScript: a new QuickJS runtime and context, the script evaluated); invocations/s with ${IN_FLIGHT} in flight, median of ${ROUNDS} interleaved rounds of ${THROUGHPUT_MS / 1000} s each.`,
    'Measured at the runtime (WorkerPool.run, the message round trip to a worker thread included), not through HTTP; the baseline sends one',
    'message each way per invocation, the pool queues up to 8 WASI jobs on a busy thread and batches their messages.',
    `1-minute load average at the start: ${f(loadAtStart, 1)} (other sessions' tests share the 2 cores; throughput ratios swing with it).`,
    '',
    table(
      ['echo function', 'cold p50 / p99 (ms)', 'warm p50 / p99 (ms)', 'invocations/s', 'vs baseline'],
      [line('WASI (WAGI, WAT-built)', rows.wasm), line('JavaScript in QuickJS-wasm', rows.js), line('baseline: plain JS in a worker thread', { cold: null, warm: baseWarm, rate: baseRate })],
    ),
    '',
    `Targets: warm WASI p50 <= 1 ms: ${percentile(rows.wasm.warm, 50) <= 1 ? 'met' : 'NOT met'}; WASI throughput >= 0.5x baseline: ${rows.wasm.rate >= 0.5 * baseRate ? 'met' : 'NOT met'};`,
    `cold p50 <= 50 ms: WASI ${percentile(rows.wasm.cold, 50) <= 50 ? 'met' : 'NOT met'}, JavaScript ${percentile(rows.js.cold, 50) <= 50 ? 'met' : 'NOT met'}.`,
  ].join('\n');
  console.log(text);
  if (!args.flag('no-write')) writeSection('## Functions runtime', text);
}

runBench('functions', main, { hardLimitMs: 10 * 60_000, cleanup: async () => undefined });
