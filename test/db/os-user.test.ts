import { chmod, chown, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockedDirectory, ensureRootOwnedDir } from '../../src/db/os-user.js';

let root: string;
// Nobody owns these directories' files under this uid/gid, so only the "other" bits can let it in.
const stranger = { uid: 4_000_123, gid: 4_000_123 };

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'performer-os-user-'));
  await chmod(root, 0o755);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('blockedDirectory', () => {
  it('is null for a path every directory of which others may enter', async () => {
    const open = path.join(root, 'open', 'bin');
    await mkdir(open, { recursive: true, mode: 0o755 });
    await chmod(open, 0o755);
    expect(await blockedDirectory(open, stranger)).toBeNull();
  });

  it('names the first private directory on the way, with its mode', async () => {
    const closed = path.join(root, 'closed');
    await mkdir(path.join(closed, 'node_modules', 'bin'), { recursive: true, mode: 0o755 });
    await chmod(closed, 0o700);
    expect(await blockedDirectory(path.join(closed, 'node_modules', 'bin'), stranger)).toEqual({ dir: closed, mode: 0o700 });
  });

  it('lets the owner and the primary group through their own bits (needs root to hand the directory over)', async () => {
    expect(process.getuid?.(), 'this test must run as root (CI does)').toBe(0);
    const owned = path.join(root, 'owned');
    await mkdir(owned);
    await chmod(owned, 0o710);
    await chown(owned, stranger.uid, 0);
    expect(await blockedDirectory(owned, stranger)).toBeNull();
    expect(await blockedDirectory(owned, { uid: 4_000_124, gid: 0 })).toBeNull();
    expect(await blockedDirectory(owned, { uid: 4_000_125, gid: 4_000_125 })).toEqual({ dir: owned, mode: 0o710 });
  });
});

describe('ensureRootOwnedDir (needs root, as CI runs)', () => {
  it('creates the directories open to everyone for passing, whatever the umask', async () => {
    expect(process.getuid?.(), 'this test must run as root (CI does)').toBe(0);
    const previous = process.umask(0o077);
    try {
      const made = await ensureRootOwnedDir(path.join(root, 'system', 'postgres'));
      expect(made).toBe(path.join(root, 'system', 'postgres'));
      for (const dir of [path.join(root, 'system'), made]) expect((await stat(dir)).mode & 0o777).toBe(0o755);
    } finally {
      process.umask(previous);
    }
  });

  it('refuses a directory on the way that someone other than root could change', async () => {
    expect(process.getuid?.(), 'this test must run as root (CI does)').toBe(0);
    const groupWritable = path.join(root, 'group-writable');
    await mkdir(groupWritable);
    await chmod(groupWritable, 0o775);
    await expect(ensureRootOwnedDir(path.join(groupWritable, 'performer'))).rejects.toThrow(
      `${groupWritable} (owner uid 0, mode 775) may be changed by users other than root`,
    );
    const foreign = path.join(root, 'foreign');
    await mkdir(foreign, { mode: 0o755 });
    await chown(foreign, stranger.uid, stranger.gid);
    await expect(ensureRootOwnedDir(path.join(foreign, 'performer'))).rejects.toThrow(`${foreign} (owner uid ${stranger.uid}, mode 755)`);
    // A sticky, world-writable directory on the way (like /tmp) is fine: others may not rename root's entries.
    const sticky = path.join(root, 'sticky');
    await mkdir(sticky);
    await chmod(sticky, 0o1777);
    await expect(ensureRootOwnedDir(path.join(sticky, 'performer'))).resolves.toBe(path.join(sticky, 'performer'));
  });
});
