import { createHash } from 'node:crypto';
import { chown, lstat, mkdir, readlink, realpath, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { blockedDirectory, ensureRootOwnedDir, type BlockedDirectory, type OsUser } from './os-user.js';

/**
 * Where an embedded cluster lives. Normally in the data directory (`<dataDir>/cluster`, with `credentials.json`
 * beside it). Running as root, Postgres runs as the OS user postgres; when that user cannot enter a directory above
 * the data directory (a checkout in root's home or in a `mktemp -d` directory), the cluster is kept in
 * `<systemDir>/clusters/<hash of the data directory's path>` instead, and `<dataDir>/cluster` is a symbolic link to
 * it. That keeps the data across restarts without opening the user's private directories to another account.
 */

export const CLUSTER_SUBDIR = 'cluster';

export interface ClusterHome {
  /** Holds `credentials.json` and the cluster directory. */
  dir: string;
  /** Set when the cluster is kept outside the data directory. */
  relocated?: {
    /** The link in the data directory that leads to it. */
    link: string;
    /** The directory that keeps the postgres user out of the data directory (null: no longer, the link stays). */
    blockedBy: BlockedDirectory | null;
  };
}

export async function clusterHome(dataDir: string, runAs: OsUser | null, systemDir: string): Promise<ClusterHome> {
  await mkdir(dataDir, { recursive: true });
  if (!runAs) return { dir: dataDir };
  const link = path.join(dataDir, CLUSTER_SUBDIR);
  const present = await lstat(link).catch(() => null);
  const blockedBy = await blockedDirectory(path.dirname(dataDir), runAs);
  if (present?.isSymbolicLink()) {
    // Kept where an earlier start put it; the directory must still be one only root controls.
    const home = await ensureRootOwnedDir(path.dirname(path.resolve(dataDir, await readlink(link))));
    return { dir: home, relocated: { link, blockedBy } };
  }
  if (!blockedBy) {
    // The data directory is ours: its owner becomes the postgres user, who creates the cluster in it.
    await chown(dataDir, runAs.uid, runAs.gid);
    return { dir: dataDir };
  }
  if (present) {
    throw new Error(
      `${link} holds a cluster the OS user postgres can no longer reach: it cannot enter ${blockedBy.dir} ` +
        `(mode ${blockedBy.mode.toString(8)}); move the data directory under a path that user can enter, or chmod o+x ${blockedBy.dir}`,
    );
  }
  const key = createHash('sha256').update(await realpath(dataDir)).digest('hex').slice(0, 16);
  const home = await ensureRootOwnedDir(path.join(systemDir, 'clusters', key));
  // For whoever looks into the system directory: which data directory this cluster belongs to.
  await writeFile(path.join(home, 'data-dir'), `${path.resolve(dataDir)}\n`);
  await symlink(path.join(home, CLUSTER_SUBDIR), link);
  return { dir: home, relocated: { link, blockedBy } };
}
