import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { OsUser } from './os-user.js';

/** Process housekeeping of an embedded Postgres: running initdb and the postmaster, stale postmasters, orphans. */

export interface PostgresCommand {
  /** Directory holding initdb and postgres. */
  binDir: string;
  args: string[];
  /** The OS user to run as (we are root), or null to run as ourselves. */
  runAs: OsUser | null;
  /** A directory the command's user may enter. */
  cwd: string;
  onLog: (line: string) => void;
}

const READY = 'database system is ready to accept connections';

/** Runs initdb; rejects with the end of its error output when it fails. */
export async function runInitdb(command: PostgresCommand): Promise<void> {
  const child = spawnPostgresBinary('initdb', command);
  const stderr: string[] = [];
  forEachLine(child.stdout, command.onLog);
  forEachLine(child.stderr, (line) => {
    stderr.push(line);
    if (stderr.length > 20) stderr.shift();
    command.onLog(line);
  });
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  if (code !== 0) throw new Error(`initdb exited with ${code ?? signal}: ${stderr.join('\n')}`);
}

/** Starts the postmaster and resolves once it accepts connections; a start that fails or times out kills it. */
export function startPostmaster(command: PostgresCommand, timeoutMs: number): Promise<ChildProcess> {
  const child = spawnPostgresBinary('postgres', command);
  forEachLine(child.stdout, command.onLog);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void killChild(child).finally(() => reject(err));
    };
    const timer = setTimeout(() => fail(new Error(`not ready after ${timeoutMs} ms`)), timeoutMs);
    child.once('error', fail);
    // 'close' rather than 'exit': the log lines saying why have been read by then.
    child.once('close', (code, signal) => fail(new Error(`postgres exited during startup (${code ?? signal})`)));
    forEachLine(child.stderr, (line) => {
      command.onLog(line);
      if (settled || !line.includes(READY)) return;
      settled = true;
      clearTimeout(timer);
      resolve(child);
    });
  });
}

function spawnPostgresBinary(name: 'initdb' | 'postgres', command: PostgresCommand): ChildProcess {
  return spawn(path.join(command.binDir, name), command.args, {
    cwd: command.cwd,
    // English messages: readiness is recognised by its log line.
    env: { ...process.env, LC_MESSAGES: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(command.runAs ? { uid: command.runAs.uid, gid: command.runAs.gid } : {}),
  });
}

function forEachLine(stream: Readable | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (pending + chunk).split(/\r?\n/);
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) onLine(line);
  });
  stream.on('end', () => {
    if (pending.trim()) onLine(pending);
    pending = '';
  });
}

/**
 * A postmaster.pid left by a killed run: when its process is dead Postgres copes by itself (and it must keep the
 * file to detect backends still attached to the old shared memory). We only intervene when the pid is alive:
 * reused by an unrelated process → drop the file; an orphaned postmaster of this very cluster → shut it down.
 */
export async function clearStalePostmaster(clusterDir: string, onLog: (line: string) => void): Promise<void> {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  let content: string;
  try {
    content = await readFile(pidFile, 'utf8');
  } catch {
    return;
  }
  const pid = Number.parseInt(content.split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  if (cmdline === null) {
    throw new Error(`${clusterDir} is locked by live process ${pid} (postmaster.pid); stop it first`);
  }
  const isOurPostmaster = cmdline.split('\0').includes(clusterDir);
  if (!isOurPostmaster) {
    onLog(`embedded postgres: removing stale postmaster.pid (pid ${pid} is an unrelated process)`);
    await unlink(pidFile).catch(() => undefined);
    return;
  }
  if (!(await isOrphan(pid))) {
    throw new Error(`Postgres (pid ${pid}) is already running on ${clusterDir}; refusing to start a second server`);
  }
  onLog(`embedded postgres: shutting down orphaned postmaster ${pid} left by a previous run`);
  await terminatePid(pid);
}

async function isOrphan(pid: number): Promise<boolean> {
  const statText = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the parenthesised command name: state, ppid, ...
  const ppid = Number.parseInt(statText.slice(statText.lastIndexOf(')') + 2).split(' ')[1] ?? '', 10);
  if (!Number.isInteger(ppid) || ppid <= 1) return true;
  const parentComm = (await readFile(`/proc/${ppid}/comm`, 'utf8').catch(() => '')).trim();
  // Our servers are children of a node process; anything else means the owner died and the orphan was re-parented.
  return !/^(node|MainThread|tsx|vitest)/.test(parentComm);
}

async function terminatePid(pid: number): Promise<void> {
  const steps: Array<[NodeJS.Signals, number]> = [
    ['SIGINT', 10_000],
    ['SIGQUIT', 5_000],
    ['SIGKILL', 5_000],
  ];
  for (const [signal, waitMs] of steps) {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      if (!isAlive(pid)) return;
      await sleep(100);
    }
  }
  throw new Error(`could not stop orphaned postmaster ${pid}`);
}

export async function killChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || hasExited(child)) return;
  const exited = once(child, 'exit');
  // SIGQUIT makes the postmaster take its backends down with it.
  child.kill('SIGQUIT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
