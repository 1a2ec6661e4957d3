/**
 * Reused buffers for upload bodies. uWS lends each body chunk (up to its 512 KiB receive buffer) only for the length
 * of the callback, so every chunk is copied; into a fresh Buffer, that is a new off-heap allocation per chunk, whose
 * page faults and the minor GCs that V8 runs to free such allocations were a large part of a big upload's CPU
 * (profiled: the GC alone a seventh of the upload's JavaScript time). Here a chunk is copied into a buffer of the
 * pool instead, and the one consumer that knows when it is done with a chunk (the file backend, once the chunk is on
 * disk) hands it back. A chunk nobody hands back (multipart parsing, S3, TUS, small bodies) is simply collected as
 * any Buffer: giving back is an optimisation, never needed for correctness.
 *
 * Safety rests on identity: only the exact Buffer object `copy` returned can be given back, once; views of it (as a
 * multipart parser makes) are not, so bytes another holder may still read are never overwritten.
 */
const POOLED_BYTES = 512 * 1024;
/** Smaller chunks are copied the ordinary way: a 512 KiB buffer for a few bytes would waste more than it saves. */
const MIN_POOLED_BYTES = 64 * 1024;
/** Free buffers kept (8 MiB): enough for a few large uploads at once; beyond, given-back buffers go to the GC. */
const KEEP = 16;

class ChunkPool {
  private readonly free: Buffer[] = [];
  private readonly lent = new WeakMap<Buffer, Buffer>();

  /** A copy of `bytes` that may be given back with `giveBack` once its holder is done with it. */
  copy(bytes: Uint8Array): Buffer {
    if (bytes.length < MIN_POOLED_BYTES || bytes.length > POOLED_BYTES) return Buffer.from(bytes);
    const base = this.free.pop() ?? Buffer.allocUnsafeSlow(POOLED_BYTES);
    base.set(bytes);
    const chunk = bytes.length === POOLED_BYTES ? base : base.subarray(0, bytes.length);
    this.lent.set(chunk, base);
    return chunk;
  }

  /** `chunk` will not be read again by anyone: its buffer may take the next chunk. Anything else is ignored. */
  giveBack(chunk: Buffer): void {
    const base = this.lent.get(chunk);
    if (!base) return;
    this.lent.delete(chunk);
    if (this.free.length < KEEP) this.free.push(base);
  }
}

export const chunkPool = new ChunkPool();
