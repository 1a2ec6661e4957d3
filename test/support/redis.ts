import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

/** The machine's shared Redis (tests keep apart by key prefix). */
export const SHARED_REDIS_URL = process.env.PERFORMER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix no other test run uses: several vitest workers and helpers share the one Redis. */
export function uniquePrefix(label: string): string {
  return `test:${label}:${process.pid}:${Math.random().toString(36).slice(2, 10)}:`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A redis-server of the test's own on a free port, which the test may stop and start again (on the same port):
 * persistence off, so a restart comes back empty, as a Redis that lost its memory does.
 */
export class PrivateRedis {
  private proc: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<PrivateRedis> {
    const dir = await mkdtemp(path.join(tmpdir(), 'performer-redis-'));
    const redis = new PrivateRedis(await freePort(), dir);
    await redis.resume();
    return redis;
  }

  /** Starts the server again on its port; resolves once it answers PING. */
  async resume(): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir], {
      stdio: 'ignore',
    });
    this.proc = proc;
    const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
    probe.on('error', () => undefined);
    try {
      await probe.connect().catch(() => undefined);
      await probe.ping();
    } finally {
      probe.disconnect();
    }
  }

  /** Stops the server (SIGKILL: every client sees its connection drop at once). */
  async halt(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.halt();
    await rm(this.dir, { recursive: true, force: true });
  }
}
