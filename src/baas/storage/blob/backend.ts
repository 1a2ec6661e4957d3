/**
 * Where object bytes live, behind one interface (the local disk, or S3-compatible object storage). A blob is named by
 * a key the module chooses (the object's version, a fresh UUID per write), never by the user's path, so a rename,
 * an overwrite or a failed upload never touches bytes another row points at.
 *
 * Visibility: `write` stores the bytes where no reader looks (a temp name); `publish` moves them to their key, and
 * the module calls it just before the row's transaction commits, `discard` when the transaction fails. An upload
 * that dies half-way therefore leaves neither a visible object nor a blob. A process that dies half-way can: a temp
 * file (or an unfinished S3 multipart upload) mid-write, or a published blob whose row never committed. The sweeper
 * (../sweeper.ts) collects both with `sweepTemps`, `list` and `remove`; a write stays "in flight" (never collected)
 * from `write`/`copy` until its PendingBlob is settled or discarded.
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
  /** Removes the bytes, published or not; never throws. Settles too. */
  discard(): Promise<void>;
  /** The row naming the blob committed (or never will): from now on the sweeper may judge the blob by its row. */
  settle(): void;
}

export interface StoredBlob {
  key: string;
  /** When its bytes were last written (epoch ms). */
  modifiedMs: number;
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
   * Deletes at most `limit` unpublished leftovers of writes last touched before `before` (epoch ms) that a crash
   * left behind (a request that fails cleans up after itself; a process killed mid-upload cannot), never one of a
   * write in flight in this process. Returns how many went.
   */
  sweepTemps(tenant: string, before: number, limit: number): Promise<number>;
  /** Published blobs in key order after `after` (null: from the first), at most `limit`, none in flight here. */
  list(tenant: string, after: string | null, limit: number): Promise<StoredBlob[]>;
  close(): Promise<void>;
}
