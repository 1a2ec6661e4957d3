/**
 * Where object bytes live, behind one interface (the local disk, or S3-compatible object storage). A blob is named by
 * a key the module chooses (the object's version, a fresh UUID per write), never by the user's path, so a rename,
 * an overwrite or a failed upload never touches bytes another row points at.
 *
 * Visibility: `write` stores the bytes where no reader looks (a temp name); `publish` moves them to their key, and
 * the module calls it just before the row's transaction commits, `discard` when the transaction fails. An upload
 * that dies half-way therefore leaves neither a visible object nor a blob.
 */
import type { Readable } from 'node:stream';

export interface ByteRange {
  /** Inclusive, as in HTTP. */
  start: number;
  end: number;
}

export interface PendingBlob {
  /** Makes the bytes readable at their key. */
  publish(): Promise<void>;
  /** Removes the bytes, published or not; never throws. */
  discard(): Promise<void>;
}

export interface BlobBackend {
  readonly kind: 'file' | 's3';
  /** Stores everything `source` yields under `key` of `tenant`, unpublished. Rejects (nothing kept) if `source` fails. */
  write(tenant: string, key: string, source: Readable, size: number | null): Promise<PendingBlob>;
  /** The bytes of a published blob, all or a range. */
  read(tenant: string, key: string, range?: ByteRange): Promise<Readable>;
  /** A new unpublished blob with the bytes of `fromKey`. */
  copy(tenant: string, fromKey: string, toKey: string): Promise<PendingBlob>;
  /** Deletes published blobs; missing ones are fine. */
  remove(tenant: string, keys: readonly string[]): Promise<void>;
  /**
   * Deletes unpublished bytes older than `olderThanMs` that a crash left behind (a request that fails cleans up after
   * itself; a process killed mid-upload cannot). Returns how many went.
   */
  sweep(tenant: string, olderThanMs: number): Promise<number>;
  close(): Promise<void>;
}
