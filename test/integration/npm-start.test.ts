import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { privateCheckout, type PrivateCheckout } from '../support/private-checkout.js';
import { RawClient } from '../support/raw-client.js';
import { waitForEvent } from '../support/server.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const children: ChildProcess[] = [];
let dataDir = '';
let checkout: PrivateCheckout | null = null;

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  await checkout?.remove();
});

function postgresProcessesFor(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', dir], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

interface Started {
  proc: ChildProcess;
  banner: string;
  url: string;
  anonKey: string;
}

/** `npm start` in `cwd` without DATABASE_URL, up to its banner. */
async function npmStart(cwd: string, extraEnv: NodeJS.ProcessEnv): Promise<Started> {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...extraEnv };
  delete env.DATABASE_URL;
  const proc = spawn('npm', ['start', '--silent'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const banner = await waitForEvent<string>((cb) => {
    const check = () => /Database: .+\n/.test(out) && cb(out);
    proc.stdout?.on('data', check);
    proc.on('exit', () => cb(`exited early:\n${out}`));
  }, 150_000, 'the start banner');
  const url = /API URL: (\S+)/.exec(banner)?.[1] ?? '';
  const anonKey = /anon key: (\S+)/.exec(banner)?.[1] ?? '';
  expect(url, banner).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  return { proc, banner, url, anonKey };
}

/** supabase-js joins a channel and gets its own broadcast back. */
async function broadcastRoundTrip({ url, anonKey }: Started): Promise<void> {
  const client = createClient(url, anonKey, { realtime: { transport: WebSocket as never }, auth: { persistSession: false } });
  const channel = client.channel('start', { config: { broadcast: { self: true } } });
  const received = waitForEvent<unknown>((cb) => channel.on('broadcast', { event: 'hi' }, (m) => cb(m.payload)), 10_000, 'self broadcast');
  await waitForEvent<string>((cb) => channel.subscribe((s) => s === 'SUBSCRIBED' && cb(s)), 10_000, 'SUBSCRIBED');
  await channel.send({ type: 'broadcast', event: 'hi', payload: { from: 'npm start' } });
  expect(await received).toEqual({ from: 'npm start' });
  client.realtime.disconnect();
}

/** SIGTERM: a client still connected is told the server is going away (1001), and the process exits 0 in time. */
async function stopWithSigterm({ proc, url, anonKey }: Started): Promise<void> {
  const stillConnected = await RawClient.connect(`${url.replace('http', 'ws')}/socket/websocket?apikey=${anonKey}&vsn=2.0.0`);
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const sentAt = Date.now();
  proc.kill('SIGTERM');
  expect(await stillConnected.closed).toBe(1001);
  expect(await exited).toBe(0);
  expect(Date.now() - sentAt).toBeLessThan(10_000);
}

describe('npm start with no DATABASE_URL', () => {
  it('boots an embedded Postgres, serves supabase-js, and stops everything on SIGTERM', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-start-'));
    // The data directory's parent must be enterable by the `postgres` OS user for the cluster to live in it.
    await chmod(dataDir, 0o755);
    const started = await npmStart(repoRoot, { PERFORMER_DATA_DIR: dataDir });
    expect(started.banner).toContain(`embedded Postgres, data in ${path.join(dataDir, 'postgres')}\n`);
    expect(postgresProcessesFor(dataDir).length).toBeGreaterThan(0);

    // The management API: the banner's token opens it, the public anon key (same default secret as ever) does not.
    const managementToken = /management token: (\S+)/.exec(started.banner)?.[1];
    expect(started.banner).toContain(`valid 24 h; secret: ${path.join(dataDir, 'api-jwt-secret.key')}`);
    const tenants = (token: string) => fetch(`${started.url}/api/tenants`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    expect(await tenants(managementToken as string)).toBe(200);
    expect(await tenants(started.anonKey)).toBe(403);
    expect(await tenants(/service_role key: (\S+)/.exec(started.banner)?.[1] as string)).toBe(403);

    await broadcastRoundTrip(started);
    await stopWithSigterm(started);
    expect(postgresProcessesFor(dataDir)).toEqual([]);
  }, 180_000);

  it('works as root from a checkout in a directory only root may enter (needs root, as CI runs)', async () => {
    expect(process.getuid?.(), 'this test must run as root (CI does): Postgres then runs as the OS user postgres').toBe(0);
    checkout = await privateCheckout();
    const systemDir = await realpath(checkout.systemDir);
    // The defaults: data in the checkout's .performer; the system directory is a test one instead of /var/lib.
    const started = await npmStart(checkout.checkout, { PERFORMER_SYSTEM_DIR: systemDir, PERFORMER_DATA_DIR: '' });
    const home = new RegExp(`embedded Postgres, data in ${systemDir}/clusters/[0-9a-f]{16}\\n`);
    expect(started.banner).toMatch(home);
    expect(started.banner).toContain(`cannot enter ${checkout.privateDir} (mode 700); ${checkout.checkout}/.performer/postgres/cluster links to it`);
    expect(started.banner).toMatch(new RegExp(`\\(Postgres runs from ${systemDir}/postgres/`));
    expect(postgresProcessesFor(systemDir).length).toBeGreaterThan(0);
    await broadcastRoundTrip(started);
    await stopWithSigterm(started);
    expect(postgresProcessesFor(systemDir)).toEqual([]);
  }, 240_000);
});
