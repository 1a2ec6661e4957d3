/**
 * The default blob backend: files under STORAGE_DIR, `<tenant>/<2 hex>/<key>`. A write goes to
 * `<tenant>/.tmp/<key>` and is renamed into place on publish (a rename within one file system is atomic), so a
 * reader sees a whole blob or none. A file's mtime is when its bytes were last written (rename keeps it, copyFile
 * sets it), which is what the sweeper ages leftovers by.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { chunkPool } from '../chunks.js';
import type { BlobBackend, ByteRange, PendingBlob, StoredBlob } from './backend.js';
import { openBlob } from './file-reader.js';
import { InFlight } from './in-flight.js';

/** The temp file's write buffer: a body chunk (up to 512 KiB) is written as it comes, several at once when they wait. */
const WRITE_HIGH_WATER_BYTES = 256 * 1024;

export class FileBlobBackend implements BlobBackend {
  readonly kind = 'file';
  private readonly inFlight = new InFlight();

  constructor(private readonly root: string) {}

  async write(tenant: string, key: string, source: Readable): Promise<PendingBlob> {
    // The source may fail before writeAll() listens (while the directory is made); writeAll still sees it errored.
    source.on('error', () => undefined);
    this.inFlight.add(tenant, key);
    try {
      const temp = await this.tempPath(tenant, key);
      try {
        await writeAll(source, createWriteStream(temp, { highWaterMark: WRITE_HIGH_WATER_BYTES }));
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
      return this.pending(tenant, key, temp);
    } catch (err) {
      this.inFlight.delete(tenant, key);
      throw err;
    }
  }

  async read(tenant: string, key: string, range?: ByteRange): Promise<Readable> {
    return openBlob(this.blobPath(tenant, key), range);
  }

  async copy(tenant: string, fromKey: string, toKey: string): Promise<PendingBlob> {
    this.inFlight.add(tenant, toKey);
    try {
      const temp = await this.tempPath(tenant, toKey);
      await copyFile(this.blobPath(tenant, fromKey), temp).catch(async (err: unknown) => {
        await rm(temp, { force: true });
        throw err;
      });
      return this.pending(tenant, toKey, temp);
    } catch (err) {
      this.inFlight.delete(tenant, toKey);
      throw err;
    }
  }

  async remove(tenant: string, keys: readonly string[]): Promise<void> {
    await Promise.all(keys.map((key) => rm(this.blobPath(tenant, key), { force: true })));
  }

  async sweepTemps(tenant: string, before: number, limit: number): Promise<number> {
    const dir = path.join(this.root, safeSegment(tenant), '.tmp');
    const names = await readdir(dir).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names) {
      if (removed >= limit) break;
      if (this.inFlight.has(tenant, name)) continue;
      const info = await stat(path.join(dir, name)).catch(() => null);
      if (info && info.mtimeMs < before) {
        await rm(path.join(dir, name), { force: true });
        removed++;
      }
    }
    return removed;
  }

  /** Walks the 2-character fan-out directories in order; only names that belong in their directory are blobs. */
  async list(tenant: string, after: string | null, limit: number): Promise<StoredBlob[]> {
    const root = path.join(this.root, safeSegment(tenant));
    const dirs = (await readdir(root).catch(() => [] as string[])).filter((d) => d.length === 2 && !d.startsWith('.')).sort();
    const out: StoredBlob[] = [];
    for (const dir of dirs) {
      if (after !== null && dir < after.slice(0, 2)) continue;
      const names = (await readdir(path.join(root, dir)).catch(() => [] as string[]))
        .filter((name) => name.slice(0, 2) === dir && (after === null || name > after) && !this.inFlight.has(tenant, name))
        .sort();
      for (const name of names) {
        const info = await stat(path.join(root, dir, name)).catch(() => null);
        if (info?.isFile()) out.push({ key: name, modifiedMs: info.mtimeMs });
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  async close(): Promise<void> {}

  private pending(tenant: string, key: string, temp: string): PendingBlob {
    const final = this.blobPath(tenant, key);
    return {
      publish: async () => {
        await mkdir(path.dirname(final), { recursive: true });
        await rename(temp, final);
      },
      discard: async () => {
        await rm(temp, { force: true }).catch(() => undefined);
        await rm(final, { force: true }).catch(() => undefined);
        this.inFlight.delete(tenant, key);
      },
      settle: () => this.inFlight.delete(tenant, key),
    };
  }

  /** Named by the key (a fresh UUID per write), so the sweeper can tell a temp file of a write in flight. */
  private async tempPath(tenant: string, key: string): Promise<string> {
    const dir = path.join(this.root, safeSegment(tenant), '.tmp');
    await mkdir(dir, { recursive: true });
    return path.join(dir, safeSegment(key));
  }

  private blobPath(tenant: string, key: string): string {
    const name = safeSegment(key);
    return path.join(this.root, safeSegment(tenant), name.slice(0, 2), name);
  }
}

/**
 * pipeline(source, file), and each chunk handed back to the pool once it is on disk (the write's own callback, which
 * runs after the write or writev that took it). Either side failing destroys both and rejects; so does a source that
 * closes before its end (a request aborted without an error), as pipeline would.
 */
function writeAll(source: Readable, file: WriteStream): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      source.destroy();
      // Settled only once the file is closed: a stream destroyed while its open() is pending still creates the file,
      // and the caller's removal of the temp file must come after that, not before.
      if (file.closed) reject(err);
      else {
        file.once('close', () => reject(err));
        file.destroy();
      }
    };
    if (source.destroyed) return fail(source.errored ?? new Error('upload source closed before its end'));
    source.on('error', fail);
    file.on('error', fail);
    source.on('close', () => {
      if (!source.readableEnded) fail(source.errored ?? new Error('upload source closed before its end'));
    });
    source.on('data', (chunk: Buffer) => {
      if (!file.write(chunk, () => chunkPool.giveBack(chunk))) source.pause();
    });
    file.on('drain', () => source.resume());
    source.on('end', () => file.end());
    // 'close' after 'finish': the descriptor is closed, so the temp file can be renamed or removed.
    file.on('close', () => {
      if (file.writableFinished) resolve();
      else fail(new Error('blob file closed before its end'));
    });
  });
}

/** Keys and tenant ids are generated or validated upstream of here; this refuses anything that could leave the root. */
function safeSegment(value: string): string {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(value)) throw new Error(`unsafe storage path segment ${JSON.stringify(value)}`);
  return value;
}
