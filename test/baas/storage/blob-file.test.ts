/** The file blob backend on its own: publish/discard visibility, the sweep of temp files a crash left, the listing. */
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

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('gave up waiting');
}

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

  it('leaves no temp file when the source has failed before the file was even open (its removal waits for the close)', async () => {
    // A write stream destroyed while its open() is pending still creates the file: the removal must come after.
    for (let i = 0; i < 200; i++) {
      const failed = new Readable({ read() {} });
      failed.on('error', () => undefined);
      failed.destroy(new Error('gone'));
      const key = `41111111-2222-3333-4444-${String(i).padStart(12, '0')}`;
      await expect(backend.write('t3', key, failed)).rejects.toThrow('gone');
    }
    expect(await readdir(path.join(root, 't3', '.tmp'))).toEqual([]);
  });

  it('sweeps temp files older than the bound, at most `limit` a pass, and keeps fresh ones and those of writes in flight', async () => {
    const dir = path.join(root, 't2', '.tmp');
    await mkdir(dir, { recursive: true });
    const longAgo = new Date(Date.now() - 7 * 60 * 60 * 1000);
    for (const name of ['old1', 'old2', 'fresh']) await writeFile(path.join(dir, name), 'x');
    for (const name of ['old1', 'old2']) await utimes(path.join(dir, name), longAgo, longAgo);
    const before = Date.now() - 6 * 60 * 60 * 1000;
    expect(await backend.sweepTemps('t2', before, 1)).toBe(1);
    expect(await backend.sweepTemps('t2', before, 10)).toBe(1);
    expect(await readdir(dir)).toEqual(['fresh']);
    expect(await backend.sweepTemps('nobody', Date.now(), 10)).toBe(0);

    // A write whose source stalls: its temp file is in flight however old, until the write settles.
    const key = '31111111-2222-3333-4444-555555555555';
    const slow = new Readable({ read() {} });
    const writing = backend.write('t2', key, slow);
    slow.push('some');
    await until(async () => (await readdir(dir)).includes(key));
    await utimes(path.join(dir, key), longAgo, longAgo);
    expect(await backend.sweepTemps('t2', Date.now() + 1000, 10)).toBe(1);
    expect((await readdir(dir)).sort()).toEqual([key]);
    slow.push(null);
    const pending = await writing;
    await pending.publish();
    // Published and not settled (its row has not committed): not listed either.
    expect(await backend.list('t2', null, 10)).toEqual([]);
    pending.settle();
    expect((await backend.list('t2', null, 10)).map((b) => b.key)).toEqual([key]);
  });

  it('lists published blobs in key order from a cursor, with their mtime', async () => {
    const keys = ['a1000000-0000-4000-8000-000000000000', 'a2000000-0000-4000-8000-000000000000', 'b1000000-0000-4000-8000-000000000000'];
    for (const key of keys.reverse()) {
      const pending = await backend.write('t3', key, Readable.from(['x']));
      await pending.publish();
      pending.settle();
    }
    keys.reverse();
    const then = new Date(Date.now() - 3600_000);
    await utimes(path.join(root, 't3', 'a2', keys[1]!), then, then);
    // Not blobs: names outside their fan-out directory, the temp directory.
    await writeFile(path.join(root, 't3', 'a1', 'zz-not-here'), 'x');
    const first = await backend.list('t3', null, 2);
    expect(first.map((b) => b.key)).toEqual(keys.slice(0, 2));
    expect(Math.round(first[1]!.modifiedMs / 1000)).toBe(Math.round(then.getTime() / 1000));
    expect((await backend.list('t3', first[1]!.key, 2)).map((b) => b.key)).toEqual(keys.slice(2));
    expect(await backend.list('t3', keys[2]!, 2)).toEqual([]);
    expect(await backend.list('nobody', null, 2)).toEqual([]);
  });

  it('refuses keys and tenants that could leave its root', async () => {
    await expect(backend.read('t1', '../../etc/passwd')).rejects.toThrow(/unsafe/);
    await expect(backend.write('..', 'k', Readable.from(['x']))).rejects.toThrow(/unsafe/);
  });
});
