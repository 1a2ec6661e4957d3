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
  args: string[];
  env: Record<string, string>;
  stdin: Uint8Array;
  stdoutLimit: number;
}

export interface WasiSession {
  imports: Record<string, (...args: never[]) => number | void>;
  /** Called once the instance exists: the shim reads and writes through its exported memory. */
  bind(memory: WebAssembly.Memory): void;
  stdout(): Uint8Array;
  stderr(): string;
}

/** NUL-terminated strings packed in one buffer, with where each starts: what args_get and environ_get copy out. */
interface Packed {
  bytes: Buffer;
  offsets: number[];
}

function pack(strings: string[]): Packed {
  const bytes = Buffer.from(strings.length === 0 ? '' : `${strings.join('\0')}\0`, 'utf8');
  const offsets: number[] = [];
  let at = 0;
  for (let i = 0; i < strings.length; i++) {
    offsets.push(at);
    at = bytes.indexOf(0, at) + 1;
  }
  return { bytes, offsets };
}

/** The invocation the shared import functions act on: a worker runs one at a time. */
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
  stdout: Uint8Array[];
  stdoutSize: number;
  stderr: Uint8Array[];
  stderrSize: number;
}

let state: State | null = null;

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
  refresh(state as State);
  return (state as State).dataView;
};
const bytes = () => {
  refresh(state as State);
  return (state as State).byteView;
};
const sizes = (list: Packed, countPtr: number, sizePtr: number) => {
  view().setUint32(countPtr, list.offsets.length, true);
  view().setUint32(sizePtr, list.bytes.length, true);
  return ERRNO.success;
};
const fill = (list: Packed, ptrsPtr: number, bufPtr: number) => {
  bytes().set(list.bytes, bufPtr);
  const v = view();
  list.offsets.forEach((offset, i) => v.setUint32(ptrsPtr + i * 4, bufPtr + offset, true));
  return ERRNO.success;
};
const stdio = (fd: number) => fd >= 0 && fd <= 2;

/** The preview 1 calls, made once: they act on `state`, the current invocation. */
const calls: Record<string, (...args: never[]) => number | void> = {
  args_sizes_get: (c: number, z: number) => sizes((state as State).args, c, z),
  args_get: (p: number, b: number) => fill((state as State).args, p, b),
  environ_sizes_get: (c: number, z: number) => sizes((state as State).env, c, z),
  environ_get: (p: number, b: number) => fill((state as State).env, p, b),
  fd_write: (fd: number, iovs: number, count: number, writtenPtr: number) => {
    if (fd !== 1 && fd !== 2) return ERRNO.badf;
    const s = state as State;
    let written = 0;
    for (let i = 0; i < count; i++) {
      const ptr = view().getUint32(iovs + i * 8, true);
      const len = view().getUint32(iovs + i * 8 + 4, true);
      written += len;
      if (fd === 1) {
        s.stdoutSize += len;
        if (s.stdoutSize > s.stdoutLimit) throw new OutputTooLarge('response body over the limit');
        s.stdout.push(bytes().slice(ptr, ptr + len));
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
    const s = state as State;
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
/** Import objects by the list of names a module imports, made once per list. */
const importObjects = new Map<string, WasiSession['imports']>();

/** Starts an invocation: the shared calls act on it until the next one starts. */
export function wasiSession(io: WasiIo, importNames: readonly string[]): WasiSession {
  const key = importNames.join(',');
  let imports = importObjects.get(key);
  if (!imports) {
    imports = {};
    for (const name of importNames) imports[name] = calls[name] ?? nosys;
    importObjects.set(key, imports);
  }
  const s: State = {
    memory: null,
    buffer: null,
    dataView: new DataView(new ArrayBuffer(0)),
    byteView: new Uint8Array(0),
    args: pack(io.args),
    env: pack(Object.entries(io.env).map(([k, v]) => `${k}=${v}`)),
    stdin: io.stdin,
    stdinAt: 0,
    stdoutLimit: io.stdoutLimit,
    stdout: [],
    stdoutSize: 0,
    stderr: [],
    stderrSize: 0,
  };
  state = s;
  return {
    imports,
    bind(m) {
      s.memory = m;
    },
    stdout: () => (s.stdout.length === 1 ? s.stdout[0] : Buffer.concat(s.stdout)),
    stderr: () => Buffer.concat(s.stderr).toString('utf8'),
  };
}
