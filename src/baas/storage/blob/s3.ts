/**
 * The S3-compatible blob backend (STORAGE_BACKEND=s3): objects under `<tenant>/<key>` in one bucket. S3 has no cheap
 * rename, so a write goes straight to its key, a fresh UUID no row names yet: the bytes are unreachable until the row
 * that names them commits, `publish` has nothing to do, and `discard` deletes them. `@aws-sdk/lib-storage` streams
 * the body in parts (a few parts in flight, never the whole object) and aborts a multipart upload whose source fails.
 * A crash leaves an unfinished multipart upload (swept by `sweepTemps`, by the upload's start) or a whole object no
 * row names (found through `list`, aged by its LastModified, which is when the upload completed).
 * Credentials come from the SDK's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, roles).
 */
import { AbortMultipartUploadCommand, CopyObjectCommand, DeleteObjectsCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import type { BlobBackend, ByteRange, PendingBlob, StoredBlob } from './backend.js';
import { InFlight } from './in-flight.js';

/** 5 MiB is S3's smallest part; two in flight bound an upload's memory to ~10 MiB whatever its size. */
const PART_BYTES = 5 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;
const DELETE_BATCH = 1000;
const KEY = /^[A-Za-z0-9-]+$/;

export interface S3Settings {
  endpoint: string | null;
  bucket: string;
  region: string;
  forcePathStyle: boolean;
}

export class S3BlobBackend implements BlobBackend {
  readonly kind = 's3';
  private readonly client: S3Client;
  private readonly inFlight = new InFlight();
  /** False once the server said it has no ListMultipartUploads (s3rver): then only a lifecycle rule cleans those. */
  private listsUploads = true;

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
    this.inFlight.add(tenant, key);
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
      this.inFlight.delete(tenant, key);
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
    this.inFlight.add(tenant, toKey);
    try {
      await this.client.send(
        new CopyObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(tenant, toKey), CopySource: `${this.settings.bucket}/${this.objectKey(tenant, fromKey)}` }),
      );
    } catch (err) {
      this.inFlight.delete(tenant, toKey);
      throw err;
    }
    return this.pending(tenant, toKey);
  }

  async remove(tenant: string, keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH).map((key) => ({ Key: this.objectKey(tenant, key) }));
      await this.client.send(new DeleteObjectsCommand({ Bucket: this.settings.bucket, Delete: { Objects: batch, Quiet: true } }));
    }
  }

  /**
   * Aborts multipart uploads a crash left unfinished. Where the server cannot list them (s3rver answers
   * NotImplemented), the bucket's AbortIncompleteMultipartUpload lifecycle rule is the only tool; configure it anyway.
   */
  async sweepTemps(tenant: string, before: number, limit: number): Promise<number> {
    if (!this.listsUploads) return 0;
    const prefix = this.objectKey(tenant, '');
    let listed;
    try {
      listed = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.settings.bucket, Prefix: prefix, MaxUploads: limit }));
    } catch (err) {
      if ((err as { name?: string }).name !== 'NotImplemented') throw err;
      this.listsUploads = false;
      return 0;
    }
    let removed = 0;
    for (const upload of listed.Uploads ?? []) {
      const key = upload.Key?.slice(prefix.length) ?? '';
      if (!upload.UploadId || !upload.Initiated || upload.Initiated.getTime() >= before || this.inFlight.has(tenant, key)) continue;
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.settings.bucket, Key: upload.Key, UploadId: upload.UploadId }));
      removed++;
    }
    return removed;
  }

  /** ListObjects (v1) with a Marker: every S3 server pages it alike (s3rver fails on a truncated v2 listing). */
  async list(tenant: string, after: string | null, limit: number): Promise<StoredBlob[]> {
    const prefix = this.objectKey(tenant, '');
    const out = await this.client.send(
      new ListObjectsCommand({ Bucket: this.settings.bucket, Prefix: prefix, MaxKeys: limit, ...(after !== null ? { Marker: this.objectKey(tenant, after) } : {}) }),
    );
    const blobs: StoredBlob[] = [];
    for (const object of out.Contents ?? []) {
      const key = object.Key?.slice(prefix.length) ?? '';
      if (KEY.test(key) && object.LastModified && !this.inFlight.has(tenant, key)) blobs.push({ key, modifiedMs: object.LastModified.getTime() });
    }
    return blobs;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private pending(tenant: string, key: string): PendingBlob {
    return {
      publish: async () => undefined,
      discard: async () => {
        await this.remove(tenant, [key]).catch(() => undefined);
        this.inFlight.delete(tenant, key);
      },
      settle: () => this.inFlight.delete(tenant, key),
    };
  }

  /** `key` '' gives the tenant's prefix. */
  private objectKey(tenant: string, key: string): string {
    if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(tenant) || (key !== '' && !KEY.test(key))) throw new Error('unsafe storage object key');
    return `${tenant}/${key}`;
  }
}
