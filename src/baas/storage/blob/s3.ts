/**
 * The S3-compatible blob backend (STORAGE_BACKEND=s3): objects under `<tenant>/<key>` in one bucket. S3 has no cheap
 * rename, so a write goes straight to its key, a fresh UUID no row names yet: the bytes are unreachable until the row
 * that names them commits, `publish` has nothing to do, and `discard` deletes them. `@aws-sdk/lib-storage` streams
 * the body in parts (a few parts in flight, never the whole object) and aborts a multipart upload whose source fails.
 * Credentials come from the SDK's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, roles).
 */
import { CopyObjectCommand, DeleteObjectsCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import type { BlobBackend, ByteRange, PendingBlob } from './backend.js';

/** 5 MiB is S3's smallest part; two in flight bound an upload's memory to ~10 MiB whatever its size. */
const PART_BYTES = 5 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;
const DELETE_BATCH = 1000;

export interface S3Settings {
  endpoint: string | null;
  bucket: string;
  region: string;
  forcePathStyle: boolean;
}

export class S3BlobBackend implements BlobBackend {
  readonly kind = 's3';
  private readonly client: S3Client;

  constructor(private readonly settings: S3Settings) {
    this.client = new S3Client({
      region: settings.region,
      forcePathStyle: settings.forcePathStyle,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    });
  }

  async write(tenant: string, key: string, source: Readable): Promise<PendingBlob> {
    const objectKey = this.objectKey(tenant, key);
    source.on('error', () => undefined);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.settings.bucket, Key: objectKey, Body: source },
      partSize: PART_BYTES,
      queueSize: PARTS_IN_FLIGHT,
      leavePartsOnError: false,
    });
    // lib-storage reads the stream itself; a source that fails must fail the upload rather than end it early.
    const failed = new Promise<never>((_, reject) => source.once('error', reject));
    failed.catch(() => undefined);
    try {
      await Promise.race([upload.done(), failed]);
    } catch (err) {
      await upload.abort().catch(() => undefined);
      await this.remove(tenant, [key]).catch(() => undefined);
      throw err;
    }
    return this.pending(tenant, key);
  }

  async read(tenant: string, key: string, range?: ByteRange): Promise<Readable> {
    const out = await this.client.send(
      new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(tenant, key), ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
    );
    if (!(out.Body instanceof Readable)) throw new Error('S3 GetObject answered without a stream body');
    return out.Body;
  }

  async copy(tenant: string, fromKey: string, toKey: string): Promise<PendingBlob> {
    await this.client.send(
      new CopyObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(tenant, toKey), CopySource: `${this.settings.bucket}/${this.objectKey(tenant, fromKey)}` }),
    );
    return this.pending(tenant, toKey);
  }

  async remove(tenant: string, keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH).map((key) => ({ Key: this.objectKey(tenant, key) }));
      await this.client.send(new DeleteObjectsCommand({ Bucket: this.settings.bucket, Delete: { Objects: batch, Quiet: true } }));
    }
  }

  /**
   * Nothing to sweep here: an upload that fails aborts its multipart upload, and for one cut short by a crash S3's
   * own lifecycle rule (AbortIncompleteMultipartUpload) is the tool; configure it on the bucket.
   */
  async sweep(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private pending(tenant: string, key: string): PendingBlob {
    return {
      publish: async () => undefined,
      discard: async () => {
        await this.remove(tenant, [key]).catch(() => undefined);
      },
    };
  }

  private objectKey(tenant: string, key: string): string {
    if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(tenant) || !/^[A-Za-z0-9-]+$/.test(key)) throw new Error('unsafe storage object key');
    return `${tenant}/${key}`;
  }
}
