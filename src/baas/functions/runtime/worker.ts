/**
 * One warm worker thread of the invocation pool: runs one invocation at a time, WASI command modules (a fresh
 * instance per request, the WAGI way) or JavaScript functions (a warm QuickJS context per version). Compiled code
 * stays cached here by version id until the pool says to forget it. The time budget is not this thread's business:
 * the pool terminates the whole thread when an invocation overruns.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CgiParseError, parseCgiOutput } from '../cgi.js';
import { JsFunction } from './js-engine.js';
import { fromInvokeWire, toResultWire, type FromWorker, type InvokeMessage, type LogLine, type ResultMessage, type ResultWire, type ToWorker, type WasmWire } from './protocol.js';
import { OutputTooLarge, ProcExit, wasiSession } from './wasi-shim.js';
import { MEMORY_IMPORT, WASM_PAGE_BYTES } from './wasm-binary.js';

const port = parentPort;
if (!port) throw new Error('the functions worker runs only as a worker thread');
/** `quick`: the version's last invocation here took under QUICK_MS (answers may wait for it, see drain). */
const modules = new Map<string, { module: WebAssembly.Module; wasi: string[]; memories: WebAssembly.Memory[]; quick: boolean }>();
const QUICK_MS = 1;
/** Zeroed memories kept per version: a new WebAssembly memory costs more than the rest of an invocation. */
const KEPT_MEMORIES = 2;
const scripts = new Map<string, { source: string; loaded: JsFunction | null }>();

const post = (message: FromWorker) => port.postMessage(message);
/** Shared with the pool: the invocation this thread runs and since when, read by the time budget's timer. */
const progress = (workerData as { progress: SharedArrayBuffer }).progress;
const runningId = new Int32Array(progress, 0, 1);
const runningSince = new Float64Array(progress, 8, 1);
/** Results not posted yet: several go in one message while more invocations wait here. */
let outbox: ResultWire[] = [];
let outboxTransfer: ArrayBuffer[] = [];
const OUTBOX_MAX = 8;

/** Messages not handled yet: one invocation at a time, in order (a JavaScript one awaits its promises). */
const inbox: ToWorker[] = [];
let draining = false;

port.on('message', (received: ToWorker | ToWorker[]) => {
  if (Array.isArray(received)) for (const wire of received) inbox.push(wire);
  else inbox.push(received);
  if (!draining) void drain();
});

async function drain(): Promise<void> {
  draining = true;
  for (let wire = inbox.shift(); wire !== undefined; wire = inbox.shift()) {
    if (wire.type === 'forget') {
      modules.delete(wire.versionId);
      scripts.get(wire.versionId)?.loaded?.dispose();
      scripts.delete(wire.versionId);
      continue;
    }
    const logs: LogLine[] = [];
    runningSince[0] = Date.now();
    Atomics.store(runningId, 0, wire.id);
    if (wire.type === 'wasm') {
      let result: Result;
      try {
        result = runWasm(wire, logs);
      } catch (err) {
        result = { outcome: 'error', response: null, message: String(err), memoryBytes: 0 };
      }
      const loaded = modules.get(wire.versionId);
      if (loaded) loaded.quick = Date.now() - runningSince[0] < QUICK_MS;
      answer(wire.id, logs, result);
      // Answers wait to go together only behind a job of a version that was quick last time: one that takes long
      // would hold them for its whole run.
      const next = inbox[0];
      const holds = next !== undefined && next.type === 'wasm' && modules.get(next.versionId)?.quick === true && outbox.length < OUTBOX_MAX;
      if (!holds) flush();
      continue;
    }
    flush();
    const message = fromInvokeWire(wire);
    const result = await runJs(message, logs).catch((err: unknown): Result => ({ outcome: 'error', response: null, message: String(err), memoryBytes: 0 }));
    answer(message.id, logs, result);
    flush();
  }
  draining = false;
}

function flush(): void {
  if (outbox.length === 0) return;
  port?.postMessage(outbox.length === 1 ? outbox[0] : outbox, outboxTransfer);
  outbox = [];
  outboxTransfer = [];
}

type Result = Omit<ResultMessage, 'type' | 'id' | 'logs'>;

function answer(id: number, logs: LogLine[], result: Result): void {
  const { wire, transfer } = toResultWire(id, { ...result, logs });
  outbox.push(wire);
  for (const buffer of transfer) outboxTransfer.push(buffer);
}

function runWasm(message: WasmWire, logs: LogLine[]): Result {
  if (message.module) {
    const wasi = WebAssembly.Module.imports(message.module).filter((i) => i.module === 'wasi_snapshot_preview1' && i.kind === 'function').map((i) => i.name);
    modules.set(message.versionId, { module: message.module, wasi, memories: [], quick: false });
  }
  const loaded = modules.get(message.versionId);
  if (!loaded) return { outcome: 'boot', response: null, message: 'module not loaded', memoryBytes: 0 };
  const session = wasiSession(
    { args: `${message.name}\0`, argCount: 1, env: message.env, envCount: message.envCount, stdin: message.body, stdoutLimit: message.responseLimit },
    loaded.wasi,
  );
  const limits = message.memoryInitial === -1 ? null : { initial: message.memoryInitial, maximum: message.memoryMaximum };
  let given: WebAssembly.Memory | null = null;
  let instance: WebAssembly.Instance;
  try {
    if (limits) given = loaded.memories.pop() ?? new WebAssembly.Memory(limits);
    instance = new WebAssembly.Instance(loaded.module, { wasi_snapshot_preview1: session.imports, ...(given ? { [MEMORY_IMPORT.module]: { [MEMORY_IMPORT.name]: given } } : {}) });
  } catch (err) {
    return { outcome: 'boot', response: null, message: `instantiation failed: ${String(err)}`, memoryBytes: 0 };
  }
  try {
    return runInstance(instance, session, message, logs);
  } finally {
    // Back for the next invocation only at its initial size, zeroed: nothing of this one is left in it.
    if (given && limits && given.buffer.byteLength === limits.initial * WASM_PAGE_BYTES && loaded.memories.length < KEPT_MEMORIES) {
      new Uint8Array(given.buffer).fill(0);
      loaded.memories.push(given);
    }
  }
}

function runInstance(instance: WebAssembly.Instance, session: ReturnType<typeof wasiSession>, message: WasmWire, logs: LogLine[]): Result {
  const memory = instance.exports.memory;
  const start = instance.exports._start;
  if (!(memory instanceof WebAssembly.Memory) || typeof start !== 'function') {
    return { outcome: 'boot', response: null, message: 'a WAGI module exports `memory` and `_start`', memoryBytes: 0 };
  }
  session.bind(memory);
  let exitCode = 0;
  let trap: unknown = null;
  try {
    (start as () => void)();
  } catch (err) {
    if (err instanceof ProcExit) exitCode = err.code;
    else trap = err;
  }
  const memoryBytes = memory.buffer.byteLength;
  const stderr = session.stderr();
  if (stderr) logs.push({ level: 'error', message: stderr.slice(0, 4096) });
  if (trap instanceof OutputTooLarge) return { outcome: 'limit', response: null, message: 'response body over the limit', memoryBytes };
  if (trap !== null) {
    // A trap with memory at its cap is an allocation the cap refused (allocators abort when memory.grow fails).
    const atCap = memoryBytes + WASM_PAGE_BYTES > message.memoryBytes;
    return { outcome: atCap ? 'limit' : 'error', response: null, message: `${atCap ? 'memory cap reached: ' : ''}${String(trap)}`, memoryBytes };
  }
  if (exitCode !== 0) return { outcome: 'error', response: null, message: `exited with status ${exitCode}`, memoryBytes };
  try {
    const response = parseCgiOutput(session.stdout());
    // The body is a part of the reused stdout buffer: the answer gets its own copy.
    return { outcome: 'ok', response: { ...response, body: new Uint8Array(response.body) }, message: '', memoryBytes };
  } catch (err) {
    if (err instanceof CgiParseError) return { outcome: 'error', response: null, message: `bad CGI output: ${err.message}`, memoryBytes };
    throw err;
  }
}

async function runJs(message: InvokeMessage, logs: LogLine[]): Promise<Result> {
  if (message.source !== undefined && !scripts.has(message.versionId)) scripts.set(message.versionId, { source: message.source, loaded: null });
  const script = scripts.get(message.versionId);
  if (!script) return { outcome: 'boot', response: null, message: 'script not loaded', memoryBytes: 0 };
  if (!script.loaded) {
    try {
      script.loaded = await JsFunction.load(script.source, message.memoryBytes);
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      return { outcome: /out of memory/i.test(text) ? 'limit' : 'boot', response: null, message: text, memoryBytes: 0 };
    }
  }
  const fn = script.loaded;
  const result = await fn.invoke(message.request, message.url, message.env, logs, message.fetch, message.responseLimit);
  // A context that hit its memory limit may be left half-updated, and one that kept more than its cap between
  // invocations would carry it on: either way the next invocation starts a fresh one.
  const measured = result.outcome === 'ok' && fn.heapGrew() ? fn.memoryBytes() : 0;
  if (result.outcome === 'limit' || measured > message.memoryBytes) {
    fn.dispose();
    script.loaded = null;
  }
  return { ...result, memoryBytes: measured };
}

JsFunction.warm().then(
  () => post({ type: 'ready' }),
  (err: unknown) => {
    throw err;
  },
);
