/**
 * WASI preview 1 for a WAGI command module, in memory: args and environment, stdin from the request body, stdout
 * and stderr into buffers, clocks and random, proc_exit; no file descriptor past stderr, no preopened directory, no
 * sockets, so the guest can reach nothing outside its own memory. node:wasi would need real file descriptors for
 * stdio (temp files per invocation) and its documentation disclaims being a sandbox; this shim is what the guest
 * gets and nothing else. Every other preview 1 call answers ENOSYS.
 */

const ERRNO = { success: 0, badf: 8, inval: 28, nosys: 52, spipe: 70 } as const;
const FILETYPE_CHARACTER_DEVICE = 2;
const STDERR_KEEP_BYTES = 64 * 1024;

/** The guest called proc_exit. */
export class ProcExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** The guest wrote more to stdout than a response may hold. */
export class OutputTooLarge extends Error {}

export interface WasiIo {
  /** Packed: each argument followed by a NUL. */
  args: string;
  argCount: number;
  /** Packed: each "NAME=value" followed by a NUL. */
  env: string;
  envCount: number;
  stdin: Uint8Array;
  stdoutLimit: number;
}

export interface WasiSession {
  imports: Record<string, (...args: never[]) => number | void>;
  /** Called once the instance exists: the shim reads and writes through its exported memory. */
  bind(memory: WebAssembly.Memory): void;
  /** What the guest wrote, valid until the next session starts (the buffer is reused). */
  stdout(): Uint8Array;
  stderr(): string;
}

/** NUL-terminated strings packed in one string: encoded only when the guest asks for them. */
interface Packed {
  text: string;
  count: number;
  bytes: Buffer | null;
}

const encoded = (list: Packed): Buffer => (list.bytes ??= Buffer.from(list.text, 'utf8'));

/** The invocation the shared import functions act on: a worker runs one at a time, so one state object serves all. */
interface State {
  memory: WebAssembly.Memory | null;
  buffer: ArrayBuffer | null;
  dataView: DataView;
  byteView: Uint8Array;
  args: Packed;
  env: Packed;
  stdin: Uint8Array;
  stdinAt: number;
  stdoutLimit: number;
  /** Reused from one invocation to the next: only the first stdoutSize bytes are this invocation's. */
  stdout: Uint8Array;
  stdoutSize: number;
  stderr: Uint8Array[];
  stderrSize: number;
}

const state: State = {
  memory: null,
  buffer: null,
  dataView: new DataView(new ArrayBuffer(0)),
  byteView: new Uint8Array(0),
  args: { text: '', count: 0, bytes: null },
  env: { text: '', count: 0, bytes: null },
  stdin: new Uint8Array(0),
  stdinAt: 0,
  stdoutLimit: 0,
  stdout: new Uint8Array(64 * 1024),
  stdoutSize: 0,
  stderr: [],
  stderrSize: 0,
};

// Views made again only when the buffer changed (memory.grow detaches the old one).
function refresh(s: State): void {
  const current = (s.memory as WebAssembly.Memory).buffer;
  if (current !== s.buffer) {
    s.buffer = current;
    s.dataView = new DataView(current);
    s.byteView = new Uint8Array(current);
  }
}
const view = () => {
  refresh(state);
  return state.dataView;
};
const bytes = () => {
  refresh(state);
  return state.byteView;
};
const sizes = (list: Packed, countPtr: number, sizePtr: number) => {
  view().setUint32(countPtr, list.count, true);
  view().setUint32(sizePtr, encoded(list).length, true);
  return ERRNO.success;
};
const fill = (list: Packed, ptrsPtr: number, bufPtr: number) => {
  const packed = encoded(list);
  bytes().set(packed, bufPtr);
  const v = view();
  for (let i = 0, at = 0; i < list.count; i++) {
    v.setUint32(ptrsPtr + i * 4, bufPtr + at, true);
    at = packed.indexOf(0, at) + 1;
  }
  return ERRNO.success;
};
/** Appends to stdout, growing its buffer (at most to the limit) when this invocation writes more than it holds. */
const appendStdout = (from: Uint8Array, ptr: number, len: number) => {
  const s = state;
  const end = s.stdoutSize + len;
  if (end > s.stdoutLimit) throw new OutputTooLarge('response body over the limit');
  if (end > s.stdout.length) {
    const grown = new Uint8Array(Math.min(Math.max(end, s.stdout.length * 2), s.stdoutLimit));
    grown.set(s.stdout.subarray(0, s.stdoutSize));
    s.stdout = grown;
  }
  s.stdout.set(from.subarray(ptr, ptr + len), s.stdoutSize);
  s.stdoutSize = end;
};
const stdio = (fd: number) => fd >= 0 && fd <= 2;

/** The preview 1 calls, made once: they act on `state`, the current invocation. */
const calls: Record<string, (...args: never[]) => number | void> = {
  args_sizes_get: (c: number, z: number) => sizes(state.args, c, z),
  args_get: (p: number, b: number) => fill(state.args, p, b),
  environ_sizes_get: (c: number, z: number) => sizes(state.env, c, z),
  environ_get: (p: number, b: number) => fill(state.env, p, b),
  fd_write: (fd: number, iovs: number, count: number, writtenPtr: number) => {
    if (fd !== 1 && fd !== 2) return ERRNO.badf;
    const s = state;
    let written = 0;
    for (let i = 0; i < count; i++) {
      const ptr = view().getUint32(iovs + i * 8, true);
      const len = view().getUint32(iovs + i * 8 + 4, true);
      written += len;
      if (fd === 1) {
        appendStdout(bytes(), ptr, len);
      } else if (s.stderrSize < STDERR_KEEP_BYTES) {
        s.stderrSize += len;
        s.stderr.push(bytes().slice(ptr, ptr + len));
      }
    }
    view().setUint32(writtenPtr, written, true);
    return ERRNO.success;
  },
  fd_read: (fd: number, iovs: number, count: number, readPtr: number) => {
    if (fd !== 0) return ERRNO.badf;
    const s = state;
    let read = 0;
    for (let i = 0; i < count && s.stdinAt < s.stdin.length; i++) {
      const ptr = view().getUint32(iovs + i * 8, true);
      const len = view().getUint32(iovs + i * 8 + 4, true);
      const part = s.stdin.subarray(s.stdinAt, s.stdinAt + len);
      bytes().set(part, ptr);
      s.stdinAt += part.length;
      read += part.length;
    }
    view().setUint32(readPtr, read, true);
    return ERRNO.success;
  },
  fd_close: (fd: number) => (stdio(fd) ? ERRNO.success : ERRNO.badf),
  fd_sync: (fd: number) => (stdio(fd) ? ERRNO.success : ERRNO.badf),
  fd_fdstat_get: (fd: number, ptr: number) => {
    if (!stdio(fd)) return ERRNO.badf;
    const v = view();
    v.setUint8(ptr, FILETYPE_CHARACTER_DEVICE);
    v.setUint16(ptr + 2, 0, true);
    v.setBigUint64(ptr + 8, 0xffffffffn, true);
    v.setBigUint64(ptr + 16, 0n, true);
    return ERRNO.success;
  },
  fd_fdstat_set_flags: (fd: number) => (stdio(fd) ? ERRNO.success : ERRNO.badf),
  fd_filestat_get: (fd: number, ptr: number) => {
    if (!stdio(fd)) return ERRNO.badf;
    bytes().fill(0, ptr, ptr + 64);
    view().setUint8(ptr + 16, FILETYPE_CHARACTER_DEVICE);
    return ERRNO.success;
  },
  fd_seek: (fd: number) => (stdio(fd) ? ERRNO.spipe : ERRNO.badf),
  fd_tell: (fd: number) => (stdio(fd) ? ERRNO.spipe : ERRNO.badf),
  // No preopened directories: wasi-libc asks from fd 3 on until EBADF.
  fd_prestat_get: () => ERRNO.badf,
  fd_prestat_dir_name: () => ERRNO.badf,
  path_open: () => ERRNO.badf,
  clock_res_get: (_id: number, ptr: number) => {
    view().setBigUint64(ptr, 1000n, true);
    return ERRNO.success;
  },
  clock_time_get: (id: number, _precision: bigint, ptr: number) => {
    if (id > 3) return ERRNO.inval;
    const now = id === 0 ? BigInt(Date.now()) * 1_000_000n : process.hrtime.bigint();
    view().setBigUint64(ptr, now, true);
    return ERRNO.success;
  },
  random_get: (ptr: number, len: number) => {
    for (let at = 0; at < len; at += 65536) crypto.getRandomValues(bytes().subarray(ptr + at, ptr + Math.min(len, at + 65536)));
    return ERRNO.success;
  },
  sched_yield: () => ERRNO.success,
  proc_exit: (code: number) => {
    throw new ProcExit(code);
  },
};
const nosys = () => ERRNO.nosys;
/** Import objects by the list of names a module imports (the worker keeps one list per module), made once each. */
const importObjects = new WeakMap<readonly string[], WasiSession['imports']>();
const STDOUT_KEPT_BYTES = 1024 * 1024;

/** Starts an invocation: the shared calls act on it until the next one starts. */
export function wasiSession(io: WasiIo, importNames: readonly string[]): WasiSession {
  let imports = importObjects.get(importNames);
  if (!imports) {
    imports = {};
    for (const name of importNames) imports[name] = calls[name] ?? nosys;
    importObjects.set(importNames, imports);
  }
  const s = state;
  // The views stay when the next invocation gets the same (pooled) memory: refresh compares buffers.
  s.memory = null;
  s.args = { text: io.args, count: io.argCount, bytes: null };
  s.env = { text: io.env, count: io.envCount, bytes: null };
  s.stdin = io.stdin;
  s.stdinAt = 0;
  s.stdoutLimit = io.stdoutLimit;
  s.stdoutSize = 0;
  // A large answer's buffer is not kept for all the invocations after it.
  if (s.stdout.length > STDOUT_KEPT_BYTES) s.stdout = new Uint8Array(64 * 1024);
  if (s.stderrSize > 0) s.stderr = [];
  s.stderrSize = 0;
  return {
    imports,
    bind(m) {
      s.memory = m;
    },
    stdout: () => s.stdout.subarray(0, s.stdoutSize),
    stderr: () => (s.stderr.length === 0 ? '' : Buffer.concat(s.stderr).toString('utf8')),
  };
}
