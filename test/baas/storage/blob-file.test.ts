/** The file blob backend on its own: publish/discard visibility, and the sweep of temp files a crash left. */
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileBlobBackend } from '../../../src/baas/storage/blob/file.js';

let root: string;
let backend: FileBlobBackend;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'performer-blob-'));
  backend = new FileBlobBackend(root);
});
afterAll(async () => rm(root, { recursive: true, force: true }));

const text = async (s: Readable) => {
  let out = '';
  for await (const c of s) out += String(c);
  return out;
};

describe('FileBlobBackend', () => {
  it('makes bytes readable only once published, and discard removes them either way', async () => {
    const key = '11111111-2222-3333-4444-555555555555';
    const pending = await backend.write('t1', key, Readable.from(['hello ', 'world']));
    await expect(backend.read('t1', key)).rejects.toThrow();
    await pending.publish();
    expect(await text(await backend.read('t1', key))).toBe('hello world');
    expect(await text(await backend.read('t1', key, { start: 6, end: 10 }))).toBe('world');
    await pending.discard();
    await expect(backend.read('t1', key)).rejects.toThrow();
  });

  it('leaves nothing when the source fails mid-way', async () => {
    const failing = new Readable({ read() {} });
    failing.push('part');
    setImmediate(() => failing.destroy(new Error('client went away')));
    await expect(backend.write('t1', '21111111-2222-3333-4444-555555555555', failing)).rejects.toThrow('client went away');
    expect(await readdir(path.join(root, 't1', '.tmp'))).toEqual([]);
  });

  it('sweeps temp files older than the limit and keeps fresh ones', async () => {
    const dir = path.join(root, 't2', '.tmp');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'old'), 'x');
    await writeFile(path.join(dir, 'fresh'), 'y');
    const longAgo = new Date(Date.now() - 7 * 60 * 60 * 1000);
    await utimes(path.join(dir, 'old'), longAgo, longAgo);
    expect(await backend.sweep('t2', 6 * 60 * 60 * 1000)).toBe(1);
    expect(await readdir(dir)).toEqual(['fresh']);
    expect(await backend.sweep('nobody', 1)).toBe(0);
  });

  it('refuses keys and tenants that could leave its root', async () => {
    await expect(backend.read('t1', '../../etc/passwd')).rejects.toThrow(/unsafe/);
    await expect(backend.write('..', 'k', Readable.from(['x']))).rejects.toThrow(/unsafe/);
  });
});
