/**
 * The built server as a person meets it: `node dist/main.js` (what `npm start` and the image run) in a child
 * process, with no DATABASE_URL, HOST or JWT_SECRET, as on a first run.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { waitForEvent } from '../support/server.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string };
const scratch: string[] = [];
const children: ChildProcess[] = [];

interface Run {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** The environment of someone who set nothing, plus `extra`. */
function firstRunEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info', ...extra };
  for (const name of ['DATABASE_URL', 'HOST', 'JWT_SECRET', 'API_JWT_SECRET', 'PORT']) if (!(name in extra)) delete env[name];
  return env;
}

/** `node dist/main.js args`, detached so that a signal to its process group reaches it as Ctrl-C does. */
function runMain(args: string[], env: NodeJS.ProcessEnv): Run {
  const proc = spawn(process.execPath, ['dist/main.js', ...args], { cwd: repoRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, output: () => out, exited };
}

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  // As root, Postgres runs as the `postgres` OS user, which must be able to reach the data directory.
  await chmod(dir, 0o755);
  scratch.push(dir);
  return dir;
}

/** Resolves once `pattern` matches the output, or rejects if the process exits first. */
function outputMatching(run: Run, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  return waitForEvent<RegExpExecArray>((cb) => {
    const check = () => {
      const m = pattern.exec(run.output());
      if (m) cb(m);
    };
    run.proc.stdout?.on('data', check);
    run.proc.stderr?.on('data', check);
    run.exited.then(() => check());
    check();
  }, 150_000, what);
}

beforeAll(() => {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: 'inherit' });
}, 120_000);

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});

describe('--help and --version', () => {
  it.each([['--help'], ['-h']])('%s prints the usage and exits 0 without starting anything', async (flag) => {
    const dataDir = path.join(await tempDir('performer-help-'), 'data');
    const run = runMain([flag], firstRunEnv({ PORT: '0', PERFORMER_DATA_DIR: dataDir }));
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('Usage: node dist/main.js [--help | --version]');
    expect(run.output()).toContain('DATABASE_URL');
    expect(run.output()).not.toContain('running');
    expect(existsSync(dataDir), 'no embedded Postgres data directory').toBe(false);
  });

  it.each([['--version'], ['-v']])('%s prints the name and version and exits 0 without starting anything', async (flag) => {
    const dataDir = path.join(await tempDir('performer-version-'), 'data');
    const run = runMain([flag], firstRunEnv({ PORT: '0', PERFORMER_DATA_DIR: dataDir }));
    expect(await run.exited).toBe(0);
    expect(run.output()).toBe(`${pkg.name} ${pkg.version}\n`);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('refuses an unknown argument with exit 1 and the usage, without starting anything', async () => {
    const dataDir = path.join(await tempDir('performer-badarg-'), 'data');
    const run = runMain(['--prot', '4001'], firstRunEnv({ PORT: '0', PERFORMER_DATA_DIR: dataDir }));
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain('Unknown arguments: --prot 4001');
    expect(run.output()).toContain('Usage:');
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe('a first run with nothing configured', () => {
  let first: Run;
  let port: number;
  let banner: string;

  beforeAll(async () => {
    port = await findFreePort();
    first = runMain([], firstRunEnv({ PORT: String(port), PERFORMER_DATA_DIR: await tempDir('performer-first-') }));
    banner = (await outputMatching(first, /Performer [\s\S]*? is running\.[\s\S]*?\n\n(?:[^\n]+\n\n)?/, 'the start banner'))[0];
  }, 180_000);

  it('listens on loopback only, says so, and warns once that the JWT secret is the public demo one', async () => {
    expect(banner).toMatch(new RegExp(`API URL: http://127\\.0\\.0\\.1:${port}\\n`));
    expect(banner).toContain('Listening on 127.0.0.1 only, since the demo JWT_SECRET is in use');
    await outputMatching(first, /JWT_SECRET is the public demo secret/, 'the weak secret warning');
    expect(first.output().match(/JWT_SECRET is the public demo secret/g)).toHaveLength(1);
  });

  it('prints a database URL that connects to the embedded Postgres', async () => {
    const url = /Database URL: (\S+)/.exec(banner)?.[1];
    expect(url, banner).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/postgres$/);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ wal_level: string }>('SHOW wal_level');
      expect(rows[0].wal_level).toBe('logical');
    } finally {
      await client.end();
    }
  });

  it('answers GET / with its name, version and links', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { name: string; version: string; links: Record<string, string> };
    expect(body).toMatchObject({ name: pkg.name, version: pkg.version });
    expect(body.links).toMatchObject({ websocket: '/realtime/v1/websocket', healthcheck: '/healthcheck' });
    for (const link of Object.values(body.links)) expect(link).toMatch(/^\//);
    expect((await fetch(`http://127.0.0.1:${port}${body.links.healthcheck}`)).status).toBe(200);
  });

  it('makes a second instance on the same port exit 1 with a clear message', async () => {
    const url = /Database URL: (\S+)/.exec(banner)?.[1] as string;
    const second = runMain([], firstRunEnv({ PORT: String(port), DATABASE_URL: url, PERFORMER_DATA_DIR: await tempDir('performer-second-') }));
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(
      `Performer failed to start: port ${port} is already in use on 127.0.0.1 (another Performer, or another program, listens there); stop it or choose another PORT`,
    );
    expect(second.output()).not.toContain('is running');
    expect((await fetch(`http://127.0.0.1:${port}/healthcheck`)).status).toBe(200);
  });

  it('stops on Ctrl-C (SIGINT to its process group, Postgres included) without dumping pg clients into the log', async () => {
    // Leave an idle client in the tenant's pool, as a server that has served requests has.
    await fetch(`http://127.0.0.1:${port}/api/ping`);
    process.kill(-(first.proc.pid as number), 'SIGINT');
    expect(await first.exited).toBe(0);
    expect(first.output()).toContain('"signal":"SIGINT","msg":"shutting down"');
    for (const field of ['secretKey', 'processID', 'cancel', '"client"', 'connectionParameters']) {
      expect(first.output(), field).not.toContain(field);
    }
  });
});
