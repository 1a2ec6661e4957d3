import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * A random secret kept in a file of the data dir: read if it exists, else created once (never overwritten), so a
 * zero-setup start keeps the same secret across restarts. Returns the secret and the file's absolute path.
 */
export async function keyFileSecret(dataDir: string, name: string): Promise<{ secret: string; file: string }> {
  const file = path.resolve(dataDir, name);
  const existing = await readKey(file);
  if (existing !== null) return { secret: existing, file };
  await mkdir(path.dirname(file), { recursive: true });
  // Written aside and linked into place, so a concurrent starter never reads a half-written key.
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(temp, randomBytes(32).toString('base64url'), { mode: 0o600 });
  try {
    await link(temp, file);
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(temp);
  }
  const created = await readKey(file);
  if (created === null) throw new Error(`${file} vanished while it was being created`);
  return { secret: created, file };
}

async function readKey(file: string): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const key = text.trim();
  // An empty file (a failed write, a `touch`) must not become an empty secret that anything signs with.
  if (key.length < 16) throw new Error(`${file} holds no usable key (fewer than 16 characters); delete it to have a new one made`);
  return key;
}
