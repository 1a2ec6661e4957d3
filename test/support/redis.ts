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
  private probe: Redis | null = null;
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

  /** A client of this server for the test's own checks (closed with the server). */
  client(): Redis {
    if (this.probe === null || this.probe.status === 'end') {
      this.probe = new Redis(this.url, { maxRetriesPerRequest: 1 });
      this.probe.on('error', () => undefined);
    }
    return this.probe;
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
    this.probe?.disconnect();
    await this.halt();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * A Redis Cluster of the test's own: three primaries on free ports (cluster-enabled, no replicas), slots spread by
 * `redis-cli --cluster create`. Resolves once every slot is served.
 */
export class PrivateRedisCluster {
  private constructor(
    readonly ports: number[],
    private readonly procs: ChildProcess[],
    private readonly dir: string,
  ) {}

  get nodes(): { host: string; port: number }[] {
    return this.ports.map((port) => ({ host: '127.0.0.1', port }));
  }

  static async start(): Promise<PrivateRedisCluster> {
    const dir = await mkdtemp(path.join(tmpdir(), 'performer-redis-cluster-'));
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) ports.push(await freePort());
    const procs = ports.map((port) =>
      spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir],
        { stdio: 'ignore' },
      ),
    );
    const cluster = new PrivateRedisCluster(ports, procs, dir);
    for (const port of ports) {
      const probe = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
      probe.on('error', () => undefined);
      await probe.connect().catch(() => undefined);
      await probe.ping();
      probe.disconnect();
    }
    const create = spawn('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
    const code = await new Promise<number | null>((resolve) => create.once('exit', resolve));
    if (code !== 0) {
      await cluster.stop();
      throw new Error(`redis-cli --cluster create failed (${code})`);
    }
    const check = new Redis(`redis://127.0.0.1:${ports[0]}`);
    try {
      for (const deadline = Date.now() + 20_000; ; ) {
        const info = (await check.cluster('INFO')) as string;
        if (info.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error('Redis Cluster did not come up');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      check.disconnect();
    }
    return cluster;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.procs.map(async (proc) => {
        if (proc.exitCode !== null) return;
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGKILL');
        await exited;
      }),
    );
    await rm(this.dir, { recursive: true, force: true });
  }
}
