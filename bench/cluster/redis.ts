import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sleep } from '../lib/time.js';

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** One Redis command over a fresh connection (RESP), answered as text: enough for INFO and PING. */
export function redisCommand(port: number, ...words: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let out = '';
    socket.on('data', (d) => {
      out += d.toString('latin1');
      // A simple string, an error, or a bulk string whose length is known.
      const bulk = /^\$(\d+)\r\n/.exec(out);
      if ((out.startsWith('+') || out.startsWith('-')) && out.endsWith('\r\n')) done(out.slice(1, -2));
      else if (bulk && out.length >= bulk[0].length + Number(bulk[1]) + 2) done(out.slice(bulk[0].length, bulk[0].length + Number(bulk[1])));
    });
    socket.on('error', reject);
    const done = (text: string) => {
      socket.destroy();
      resolve(text);
    };
    socket.write(`*${words.length}\r\n${words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join('')}`);
  });
}

/** The bench's own redis-server (no persistence) on a free port; its CPU is read from /proc like the servers'. */
export class BenchRedis {
  private constructor(
    readonly port: number,
    readonly proc: ChildProcess,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  static async start(): Promise<BenchRedis> {
    const port = await freePort();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'performer-bench-redis-'));
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    const redis = new BenchRedis(port, proc, dir);
    for (const deadline = Date.now() + 10_000; ; ) {
      if ((await redisCommand(port, 'PING').catch(() => '')) === 'PONG') return redis;
      if (Date.now() > deadline) throw new Error('redis-server did not start');
      await sleep(50);
    }
  }

  /** Redis' own count of messages it handed to subscribers (INFO stats has none per channel; see the metric). */
  async info(section: string): Promise<Record<string, string>> {
    const text = await redisCommand(this.port, 'INFO', section);
    return Object.fromEntries(text.split('\r\n').filter((l) => l.includes(':')).map((l) => l.split(':', 2) as [string, string]));
  }

  stop(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
