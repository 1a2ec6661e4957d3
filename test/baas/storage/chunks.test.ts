/** The chunk pool: reuse only of buffers given back, never of views; file writes and reads that give back. */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FileBlobBackend } from '../../../src/baas/storage/blob/file.js';
import { chunkPool } from '../../../src/baas/storage/chunks.js';

const filled = (size: number, byte: number) => new Uint8Array(size).fill(byte);

describe('chunkPool', () => {
  it('reuses a large chunk given back, and nothing else', () => {
    const a = chunkPool.copy(filled(512 * 1024, 1));
    chunkPool.giveBack(a);
    const b = chunkPool.copy(filled(512 * 1024, 2));
    expect(b.buffer).toBe(a.buffer);
    expect(b[0]).toBe(2);
    // A view of a pooled chunk (what a multipart parser hands on) is not the chunk: giving it back does nothing.
    chunkPool.giveBack(b.subarray(10));
    const c = chunkPool.copy(filled(512 * 1024, 3));
    expect(c.buffer).not.toBe(b.buffer);
    expect(b[0]).toBe(2);
    // Given back twice counts once.
    chunkPool.giveBack(c);
    chunkPool.giveBack(c);
    const d = chunkPool.copy(filled(300 * 1024, 4));
    const e = chunkPool.copy(filled(300 * 1024, 5));
    expect(d.buffer).toBe(c.buffer);
    expect(e.buffer).not.toBe(c.buffer);
    expect(d.length).toBe(300 * 1024);
    expect([d[0], e[0]]).toEqual([4, 5]);
  });

  it('copies small chunks apart from the pool', () => {
    const small = chunkPool.copy(filled(1000, 9));
    chunkPool.giveBack(small);
    expect(chunkPool.copy(filled(512 * 1024, 1)).buffer).not.toBe(small.buffer);
  });

  it('keeps every byte of an upload and a download whose chunks are reused as soon as they are on disk or sent', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'performer-chunks-'));
    try {
      const backend = new FileBlobBackend(root);
      const sent = createHash('sha256');
      let i = 0;
      // As bodyStream makes them: pooled copies, each with its own content, faster than the disk takes them.
      const source = new Readable({
        highWaterMark: 4 * 1024 * 1024,
        read() {
          if (i === 64) return void this.push(null);
          const bytes = filled(512 * 1024 - (i % 3) * 1000, i++ % 251);
          sent.update(bytes);
          this.push(chunkPool.copy(bytes));
        },
      });
      const key = '41111111-2222-3333-4444-555555555555';
      const pending = await backend.write('t', key, source);
      await pending.publish();
      const stored = await readFile(path.join(root, 't', key.slice(0, 2), key));
      expect(createHash('sha256').update(stored).digest('hex')).toBe(sent.digest('hex'));

      // Read back in pooled chunks, each handed back as soon as it is seen (as the response writer does), whole
      // and in ranges that start and end inside chunks; bytes must not change under a reader that is done with them.
      const readBack = async (range?: { start: number; end: number }) => {
        const hash = createHash('sha256');
        let n = 0;
        for await (const chunk of await backend.read('t', key, range)) {
          hash.update(chunk as Buffer);
          n += (chunk as Buffer).length;
          chunkPool.giveBack(chunk as Buffer);
        }
        return { hash: hash.digest('hex'), n };
      };
      const whole = createHash('sha256').update(stored).digest('hex');
      expect(await readBack()).toEqual({ hash: whole, n: stored.length });
      for (const range of [{ start: 1000, end: 3 * 512 * 1024 + 77 }, { start: stored.length - 70_000, end: stored.length - 1 }, { start: 5, end: 5 }]) {
        const expected = createHash('sha256').update(stored.subarray(range.start, range.end + 1)).digest('hex');
        expect(await readBack(range)).toEqual({ hash: expected, n: range.end - range.start + 1 });
      }
      await expect(backend.read('t', '51111111-2222-3333-4444-555555555555')).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
