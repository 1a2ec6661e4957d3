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
 * On the wire, a JavaScript invocation's small parts travel as one JSON string and its body as bytes: a structured
 * clone of many small objects costs more than the rest of a warm invocation.
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

/**
 * A WASI invocation on the wire: only what the worker needs, as primitives, the environment already packed the way
 * environ_get copies it out ("NAME=value\0" each), so neither side builds or parses objects per invocation.
 */
export interface WasmWire {
  type: 'wasm';
  id: number;
  versionId: string;
  name: string;
  env: string;
  envCount: number;
  body: Uint8Array;
  responseLimit: number;
  memoryBytes: number;
  /** The imported memory's limits in pages; -1 when the module defines its own memory. */
  memoryInitial: number;
  memoryMaximum: number;
  module?: WebAssembly.Module;
}

/** A result on the wire, flat: the response headers as one list, name, value, name, value… */
export interface ResultWire {
  type: 'result';
  id: number;
  outcome: Outcome;
  message: string;
  memoryBytes: number;
  /** -1 when there is no response. */
  status: number;
  headers: string[];
  body: Uint8Array | null;
  /** Absent when there are none. */
  logs?: LogLine[];
}

/** Bodies above this size move to the other thread instead of being copied (a transfer costs more for small ones). */
const TRANSFER_BYTES = 64 * 1024;

/**
 * A byte array that owns exactly its buffer: a structured clone copies a view's whole buffer (a pooled Buffer's is
 * 8 KiB, a guest's stdout buffer can be far larger), so a part of a bigger one is copied out first.
 */
function exact(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
}

export function toInvokeWire(message: InvokeMessage): InvokeWire | WasmWire {
  const { id, module, source, request, ...rest } = message;
  if (message.kind === 'wasm') return toWasmWire(message);
  const { body, ...head } = request;
  const wire: InvokeWire = { type: 'invoke', id, json: JSON.stringify({ ...rest, request: head }), body: exact(body) };
  if (module) wire.module = module;
  if (source !== undefined) wire.source = source;
  return wire;
}

function toWasmWire(message: InvokeMessage): WasmWire {
  let env = '';
  let envCount = 0;
  for (const key in message.env) {
    env += `${key}=${message.env[key]}\0`;
    envCount++;
  }
  const limits = message.wasmMemory ?? null;
  const wire: WasmWire = {
    type: 'wasm',
    id: message.id,
    versionId: message.versionId,
    name: message.name,
    env,
    envCount,
    body: exact(message.request.body),
    responseLimit: message.responseLimit,
    memoryBytes: message.memoryBytes,
    memoryInitial: limits ? limits.initial : -1,
    memoryMaximum: limits ? limits.maximum : -1,
  };
  if (message.module) wire.module = message.module;
  return wire;
}

export function fromInvokeWire(wire: InvokeWire): InvokeMessage {
  const parsed = JSON.parse(wire.json) as Omit<InvokeMessage, 'id' | 'request'> & { request: Omit<InvokeMessage['request'], 'body'> };
  return { ...parsed, id: wire.id, module: wire.module, source: wire.source, request: { ...parsed.request, body: wire.body } };
}

/** The result as a message, with what to transfer rather than copy. */
export function toResultWire(id: number, result: Omit<ResultMessage, 'type' | 'id'>): { wire: ResultWire; transfer: ArrayBuffer[] } {
  const response = result.response;
  const headers: string[] = [];
  if (response) for (const [name, value] of response.headers) headers.push(name, value);
  const body = response ? exact(response.body) : null;
  const wire: ResultWire = { type: 'result', id, outcome: result.outcome, message: result.message, memoryBytes: result.memoryBytes, status: response ? response.status : -1, headers, body };
  if (result.logs.length > 0) wire.logs = result.logs;
  return { wire, transfer: body && body.byteLength >= TRANSFER_BYTES ? [body.buffer as ArrayBuffer] : [] };
}

export function fromResultWire(wire: ResultWire): Omit<ResultMessage, 'type' | 'id'> {
  let response: GuestResponse | null = null;
  if (wire.status !== -1) {
    const headers: [string, string][] = [];
    for (let i = 0; i + 1 < wire.headers.length; i += 2) headers.push([wire.headers[i], wire.headers[i + 1]]);
    response = { status: wire.status, headers, body: wire.body ?? new Uint8Array(0) };
  }
  return { outcome: wire.outcome, response, message: wire.message, logs: wire.logs ?? [], memoryBytes: wire.memoryBytes };
}

export type ToWorker = InvokeWire | WasmWire | ForgetMessage;
export type FromWorker = ResultWire | { type: 'ready' };
