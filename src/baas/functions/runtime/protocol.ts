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

/**
 * On the wire, an invocation's small parts travel as one JSON string and its body as bytes: a structured clone of
 * many small objects costs more than the rest of a warm invocation.
 */
export interface InvokeWire {
  type: 'invoke';
  id: number;
  /** InvokeMessage without id, module, source and the request body. */
  json: string;
  body: Uint8Array;
  module?: WebAssembly.Module;
  source?: string;
}

export interface ResultWire {
  type: 'result';
  id: number;
  /** ResultMessage without id and the response body. */
  json: string;
  body: Uint8Array | null;
}

export function toInvokeWire(message: InvokeMessage): InvokeWire {
  const { id, module, source, request, ...rest } = message;
  const { body, ...head } = request;
  const wire: InvokeWire = { type: 'invoke', id, json: JSON.stringify({ ...rest, request: head }), body };
  if (module) wire.module = module;
  if (source !== undefined) wire.source = source;
  return wire;
}

export function fromInvokeWire(wire: InvokeWire): InvokeMessage {
  const parsed = JSON.parse(wire.json) as Omit<InvokeMessage, 'id' | 'request'> & { request: Omit<InvokeMessage['request'], 'body'> };
  return { ...parsed, id: wire.id, module: wire.module, source: wire.source, request: { ...parsed.request, body: wire.body } };
}

export function toResultWire(message: ResultMessage): ResultWire {
  const { id, response, ...rest } = message;
  return { type: 'result', id, json: JSON.stringify({ ...rest, response: response ? { status: response.status, headers: response.headers } : null }), body: response ? response.body : null };
}

export function fromResultWire(wire: ResultWire): ResultMessage {
  const parsed = JSON.parse(wire.json) as Omit<ResultMessage, 'id' | 'response'> & { response: { status: number; headers: [string, string][] } | null };
  return { ...parsed, id: wire.id, response: parsed.response ? { ...parsed.response, body: wire.body ?? new Uint8Array(0) } : null };
}

export type ToWorker = InvokeWire | ForgetMessage;
export type FromWorker = ResultWire | { type: 'ready' };
