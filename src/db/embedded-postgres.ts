import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chown, mkdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_SYSTEM_DIR } from '../config/index.js';
import { CLUSTER_SUBDIR, clusterHome, type ClusterHome } from './cluster-home.js';
import { ensurePostgresOsUser, isRoot, type OsUser } from './os-user.js';
import { postgresBinaries, type PostgresBinaries } from './postgres-binaries.js';
import { clearStalePostmaster, hasExited, runInitdb, startPostmaster, type PostgresCommand } from './postgres-process.js';
import { exists } from './fs-exists.js';

const execFileAsync = promisify(execFile);

export interface EmbeddedPostgresOptions {
  /**
   * Directory owned by us: holds `cluster/` (PGDATA) and `credentials.json`; running as root from a directory the
   * OS user postgres cannot enter, `cluster` is a link to where both are kept instead (see cluster-home.ts).
   */
  dataDir: string;
  /**
   * Running as root from a directory the OS user postgres cannot enter: where the Postgres binaries are copied and
   * the cluster kept (see cluster-home.ts). Only root may be able to write it. Default DEFAULT_SYSTEM_DIR.
   */
  systemDir?: string;
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
  /** Where the cluster's files are: `<dataDir>/cluster`, or its real place when kept outside the data directory. */
  clusterDir: string;
  /** The directory holding the cluster and its credentials; removing it (stopped) removes the database. */
  home: string;
  /** Why the cluster or the binaries are not where one expects them (root from a private directory); else empty. */
  notices: string[];
  stop(): Promise<void>;
}


interface Credentials {
  user: string;
  password: string;
}

const CREDENTIALS_FILE = 'credentials.json';
/** The port of the last start without a fixed port: the next one reuses it, so the database keeps its address. */
const PORT_FILE = 'port';
const LOG_TAIL_LINES = 60;

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const tail: string[] = [];
  const onLog = (line: string): void => {
    tail.push(line);
    if (tail.length > LOG_TAIL_LINES) tail.shift();
    opts.logger?.(line);
  };

  // Postgres refuses to run as root: it then runs as the OS user `postgres`.
  const runAs = isRoot() ? await ensurePostgresOsUser() : null;
  const systemDir = opts.systemDir ?? DEFAULT_SYSTEM_DIR;
  const home = await clusterHome(path.resolve(opts.dataDir), runAs, systemDir);
  const binaries = await postgresBinaries(runAs, systemDir, onLog);
  const clusterDir = path.join(home.dir, CLUSTER_SUBDIR);
  const notices = describeLocations(home, binaries, clusterDir);
  for (const notice of notices) onLog(`embedded postgres: ${notice}`);
  const command = (args: string[]): PostgresCommand => ({ binDir: binaries.binDir, args, runAs, cwd: home.dir, onLog });

  const credentials = await loadOrCreateCredentials(home.dir);
  if (!(await exists(path.join(clusterDir, 'PG_VERSION')))) {
    await initialiseCluster(home.dir, clusterDir, credentials, opts, command, runAs);
  } else if (runAs && (await stat(clusterDir)).uid !== runAs.uid) {
    await execFileAsync('chown', ['-R', `${runAs.uid}:${runAs.gid}`, clusterDir]);
  }
  await clearStalePostmaster(clusterDir, onLog);

  const fixedPort = opts.port !== undefined;
  const remembered = fixedPort ? null : await readRememberedPort(path.resolve(opts.dataDir));
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await choosePort(attempt === 1 ? remembered : null, onLog));
    try {
      const started = await launch(clusterDir, port, credentials, opts, command, tail);
      if (!fixedPort && port !== remembered) await rememberPort(path.resolve(opts.dataDir), port, onLog);
      return { ...started, clusterDir, home: home.dir, notices };
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

function describeLocations(home: ClusterHome, binaries: PostgresBinaries, clusterDir: string): string[] {
  const notices: string[] = [];
  const why = (blocked: { dir: string; mode: number }) =>
    `the OS user postgres (Postgres does not run as root) cannot enter ${blocked.dir} (mode ${blocked.mode.toString(8)})`;
  if (home.relocated) {
    const reason = home.relocated.blockedBy ? `, because ${why(home.relocated.blockedBy)}` : '';
    notices.push(`the cluster is kept in ${clusterDir}${reason}; ${home.relocated.link} links to it`);
  }
  if (binaries.copiedBecause) notices.push(`Postgres runs from ${path.dirname(binaries.binDir)}, because ${why(binaries.copiedBecause)}`);
  return notices;
}

async function launch(
  clusterDir: string,
  port: number,
  credentials: Credentials,
  opts: EmbeddedPostgresOptions,
  command: (args: string[]) => PostgresCommand,
  tail: string[],
): Promise<Omit<EmbeddedPostgres, 'clusterDir' | 'home' | 'notices'>> {
  const args = ['-D', clusterDir, '-p', String(port), ...serverFlags(opts)];
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  let child;
  try {
    child = await startPostmaster(command(args), timeoutMs);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `embedded Postgres failed to start on 127.0.0.1:${port} (data: ${clusterDir}): ${reason}\n` +
        `--- postgres log tail ---\n${tail.join('\n')}`,
    );
  }

  const postmaster = child;
  const pid = postmaster.pid as number;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (hasExited(postmaster)) return;
      const exited = once(postmaster, 'exit');
      // SIGINT is a fast shutdown; escalate if the server hangs.
      postmaster.kill('SIGINT');
      const quit = setTimeout(() => postmaster.kill('SIGQUIT'), 30_000);
      const kill = setTimeout(() => postmaster.kill('SIGKILL'), 40_000);
      try {
        await exited;
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
  homeDir: string,
  clusterDir: string,
  credentials: Credentials,
  opts: EmbeddedPostgresOptions,
  command: (args: string[]) => PostgresCommand,
  runAs: OsUser | null,
): Promise<void> {
  // initdb into a scratch directory and rename it, so an interrupted init never looks like a cluster.
  const scratch = path.join(homeDir, `${CLUSTER_SUBDIR}.initdb`);
  await rm(scratch, { recursive: true, force: true });
  if (await exists(clusterDir)) {
    throw new Error(`${clusterDir} exists but holds no Postgres cluster (no PG_VERSION); remove it to re-initialise`);
  }
  // Made by us, handed to the user initdb runs as: the home directory itself may stay root's.
  await mkdir(scratch, { mode: 0o700 });
  const passwordFile = path.join(homeDir, `.initdb-password-${randomBytes(6).toString('hex')}`);
  await writeFile(passwordFile, `${credentials.password}\n`, { mode: 0o600 });
  if (runAs) {
    await chown(scratch, runAs.uid, runAs.gid);
    await chown(passwordFile, runAs.uid, runAs.gid);
  }
  try {
    await runInitdb(
      command([
        `--pgdata=${scratch}`,
        '--auth=scram-sha-256',
        `--username=${credentials.user}`,
        `--pwfile=${passwordFile}`,
        '--encoding=UTF8',
        '--locale=C',
        ...(opts.ephemeral ? ['--no-sync'] : []),
      ]),
    );
  } catch (err) {
    await rm(scratch, { recursive: true, force: true });
    throw new Error(`initdb failed for ${clusterDir}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await unlink(passwordFile).catch(() => undefined);
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
