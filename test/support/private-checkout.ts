import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * A copy of this checkout inside a directory only its owner may enter (0700, as `mktemp -d` makes them and as root's
 * home is), for running Performer as root from a private directory. node_modules is hard-linked when it can be:
 * fast, and nothing run from the copy writes into it.
 */

const execFileAsync = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../..');
const COPIED = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'node_modules'];

export interface PrivateCheckout {
  /** The 0700 directory. */
  privateDir: string;
  /** The copy of the checkout inside it. */
  checkout: string;
  /** A world-traversable, root-owned directory for PERFORMER_SYSTEM_DIR (binaries copy and relocated clusters). */
  systemDir: string;
  remove(): Promise<void>;
}

export async function privateCheckout(): Promise<PrivateCheckout> {
  const privateDir = await mkdtemp(path.join(os.tmpdir(), 'performer-private-'));
  const systemDir = await mkdtemp(path.join(os.tmpdir(), 'performer-system-'));
  const remove = async (): Promise<void> => {
    await rm(privateDir, { recursive: true, force: true });
    await rm(systemDir, { recursive: true, force: true });
  };
  try {
    await chmod(privateDir, 0o700);
    await chmod(systemDir, 0o755);
    const checkout = path.join(privateDir, 'performer');
    await mkdir(checkout);
    for (const entry of COPIED) {
      const from = path.join(repoRoot, entry);
      const linked = entry === 'node_modules';
      await execFileAsync('cp', [linked ? '-al' : '-a', from, checkout]).catch(async (err: unknown) => {
        if (!linked) throw err;
        await rm(path.join(checkout, entry), { recursive: true, force: true });
        await execFileAsync('cp', ['-a', from, checkout]); // another file system: no hard links
      });
    }
    if (((await stat(privateDir)).mode & 0o777) !== 0o700) throw new Error(`${privateDir} is not private`);
    return { privateDir, checkout, systemDir, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
