/** Messages between the invocation pool (main thread) and its worker threads. */
import type { GuestRequest, GuestResponse } from '../cgi.js';
import type { FunctionKind } from '../store.js';

/** What the host side of a JavaScript function's fetch may reach. */
export interface FetchPolicy {
  /** Allowed origins (scheme://host[:port]), this node's own API among them. */
  allow: string[];
  /** This node's own API: requests to it go to `selfAddress` with the invocation's Host, so the tenant is the same. */
  selfOrigin: string | null;
  selfAddress: string | null;
  host: string;
}

export interface InvokeMessage {
  type: 'invoke';
  id: number;
  versionId: string;
  kind: FunctionKind;
  name: string;
  /** Present the first time this worker runs the version: a compiled module, or a CommonJS script. */
  module?: WebAssembly.Module;
  source?: string;
  memoryBytes: number;
  /** The module imports its memory (performer.memory) of these limits in pages; the worker keeps such memories. */
  wasmMemory?: { initial: number; maximum: number } | null;
  request: GuestRequest;
  /** WASI: the WAGI environment; JavaScript: the `env` object (secrets and the Supabase variables). */
  env: Record<string, string>;
  /** The URL the JavaScript function's Request carries. */
  url: string;
  fetch: FetchPolicy;
  responseLimit: number;
}

export interface ForgetMessage {
  type: 'forget';
  versionId: string;
}

/** ok: the function answered; error: it trapped or threw (500); boot: it did not start (503); limit: 546. */
export type Outcome = 'ok' | 'error' | 'boot' | 'limit';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

export interface ResultMessage {
  type: 'result';
  id: number;
  outcome: Outcome;
  response: GuestResponse | null;
  /** Why, for the logs (never sent to the caller beyond the status table's words). */
  message: string;
  logs: LogLine[];
  /** The guest's memory at the end of the invocation (WebAssembly memory, or the JS engine's heap). */
  memoryBytes: number;
}

export type ToWorker = InvokeMessage | ForgetMessage;
export type FromWorker = ResultMessage | { type: 'ready' };
