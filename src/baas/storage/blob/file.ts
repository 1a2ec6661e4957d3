/**
 * The default blob backend: files under STORAGE_DIR, `<tenant>/<2 hex>/<key>`. A write goes to
 * `<tenant>/.tmp/<uuid>` and is renamed into place on publish (a rename within one file system is atomic), so a
 * reader sees a whole blob or none.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobBackend, ByteRange, PendingBlob } from './backend.js';

/** Read in large chunks: fewer syscalls and socket writes for big objects. */
const READ_CHUNK_BYTES = 256 * 1024;

export class FileBlobBackend implements BlobBackend {
  readonly kind = 'file';

  constructor(private readonly root: string) {}

  async write(tenant: string, key: string, source: Readable): Promise<PendingBlob> {
    // The source may fail before pipeline() listens (while the directory is made); pipeline still sees it errored.
    source.on('error', () => undefined);
    const temp = await this.tempPath(tenant);
    try {
      await pipeline(source, createWriteStream(temp, { highWaterMark: READ_CHUNK_BYTES }));
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return this.pending(temp, this.blobPath(tenant, key));
  }

  async read(tenant: string, key: string, range?: ByteRange): Promise<Readable> {
    const stream = createReadStream(this.blobPath(tenant, key), { highWaterMark: READ_CHUNK_BYTES, ...(range ? { start: range.start, end: range.end } : {}) });
    // Opening fails asynchronously; wait for it so a missing blob is an error here, not mid-response.
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
    return stream;
  }

  async copy(tenant: string, fromKey: string, toKey: string): Promise<PendingBlob> {
    const temp = await this.tempPath(tenant);
    await copyFile(this.blobPath(tenant, fromKey), temp);
    return this.pending(temp, this.blobPath(tenant, toKey));
  }

  async remove(tenant: string, keys: readonly string[]): Promise<void> {
    await Promise.all(keys.map((key) => rm(this.blobPath(tenant, key), { force: true })));
  }

  async sweep(tenant: string, olderThanMs: number): Promise<number> {
    const dir = path.join(this.root, safeSegment(tenant), '.tmp');
    const names = await readdir(dir).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names) {
      const file = path.join(dir, name);
      const info = await stat(file).catch(() => null);
      if (info && Date.now() - info.mtimeMs > olderThanMs) {
        await rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  async close(): Promise<void> {}

  private pending(temp: string, final: string): PendingBlob {
    return {
      publish: async () => {
        await mkdir(path.dirname(final), { recursive: true });
        await rename(temp, final);
      },
      discard: async () => {
        await rm(temp, { force: true }).catch(() => undefined);
        await rm(final, { force: true }).catch(() => undefined);
      },
    };
  }

  private async tempPath(tenant: string): Promise<string> {
    const dir = path.join(this.root, safeSegment(tenant), '.tmp');
    await mkdir(dir, { recursive: true });
    return path.join(dir, randomUUID());
  }

  private blobPath(tenant: string, key: string): string {
    const name = safeSegment(key);
    return path.join(this.root, safeSegment(tenant), name.slice(0, 2), name);
  }
}

/** Keys and tenant ids are generated or validated upstream of here; this refuses anything that could leave the root. */
function safeSegment(value: string): string {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(value)) throw new Error(`unsafe storage path segment ${JSON.stringify(value)}`);
  return value;
}
