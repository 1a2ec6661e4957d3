import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/raw-client.js';
import { waitForEvent } from '../support/server.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
let child: ChildProcess | null = null;
let dataDir = '';

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

function postgresProcessesFor(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', dir], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

describe('npm start with no DATABASE_URL', () => {
  it('boots an embedded Postgres, serves supabase-js, and stops everything on SIGTERM', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-start-'));
    // As root, Postgres runs as the `postgres` OS user, which must be able to reach the data directory.
    await chmod(dataDir, 0o755);
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', HOST: '127.0.0.1', PERFORMER_DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
    delete env.DATABASE_URL;
    const proc = spawn('npm', ['start', '--silent'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const banner = await waitForEvent<string>((cb) => {
      const check = () => /Database: .+\n/.test(out) && cb(out);
      proc.stdout?.on('data', check);
      proc.on('exit', () => cb(`exited early:\n${out}`));
    }, 150_000, 'the start banner');
    const url = /API URL: (\S+)/.exec(banner)?.[1];
    const anonKey = /anon key: (\S+)/.exec(banner)?.[1];
    expect(url, banner).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(banner).toContain(`embedded Postgres, data in ${path.join(dataDir, 'postgres')}`);
    expect(postgresProcessesFor(dataDir).length).toBeGreaterThan(0);

    // The management API: the banner's token opens it, the public anon key (same default secret as ever) does not.
    const managementToken = /management token: (\S+)/.exec(banner)?.[1];
    expect(banner).toContain(`valid 24 h; secret: ${path.join(dataDir, 'api-jwt-secret.key')}`);
    const tenants = (token: string) => fetch(`${url}/api/tenants`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    expect(await tenants(managementToken as string)).toBe(200);
    expect(await tenants(anonKey as string)).toBe(403);
    expect(await tenants(/service_role key: (\S+)/.exec(banner)?.[1] as string)).toBe(403);

    const client = createClient(url as string, anonKey as string, {
      realtime: { transport: WebSocket as never },
      auth: { persistSession: false },
    });
    const channel = client.channel('start', { config: { broadcast: { self: true } } });
    const received = waitForEvent<unknown>((cb) => channel.on('broadcast', { event: 'hi' }, (m) => cb(m.payload)), 10_000, 'self broadcast');
    await waitForEvent<string>((cb) => channel.subscribe((s) => s === 'SUBSCRIBED' && cb(s)), 10_000, 'SUBSCRIBED');
    await channel.send({ type: 'broadcast', event: 'hi', payload: { from: 'npm start' } });
    expect(await received).toEqual({ from: 'npm start' });
    client.realtime.disconnect();

    // A client still connected at shutdown is told the server is going away (1001).
    const stillConnected = await RawClient.connect(`${(url as string).replace('http', 'ws')}/socket/websocket?apikey=${anonKey}&vsn=2.0.0`);
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    const sentAt = Date.now();
    proc.kill('SIGTERM');
    expect(await stillConnected.closed).toBe(1001);
    expect(await exited).toBe(0);
    expect(Date.now() - sentAt).toBeLessThan(10_000);
    expect(postgresProcessesFor(dataDir)).toEqual([]);
  }, 180_000);
});
