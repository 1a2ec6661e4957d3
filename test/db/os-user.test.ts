import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertTraversable } from '../../src/db/os-user.js';

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

describe('assertTraversable', () => {
  it('passes a path every directory of which others may enter', async () => {
    const open = path.join(root, 'open', 'bin');
    await mkdir(open, { recursive: true, mode: 0o755 });
    await expect(assertTraversable(open, stranger)).resolves.toBeUndefined();
  });

  it('names the private directory on the way and what lies behind it', async () => {
    const closed = path.join(root, 'closed');
    await mkdir(path.join(closed, 'node_modules', 'bin'), { recursive: true, mode: 0o755 });
    await chmod(closed, 0o700);
    await expect(assertTraversable(path.join(closed, 'node_modules', 'bin'), stranger, 'the Postgres binaries')).rejects.toThrow(
      `which cannot enter ${closed} (mode 700) on the way to the Postgres binaries; put it under a world-traversable path or chmod o+x ${closed}`,
    );
  });
});
