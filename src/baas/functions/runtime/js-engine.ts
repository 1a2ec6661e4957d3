/**
 * JavaScript functions inside QuickJS compiled to WebAssembly (quickjs-emscripten), in a worker thread: one QuickJS
 * runtime and context per function version, kept warm between invocations (as Workers reuse an isolate), with the
 * function's memory cap as the runtime's memory limit. The guest sees the prelude's Web APIs; its only ways out are
 * the host functions defined here.
 */
import { newQuickJSWASMModule, RELEASE_SYNC, type QuickJSContext, type QuickJSHandle, type QuickJSRuntime, type QuickJSWASMModule } from 'quickjs-emscripten';
import type { GuestRequest, GuestResponse } from '../cgi.js';
import { hostFetch } from './fetch-gate.js';
import { JS_PRELUDE, wrapFunctionSource } from './js-prelude.js';
import type { FetchPolicy, LogLine, Outcome } from './protocol.js';

const MAX_LOG_LINES = 100;
const MAX_LOG_LINE = 4096;

export interface JsOutcome {
  outcome: Outcome;
  response: GuestResponse | null;
  message: string;
  memoryBytes: number;
}

/** What the host functions of a context act on during one invocation. */
interface Invocation {
  logs: LogLine[];
  fetch: FetchPolicy;
  responseLimit: number;
}

/**
 * The engine's WebAssembly heap, read without a copy. QuickJS's own memory limit misses large ArrayBuffers (they
 * are counted, not refused), so the cap is also held from here: the heap may grow by at most the cap during one
 * invocation (a worker runs one at a time), checked from QuickJS's interrupt handler while the guest runs.
 */
function heapBytes(engine: QuickJSWASMModule): number {
  return (engine as unknown as { module: { HEAPU8: Uint8Array } }).module.HEAPU8.byteLength;
}

export class JsFunction {
  private current: Invocation | null = null;
  private overCap = false;
  /** Whether the heap grew during the last invocation: only then is the context's memory worth measuring. */
  heapGrew: () => boolean = () => false;

  private constructor(
    private readonly engine: QuickJSWASMModule,
    private readonly runtime: QuickJSRuntime,
    private readonly vm: QuickJSContext,
    private readonly memoryLimit: number,
  ) {}

  private static engine: Promise<QuickJSWASMModule> | null = null;

  /** Loads the engine once per worker; the pool waits for it before sending work. */
  static warm(): Promise<QuickJSWASMModule> {
    JsFunction.engine ??= newQuickJSWASMModule(RELEASE_SYNC);
    return JsFunction.engine;
  }

  /** A context with the prelude and the function's script run; throws (a boot failure) when the script fails. */
  static async load(source: string, memoryBytes: number): Promise<JsFunction> {
    const engine = await JsFunction.warm();
    const runtime = engine.newRuntime();
    runtime.setMemoryLimit(memoryBytes);
    runtime.setMaxStackSize(1024 * 1024);
    const vm = runtime.newContext();
    const fn = new JsFunction(engine, runtime, vm, memoryBytes);
    try {
      fn.installHost();
      vm.unwrapResult(vm.evalCode(wrapFunctionSource(source), 'function.js')).dispose();
      return fn;
    } catch (err) {
      fn.dispose();
      throw err instanceof Error ? err : new Error(describe(err));
    }
  }

  dispose(): void {
    this.vm.dispose();
    this.runtime.dispose();
  }

  memoryBytes(): number {
    const usage = this.vm.dump(this.runtime.computeMemoryUsage()) as { memory_used_size?: number };
    return usage.memory_used_size ?? 0;
  }

  async invoke(request: GuestRequest, url: string, env: Record<string, string>, logs: LogLine[], fetch: FetchPolicy, responseLimit: number): Promise<JsOutcome> {
    const vm = this.vm;
    this.current = { logs, fetch, responseLimit };
    const heapAtStart = heapBytes(this.engine);
    this.overCap = false;
    this.runtime.setInterruptHandler(() => {
      if (heapBytes(this.engine) - heapAtStart > this.memoryLimit) this.overCap = true;
      return this.overCap;
    });
    try {
      const meta = vm.newString(JSON.stringify({ url, method: request.method, headers: Object.entries(request.headers) }));
      const body = vm.newArrayBuffer(request.body.slice().buffer);
      const envJson = vm.newString(JSON.stringify(env));
      const dispatch = vm.getProp(vm.global, '__dispatch');
      const called = vm.callFunction(dispatch, vm.undefined, meta, body, envJson);
      for (const h of [meta, body, envJson, dispatch]) h.dispose();
      if (called.error) return this.failure(called.error);
      this.heapGrew = () => heapBytes(this.engine) > heapAtStart;
      const settled = vm.resolvePromise(called.value);
      called.value.dispose();
      this.runtime.executePendingJobs();
      const result = await settled;
      if (result.error) return this.failure(result.error);
      // An answer the cap stopped midway (the interrupt handler), or one reached by going past it between two
      // interrupt checks, is over the limit all the same.
      if (this.overCap || heapBytes(this.engine) - heapAtStart > this.memoryLimit) {
        this.overCap = true;
        result.value.dispose();
        return { outcome: 'limit', response: null, message: 'memory cap reached', memoryBytes: 0 };
      }
      try {
        return this.response(result.value);
      } finally {
        result.value.dispose();
      }
    } finally {
      this.current = null;
    }
  }

  private response(pair: QuickJSHandle): JsOutcome {
    const vm = this.vm;
    const metaHandle = vm.getProp(pair, 0);
    const bodyHandle = vm.getProp(pair, 1);
    const meta = JSON.parse(vm.getString(metaHandle)) as { status: number; headers: [string, string][] };
    const bytes = vm.getArrayBuffer(bodyHandle);
    const body = new Uint8Array(bytes.value);
    bytes.dispose();
    metaHandle.dispose();
    bodyHandle.dispose();
    if (body.byteLength > (this.current?.responseLimit ?? Infinity)) {
      return { outcome: 'limit', response: null, message: 'response body over the limit', memoryBytes: 0 };
    }
    return { outcome: 'ok', response: { status: meta.status, headers: meta.headers, body }, message: '', memoryBytes: 0 };
  }

  /** True when the context holds more than its cap (checked after an invocation that grew the heap). */
  overLimit(): boolean {
    return this.overCap || this.memoryBytes() > this.memoryLimit;
  }

  private failure(error: QuickJSHandle): JsOutcome {
    const dumped = this.vm.dump(error) as unknown;
    error.dispose();
    const message = this.overCap ? 'memory cap reached' : describe(dumped);
    // QuickJS reports its memory limit as an InternalError "out of memory" (or a stack overflow).
    const limit = this.overCap || /out of memory|stack overflow/i.test(message);
    return { outcome: limit ? 'limit' : 'error', response: null, message, memoryBytes: 0 };
  }

  private installHost(): void {
    const vm = this.vm;
    const host = vm.newObject();
    const fn = (name: string, impl: (...args: QuickJSHandle[]) => QuickJSHandle | void) => {
      const handle = vm.newFunction(name, impl);
      vm.setProp(host, name, handle);
      handle.dispose();
    };
    fn('encode', (s) => vm.newArrayBuffer(new TextEncoder().encode(vm.getString(s)).buffer as ArrayBuffer));
    fn('decode', (b) => {
      const view = vm.getArrayBuffer(b);
      const text = new TextDecoder().decode(view.value);
      view.dispose();
      return vm.newString(text);
    });
    fn('random', (n) => {
      const size = Math.min(65536, Math.max(0, Math.floor(vm.getNumber(n))));
      return vm.newArrayBuffer(crypto.getRandomValues(new Uint8Array(size)).buffer);
    });
    fn('log', (level, text) => {
      const logs = this.current?.logs;
      if (!logs || logs.length >= MAX_LOG_LINES) return;
      const l = vm.getString(level);
      logs.push({ level: l === 'debug' || l === 'warn' || l === 'error' ? l : 'info', message: vm.getString(text).slice(0, MAX_LOG_LINE) });
    });
    fn('fetch', (metaHandle, bodyHandle) => {
      const current = this.current;
      const call = JSON.parse(vm.getString(metaHandle)) as { url: string; method: string; headers: [string, string][] };
      let body: Uint8Array | null = null;
      if (vm.typeof(bodyHandle) === 'object') {
        const view = vm.getArrayBuffer(bodyHandle);
        body = new Uint8Array(view.value);
        view.dispose();
      }
      const deferred = vm.newPromise();
      const settle = (run: () => void) => {
        if (!deferred.alive) return;
        run();
        this.runtime.executePendingJobs();
      };
      if (!current) {
        settle(() => deferred.reject(vm.newError('fetch outside of an invocation')));
        return deferred.handle;
      }
      hostFetch(current.fetch, { ...call, body }, current.responseLimit).then(
        (answer) =>
          settle(() => {
            const pair = vm.newArray();
            const metaOut = vm.newString(JSON.stringify({ status: answer.status, headers: answer.headers }));
            const bodyOut = vm.newArrayBuffer(answer.body.buffer.slice(answer.body.byteOffset, answer.body.byteOffset + answer.body.byteLength) as ArrayBuffer);
            vm.setProp(pair, 0, metaOut);
            vm.setProp(pair, 1, bodyOut);
            deferred.resolve(pair);
            for (const h of [pair, metaOut, bodyOut]) h.dispose();
          }),
        (err: unknown) =>
          settle(() => {
            const error = vm.newError({ name: 'TypeError', message: err instanceof Error ? err.message : String(err) });
            deferred.reject(error);
            error.dispose();
          }),
      );
      return deferred.handle;
    });
    const install = vm.unwrapResult(vm.evalCode(JS_PRELUDE, 'prelude.js'));
    vm.unwrapResult(vm.callFunction(install, vm.undefined, host)).dispose();
    install.dispose();
    host.dispose();
  }
}

function describe(error: unknown): string {
  if (error && typeof error === 'object') {
    const e = error as { name?: unknown; message?: unknown; stack?: unknown };
    if (typeof e.message === 'string') return `${typeof e.name === 'string' ? e.name : 'Error'}: ${e.message}`;
  }
  return String(error);
}
