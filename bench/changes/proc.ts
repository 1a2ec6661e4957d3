import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Reply } from '../broadcast/common.js';

/**
 * A forked bench child (Performer, the LISTEN/NOTIFY forwarder) speaking the request/reply IPC of
 * bench/broadcast/common.ts (`serveRequests` / `serveServerRequests`). The broadcast and db-broadcast benches keep
 * their equivalent class inside their run.ts scripts, which cannot be imported without running them.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');

export class ChildProc {
  readonly child: ChildProcess;
  readonly ready: Promise<Record<string, unknown>>;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  exited = false;

  constructor(
    readonly name: string,
    file: string,
    env: Record<string, string>,
    execArgv: string[] = [],
    readyTimeoutMs = 90_000,
  ) {
    this.child = fork(path.join(here, file), [], {
      cwd: repoRoot,
      execArgv: ['--import', 'tsx', ...execArgv],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.once('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${code ?? signal})`));
      this.pending.clear();
    });
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} not ready within ${readyTimeoutMs / 1000} s`)), readyTimeoutMs);
      this.child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code}) before it was ready`));
      });
      this.child.on('message', (raw) => {
        const msg = raw as Record<string, unknown>;
        if (msg.type === 'ready') {
          clearTimeout(timer);
          resolve(msg);
          return;
        }
        if (typeof msg.id !== 'number') return;
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        const reply = msg as unknown as Reply;
        if (reply.ok) p?.resolve(reply);
        else p?.reject(new Error(`${name}: ${reply.error}`));
      });
    });
    this.ready.catch(() => undefined);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  call(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<Reply> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.child.send({ id, cmd, ...args });
    });
  }

  /** SIGSTOP / SIGCONT: freezes the child (a backlog builds up in Postgres) and lets it go again. */
  freeze(on: boolean): void {
    if (!this.exited) this.child.kill(on ? 'SIGSTOP' : 'SIGCONT');
  }

  /** Asks the child to stop; kills it (this child only, by its pid) if it has not exited within 10 s. */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.freeze(false);
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.call('stop', {}, 10_000).catch(() => undefined);
    const timer = setTimeout(() => this.kill(), 5000);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}
