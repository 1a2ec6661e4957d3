/**
 * Functions runtime before/after in one run (issue 19 throughput): the WASI echo on the runtime of an earlier commit
 * (`--before=<ref>`, its src/baas/functions taken with git archive into node_modules/.cache) and on this checkout's,
 * beside the unsandboxed baseline of bench/functions/run.ts, in interleaved rounds, so that the machine's load weighs
 * on all three alike. Measured like run.ts: at the runtime (WorkerPool.run), 2 threads each, 32 in flight.
 * `npm run bench:functions:compare [-- --before=c169027 --rounds=7 --seconds=2]`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import wabt from 'wabt';
import type { GuestRequest } from '../../src/baas/functions/cgi.js';
import { Args } from '../lib/args.js';
import { runBench } from '../lib/main.js';
import { repoRoot } from '../lib/paths.js';
import { f, runLine, table, writeSection } from '../lib/report.js';
import { median, percentile } from '../lib/stats.js';

const args = new Args();
const BEFORE = args.option('before') ?? 'c169027';
const ROUNDS = args.number('rounds', args.quick ? 3 : 7);
const SECONDS = args.number('seconds', args.quick ? 1 : 2);
const IN_FLIGHT = 32;
const WORKERS = 2;
const MEMORY = 128 * 1024 * 1024;
const BASELINE_WORKER = `
const { parentPort } = require('node:worker_threads');
const handler = (request) => ({ status: 200, headers: [['content-type', 'text/plain']], body: request.body });
parentPort.on('message', (m) => parentPort.postMessage({ id: m.id, response: handler(m.request) }));
parentPort.postMessage({ ready: true });`;

type Invoke = () => Promise<void>;
interface Runner {
  invoke: Invoke;
  close: () => Promise<unknown>;
}

const request = (): GuestRequest => ({ method: 'POST', path: '', query: '', headers: { 'content-type': 'text/plain' }, body: new TextEncoder().encode('hello 2') });

/** The runtime under `root` (a checkout's top directory), loaded by path so that two versions run side by side. */
async function wasiRunner(root: string, wasm: Buffer): Promise<Runner> {
  const load = (file: string) => import(pathToFileURL(path.join(root, 'src/baas/functions', file)).href);
  const { CodeCache } = await load('runtime/code-cache.ts');
  const { WorkerPool } = await load('runtime/pool.ts');
  const { wagiEnvironment } = await load('cgi.ts');
  const pool = new WorkerPool({ size: WORKERS, heapMb: 256, maxQueued: 10_000, cachedVersions: 64 });
  for (let waited = 0; pool.readyCount() < WORKERS; waited += 20) {
    if (waited > 60_000) throw new Error(`the pool under ${root} did not start`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const cache = new CodeCache(16);
  const fetch = { allow: [], selfOrigin: null, selfAddress: null, host: '' };
  const invoke = async () => {
    const ready = await cache.get('echo', 'wasm', MEMORY, async () => wasm);
    const req = request();
    const result = await pool.run({
      versionId: 'echo', kind: 'wasm', name: 'echo', memoryBytes: MEMORY, request: req, url: 'http://localhost/functions/v1/echo',
      env: wagiEnvironment(req, 'echo', {}), fetch, responseLimit: 1 << 20, timeoutMs: 10_000, module: ready.module, wasmMemory: ready.memory,
    });
    if (result.outcome !== 'ok' || new TextDecoder().decode(result.response.body) !== 'hello 2') throw new Error(`echo failed: ${result.message}`);
  };
  return { invoke, close: () => pool.close() };
}

/** The same plain-JS baseline as run.ts: worker threads, one invocation at a time each, one message each way. */
async function baselineRunner(): Promise<Runner> {
  const workers = Array.from({ length: WORKERS }, () => new Worker(BASELINE_WORKER, { eval: true }));
  await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
  const idle = [...workers];
  const waiting: (() => void)[] = [];
  const pending = new Map<number, () => void>();
  let next = 1;
  for (const w of workers) {
    w.on('message', (m: { id: number }) => {
      pending.get(m.id)?.();
      pending.delete(m.id);
      idle.push(w);
      waiting.shift()?.();
    });
  }
  const acquire = (): Promise<Worker> => (idle.length > 0 ? Promise.resolve(idle.pop() as Worker) : new Promise((r) => waiting.push(() => r(idle.pop() as Worker))));
  const invoke = async () => {
    const w = await acquire();
    const id = next++;
    await new Promise<void>((resolve) => {
      pending.set(id, resolve);
      w.postMessage({ id, request: request() });
    });
  };
  return { invoke, close: () => Promise.all(workers.map((w) => w.terminate())) };
}

async function rate(invoke: Invoke): Promise<number> {
  let done = 0;
  const end = Date.now() + SECONDS * 1000;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (Date.now() < end) {
        await invoke();
        done++;
      }
    }),
  );
  return done / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function warm(invoke: Invoke): Promise<number[]> {
  for (let i = 0; i < 200; i++) await invoke();
  const out: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t0 = process.hrtime.bigint();
    await invoke();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out.sort((a, b) => a - b);
}

/** The runtime of `ref`, extracted once. */
function checkoutOf(ref: string): string {
  const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: repoRoot, encoding: 'utf8' }).trim();
  const dir = path.join(repoRoot, 'bench/.tmp/functions-before', commit);
  if (!existsSync(path.join(dir, 'src/baas/functions/runtime/pool.ts'))) {
    mkdirSync(dir, { recursive: true });
    const tar = execFileSync('git', ['archive', commit, 'src/baas/functions'], { cwd: repoRoot, maxBuffer: 64 << 20 });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
  }
  return dir;
}

async function main(): Promise<void> {
  const toolkit = await wabt();
  const parsed = toolkit.parseWat('echo.wat', readFileSync(path.join(repoRoot, 'examples/functions/echo-wasi/echo.wat'), 'utf8'));
  const wasm = Buffer.from(parsed.toBinary({}).buffer);
  parsed.destroy();
  const runners = { before: await wasiRunner(checkoutOf(BEFORE), wasm), after: await wasiRunner(repoRoot, wasm), baseline: await baselineRunner() };
  const names = ['before', 'after', 'baseline'] as const;
  const loads: number[] = [os.loadavg()[0]];
  const latency: Record<string, number[]> = {};
  for (const name of names) latency[name] = await warm(runners[name].invoke);
  const rates: Record<string, number[]> = { before: [], after: [], baseline: [] };
  const perRound: string[][] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of names) rates[name].push(await rate(runners[name].invoke));
    loads.push(os.loadavg()[0]);
    const base = rates.baseline[round];
    perRound.push([String(round + 1), f(loads[round + 1], 1), f(rates.before[round]), f(rates.after[round]), f(base), `${f(rates.before[round] / base, 2)}x`, `${f(rates.after[round] / base, 2)}x`]);
  }
  await Promise.all(names.map((n) => runners[n].close()));
  const base = median(rates.baseline);
  const ms = (xs: number[], p: number) => f(percentile(xs, p), 3);
  const text = [
    '## Functions runtime: before and after the pipelined pool (issue 19 throughput)',
    '',
    runLine(`npm run bench:functions:compare${args.argv.length > 0 ? ` -- ${args.argv.join(' ')}` : ''}`),
    `WASI echo on the runtime of ${BEFORE} (before) and of this checkout (after), beside run.ts's plain-JS baseline, in ${ROUNDS} interleaved`,
    `rounds of ${SECONDS} s each, ${IN_FLIGHT} in flight, ${WORKERS} threads each; warm = 2000 sequential calls after 200 warm-up calls.`,
    `1-minute load average: ${loads.map((l) => f(l, 1)).join(', ')} (start, then after each round).`,
    '',
    table(
      ['', 'warm p50 / p99 (ms)', 'invocations/s (median)', 'vs baseline'],
      names.map((n) => [n, `${ms(latency[n], 50)} / ${ms(latency[n], 99)}`, f(median(rates[n])), `${f(median(rates[n]) / base, 2)}x`]),
    ),
    '',
    table(['round', 'load', 'before /s', 'after /s', 'baseline /s', 'before', 'after'], perRound),
  ].join('\n');
  console.log(text);
  if (!args.flag('no-write')) writeSection('## Functions runtime: before and after the pipelined pool (issue 19 throughput)', text);
}

runBench('functions-compare', main, { hardLimitMs: 10 * 60_000, cleanup: async () => undefined });
