/**
 * A blob file as a Readable that reads into pooled buffers (../chunks.ts): 512 KiB reads where at least 64 KiB
 * remain, each chunk lent so that the response writer can hand it back once uWS took its bytes. Opened (and its size
 * read) before it is returned, so a missing blob is an error of `openBlob`, not of the stream.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { chunkPool, MIN_POOLED_BYTES, POOLED_BYTES } from '../chunks.js';
import type { ByteRange } from './backend.js';

/** `range` (inclusive) of `file`, or all of it. */
export async function openBlob(file: string, range?: ByteRange): Promise<Readable> {
  const handle = await open(file, 'r');
  try {
    const end = range ? range.end + 1 : (await handle.stat()).size;
    return new BlobReader(handle, range?.start ?? 0, end);
  } catch (err) {
    await handle.close();
    throw err;
  }
}

class BlobReader extends Readable {
  constructor(
    private readonly handle: FileHandle,
    private position: number,
    /** Exclusive. */
    private readonly end: number,
  ) {
    // One chunk read ahead while the previous one is being sent.
    super({ highWaterMark: POOLED_BYTES });
  }

  override _read(): void {
    const want = Math.min(this.end - this.position, POOLED_BYTES);
    if (want <= 0) {
      this.push(null);
      return;
    }
    const pooled = want >= MIN_POOLED_BYTES;
    const buffer = pooled ? chunkPool.borrow() : Buffer.allocUnsafe(want);
    this.handle.read(buffer, 0, want, this.position).then(
      ({ bytesRead }) => {
        if (bytesRead === 0) {
          // Shorter than its row says: end here; the response writer tells a short body from a whole one.
          if (pooled) chunkPool.putBack(buffer);
          this.push(null);
          return;
        }
        this.position += bytesRead;
        this.push(pooled ? chunkPool.lend(buffer, bytesRead) : buffer.subarray(0, bytesRead));
      },
      (err: unknown) => {
        if (pooled) chunkPool.putBack(buffer);
        this.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.handle.close().then(
      () => callback(err),
      (closeErr: unknown) => callback(err ?? (closeErr instanceof Error ? closeErr : new Error(String(closeErr)))),
    );
  }
}
