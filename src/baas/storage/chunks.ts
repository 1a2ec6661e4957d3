/**
 * Reused buffers for large bodies, uploads and downloads. uWS lends each body chunk (up to its 512 KiB receive buffer) only for the length
 * of the callback, so every chunk is copied; into a fresh Buffer, that is a new off-heap allocation per chunk, whose
 * page faults and the minor GCs that V8 runs to free such allocations were a large part of a big upload's CPU
 * (profiled: the GC alone a seventh of the upload's JavaScript time). Here a chunk is copied into a buffer of the
 * pool instead, and the one consumer that knows when it is done with a chunk (the file backend, once the chunk is on
 * disk) hands it back. Downloads the same way round: the file backend reads into pooled buffers and the response
 * writer (http/send.ts) hands each back once uWS took its bytes (uWS copies what it cannot send at once). A chunk
 * nobody hands back (multipart parsing, S3, TUS, image transforms) is simply collected as
 * any Buffer: giving back is an optimisation, never needed for correctness.
 *
 * Safety rests on identity: only the exact Buffer object `copy` or `lend` returned can be given back, once; views of it (as a
 * multipart parser makes) are not, so bytes another holder may still read are never overwritten.
 */
export const POOLED_BYTES = 512 * 1024;
/** Smaller chunks are copied the ordinary way: a 512 KiB buffer for a few bytes would waste more than it saves. */
export const MIN_POOLED_BYTES = 64 * 1024;
/** Free buffers kept (8 MiB): enough for a few large transfers at once; beyond, given-back buffers go to the GC. */
const KEEP = 16;

class ChunkPool {
  private readonly free: Buffer[] = [];
  private readonly lent = new WeakMap<Buffer, Buffer>();

  /** A copy of `bytes` that may be given back with `giveBack` once its holder is done with it. */
  copy(bytes: Uint8Array): Buffer {
    if (bytes.length < MIN_POOLED_BYTES || bytes.length > POOLED_BYTES) return Buffer.from(bytes);
    const base = this.borrow();
    base.set(bytes);
    return this.lend(base, bytes.length);
  }

  /** An empty buffer of POOLED_BYTES to fill (a file read), then `lend` or `putBack`. */
  borrow(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(POOLED_BYTES);
  }

  /** The first `length` bytes of a borrowed buffer, as a chunk that may be given back. */
  lend(base: Buffer, length: number): Buffer {
    const chunk = length === base.length ? base : base.subarray(0, length);
    this.lent.set(chunk, base);
    return chunk;
  }

  /** A borrowed buffer that was never lent. */
  putBack(base: Buffer): void {
    if (base.length === POOLED_BYTES && this.free.length < KEEP) this.free.push(base);
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
