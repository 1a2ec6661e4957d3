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

const encoder = new TextEncoder();

export function wasiSession(io: WasiIo, importNames: readonly string[]): WasiSession {
  let memory: WebAssembly.Memory | null = null;
  const view = () => new DataView((memory as WebAssembly.Memory).buffer);
  const bytes = () => new Uint8Array((memory as WebAssembly.Memory).buffer);
  const args = io.args.map((a) => encoder.encode(`${a}\0`));
  const env = Object.entries(io.env).map(([k, v]) => encoder.encode(`${k}=${v}\0`));
  let stdinAt = 0;
  const stdout: Uint8Array[] = [];
  let stdoutSize = 0;
  const stderr: Uint8Array[] = [];
  let stderrSize = 0;

  const sizes = (list: Uint8Array[], countPtr: number, sizePtr: number) => {
    view().setUint32(countPtr, list.length, true);
    view().setUint32(sizePtr, list.reduce((n, s) => n + s.length, 0), true);
    return ERRNO.success;
  };
  const fill = (list: Uint8Array[], ptrsPtr: number, bufPtr: number) => {
    let at = bufPtr;
    list.forEach((entry, i) => {
      view().setUint32(ptrsPtr + i * 4, at, true);
      bytes().set(entry, at);
      at += entry.length;
    });
    return ERRNO.success;
  };
  const stdio = (fd: number) => fd >= 0 && fd <= 2;

  const calls: Record<string, (...args: never[]) => number | void> = {
    args_sizes_get: (c: number, s: number) => sizes(args, c, s),
    args_get: (p: number, b: number) => fill(args, p, b),
    environ_sizes_get: (c: number, s: number) => sizes(env, c, s),
    environ_get: (p: number, b: number) => fill(env, p, b),
    fd_write: (fd: number, iovs: number, count: number, writtenPtr: number) => {
      if (fd !== 1 && fd !== 2) return ERRNO.badf;
      let written = 0;
      for (let i = 0; i < count; i++) {
        const ptr = view().getUint32(iovs + i * 8, true);
        const len = view().getUint32(iovs + i * 8 + 4, true);
        const chunk = bytes().slice(ptr, ptr + len);
        written += len;
        if (fd === 1) {
          stdoutSize += len;
          if (stdoutSize > io.stdoutLimit) throw new OutputTooLarge('response body over the limit');
          stdout.push(chunk);
        } else if (stderrSize < STDERR_KEEP_BYTES) {
          stderrSize += len;
          stderr.push(chunk);
        }
      }
      view().setUint32(writtenPtr, written, true);
      return ERRNO.success;
    },
    fd_read: (fd: number, iovs: number, count: number, readPtr: number) => {
      if (fd !== 0) return ERRNO.badf;
      let read = 0;
      for (let i = 0; i < count && stdinAt < io.stdin.length; i++) {
        const ptr = view().getUint32(iovs + i * 8, true);
        const len = view().getUint32(iovs + i * 8 + 4, true);
        const part = io.stdin.subarray(stdinAt, stdinAt + len);
        bytes().set(part, ptr);
        stdinAt += part.length;
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

  const imports: WasiSession['imports'] = {};
  for (const name of importNames) imports[name] = calls[name] ?? (() => ERRNO.nosys);
  return {
    imports,
    bind(m) {
      memory = m;
    },
    stdout: () => (stdout.length === 1 ? stdout[0] : Buffer.concat(stdout)),
    stderr: () => Buffer.concat(stderr).toString('utf8'),
  };
}
