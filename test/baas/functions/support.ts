import { readFileSync } from 'node:fs';
import wabt from 'wabt';
import { signManagementToken } from '../../../src/auth/management.js';
import { sleep, type TestServer } from '../../support/server.js';

let wabtModule: Awaited<ReturnType<typeof wabt>> | null = null;

/** WebAssembly text compiled to a binary module with wabt. */
export async function wat(source: string): Promise<Uint8Array> {
  wabtModule ??= await wabt();
  const parsed = wabtModule.parseWat('fn.wat', source);
  try {
    return parsed.toBinary({}).buffer;
  } finally {
    parsed.destroy();
  }
}

export const ECHO_WAT = readFileSync(new URL('../../../examples/functions/echo-wasi/echo.wat', import.meta.url), 'utf8');

/** A WAGI module whose `_start` writes `output` to stdout (and may run `extra` instructions first). */
export function cgiWat(output: string, extra = ''): string {
  const bytes = Buffer.from(output, 'utf8');
  const data = [...bytes].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');
  return `(module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
    (memory (export "memory") 1)
    (data (i32.const 64) "${data}")
    (func (export "_start")
      ${extra}
      (i32.store (i32.const 0) (i32.const 64))
      (i32.store (i32.const 4) (i32.const ${bytes.length}))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`;
}

/** The management API of a test server. */
export class FunctionsAdmin {
  constructor(
    private readonly t: TestServer,
    readonly tenant = 'realtime-dev',
  ) {}

  async token(): Promise<string> {
    return signManagementToken(this.t.managementSecret);
  }

  async request(method: string, path: string, body?: string | Uint8Array, headers: Record<string, string> = {}, token?: string | null): Promise<Response> {
    const auth: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token ?? (await this.token())}` };
    return fetch(`${this.t.url}/api/tenants/${this.tenant}${path}`, { method, body: body as never, headers: { ...auth, ...headers } });
  }

  async deploy(name: string, code: Uint8Array | string, type: 'application/wasm' | 'application/javascript' | 'application/typescript', query = ''): Promise<{ name: string; version: number; verify_jwt: boolean }> {
    const res = await this.request('PUT', `/functions/${name}${query}`, code, { 'content-type': type });
    if (res.status !== 200 && res.status !== 201) throw new Error(`deploy ${name}: ${res.status} ${await res.text()}`);
    return (await res.json()) as { name: string; version: number; verify_jwt: boolean };
  }
}

/** Reads until `done` holds or `ms` passes, then returns the last value read (the caller's assertion says what failed). */
export async function waitUntil<T>(read: () => Promise<T> | T, done: (value: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(100);
  }
}
