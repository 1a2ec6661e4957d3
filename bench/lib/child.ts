import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { repoRoot } from './paths.js';

/**
 * A bench process forked from the orchestrator (a server, a load generator, a forwarder), run through tsx, speaking
 * the request/reply IPC of ./serve.ts: `call(cmd)` sends `{ id, cmd, ...args }` and settles on `{ id, ok, ... }`.
 * Anything else the child sends is an event: `{ type: 'ready', ... }` settles `ready`; listeners of `on(kind)`
 * hear the rest (by `type` or `event`).
 */

/** A child's answer to a request. */
export interface Reply {
  id: number;
  ok: boolean;
  error?: string;
  [k: string]: unknown;
}

export interface ChildOptions {
  env?: Record<string, string>;
  /** Node flags besides `--import tsx`. */
  execArgv?: string[];
  readyTimeoutMs?: number;
  /**
   * Run as plain JavaScript, as `node dist/main.js` runs, not through tsx: tsx's loader runs in a thread of its own
   * (Node 20 module hooks) with its own V8 heap, tens of MB of RSS that grow and shrink on their own schedule and
   * CPU of its own, which would blur a server's figures. The file is bundled once per run (esbuild, its bench
   * imports inlined, packages left to node_modules) into bench/.tmp/.
   */
  plain?: boolean;
}

const bundles = new Map<string, string>();

function bundled(file: string): string {
  let out = bundles.get(file);
  if (!out) {
    out = path.join(repoRoot, 'bench', '.tmp', path.relative(path.join(repoRoot, 'bench'), file).replace(/\.ts$/, '.mjs'));
    buildSync({ entryPoints: [file], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error' });
    bundles.set(file, out);
  }
  return out;
}

let nextId = 1;

export class Child {
  readonly child: ChildProcess;
  readonly ready: Promise<Record<string, unknown>>;
  exited = false;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, ((msg: Record<string, unknown>) => void)[]>();

  /** `file`: the child's script, absolute or relative to the repository root. */
  constructor(
    readonly name: string,
    file: string,
    o: ChildOptions = {},
  ) {
    const script = path.resolve(repoRoot, file);
    this.child = fork(o.plain ? bundled(script) : script, [], {
      cwd: repoRoot,
      execArgv: [...(o.plain ? [] : ['--import', 'tsx']), ...(o.execArgv ?? [])],
      env: { ...process.env, BENCH_REPO_ROOT: repoRoot, ...o.env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const readyTimeoutMs = o.readyTimeoutMs ?? 90_000;
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} not ready within ${readyTimeoutMs / 1000} s`)), readyTimeoutMs);
      this.on('ready', (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
      this.child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code}) before it was ready`));
      });
    });
    this.ready.catch(() => undefined);
    this.child.on('message', (raw) => {
      const msg = raw as Record<string, unknown>;
      if (typeof msg.id === 'number') {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        const reply = msg as unknown as Reply;
        if (reply.ok) p?.resolve(reply);
        else p?.reject(new Error(`${name}: ${reply.error}`));
        return;
      }
      for (const l of this.listeners.get(String(msg.type ?? msg.event ?? '')) ?? []) l(msg);
    });
    this.child.once('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${code ?? signal})`));
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Listens to the child's events of one kind; returns the function that stops listening. */
  on(kind: string, fn: (msg: Record<string, unknown>) => void): () => void {
    this.listeners.set(kind, [...(this.listeners.get(kind) ?? []), fn]);
    return () => this.listeners.set(kind, (this.listeners.get(kind) ?? []).filter((f) => f !== fn));
  }

  call(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<Reply> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.child.send({ id, cmd, ...args });
    });
  }

  /** SIGSTOP / SIGCONT: freezes the child (a backlog builds up before it) and lets it go again. */
  freeze(on: boolean): void {
    if (!this.exited) this.child.kill(on ? 'SIGSTOP' : 'SIGCONT');
  }

  /** Asks the child to stop; kills it (this child only, by its pid) if it has not exited within `graceMs`. */
  async stop(graceMs = 8000): Promise<void> {
    if (this.exited) return;
    this.freeze(false);
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.call('stop', {}, graceMs).catch(() => undefined);
    const timer = setTimeout(() => this.kill(), graceMs);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}
