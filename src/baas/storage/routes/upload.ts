/**
 * Uploads (spec baas-api.md §4.1, §4.2): `POST /object/B/P` (x-upsert), `PUT /object/B/P` (replaces, as upstream's
 * update is an upsert) and `PUT /object/upload/sign/B/P?token=` (a signed upload). The body, raw or multipart,
 * streams from the socket through a size meter to the blob backend; the row is written as the caller (RLS) in one
 * transaction, and the blob published just before it commits. Limits and the caller's right to insert are checked
 * before a byte is stored, so a refused upload is answered at once (its connection closed, the body unread).
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import busboy from 'busboy';
import type { PendingBlob } from '../blob/backend.js';
import type { Caller, Sql } from '../db.js';
import { chunkPool } from '../chunks.js';
import { errors, fromDatabaseError, isDatabaseError, StorageError } from '../errors.js';
import { MeteredBytes, RequestAborted } from '../http/body.js';
import { mimeTypeAllowed, mustBeValidKey } from '../names.js';
import { BUCKET_LIMITS_SQL, bucketLimits, noteObjectEvent, transaction, type BucketLimits, type StorageCall } from '../service.js';
import { verifyToken } from '../tokens.js';

/** Multipart text fields (cacheControl, contentType, metadata) are small; anything larger is not a storage client. */
const MAX_FIELD_BYTES = 64 * 1024;

export interface UploadSource {
  stream: Readable;
  mimeType: string;
  cacheControl: string;
  userMetadata: unknown;
}

export interface UploadTarget {
  bucket: string;
  key: string;
  upsert: boolean;
  /** Who the row is written as: the caller (RLS applies) or, for a signed upload, the pool's user. */
  caller: Caller | null;
  owner: string | null;
}

export async function uploadObject(call: StorageCall): Promise<void> {
  const caller = call.caller;
  if (!caller) throw errors.accessDenied('Access denied: JWT is not authenticated');
  // PUT (storage-js update) replaces; POST replaces only with x-upsert: true.
  const upsert = call.method === 'PUT' || call.info.headers['x-upsert'] === 'true';
  const owner = typeof caller.claims.sub === 'string' ? caller.claims.sub : null;
  const id = await storeUpload(call, { bucket: call.bucket, key: call.key, upsert, caller, owner });
  answerUpload(call, { Id: id, Key: `${call.bucket}/${call.key}` });
}

export async function uploadSigned(call: StorageCall): Promise<void> {
  const secret = signingSecret(call);
  const token = call.info.query.get('token');
  if (!token) throw errors.invalidSignature('Missing token');
  const payload = await verifyToken(secret, token, `${call.bucket}/${call.key}`, 'upload');
  const id = await storeUpload(call, { bucket: call.bucket, key: call.key, upsert: payload.upsert === true, caller: null, owner: payload.owner ?? null });
  answerUpload(call, { Id: id, Key: `${call.bucket}/${call.key}` });
}

/**
 * The upload's answer. A multipart body may still hold bytes after its file part (further parts, the closing
 * boundary) that nobody reads once the file is stored: then the connection closes with the answer, so a paused,
 * half-read request cannot stall the next one on it.
 */
function answerUpload(call: StorageCall, body: object): void {
  call.reply.json(200, body, call.body !== null && !call.body.readableEnded);
}

export function signingSecret(call: StorageCall): string {
  const secret = call.tenant.settings.jwtSecret;
  if (!secret) throw new StorageError(500, 'InternalError', 'Internal', 'The tenant has no JWT secret to sign URLs with');
  return secret;
}

/** Stores the request body as `target`; returns the row's id. */
export async function storeUpload(call: StorageCall, target: UploadTarget): Promise<string> {
  const declared = Number(call.info.headers['content-length']);
  if (call.body && Number.isSafeInteger(declared) && declared <= call.settings.smallUploadBytes) return storeSmallUpload(call, target, declared);
  const { limit, allowed } = await uploadLimits(call, target);
  if (declared > limit) throw errors.entityTooLarge();
  if (target.caller) await checkMayWrite(call, target);
  const source = await uploadSource(call, allowed);
  return storeStream(call, target, source, limit);
}

/**
 * A small body (declared size within `smallUploadBytes`) in one transaction and one pool checkout instead of three:
 * the body is read first (bounded by its declared size), then the bucket's limits are read as the pool's user, the
 * caller's role and claims set, the limits and type checked, the blob written and the row inserted as the caller
 * (the insert is the RLS check; no probe is needed when the bytes are already here), the blob published just before
 * COMMIT. The checks and their order (bucket, size, type, policy) are the ones of the streaming path.
 */
async function storeSmallUpload(call: StorageCall, target: UploadTarget, declared: number): Promise<string> {
  mustBeValidKey(target.key);
  const bytes = await readSmallBody(call.body!, declared);
  const buffered: StorageCall = { ...call, body: Readable.from([bytes], { objectMode: false }) };
  const tenantId = call.tenant.settings.externalId;
  let pending: PendingBlob | null = null;
  let bucket: BucketLimits | undefined;
  let written: { id: string; old_version: string | null };
  let stored = null as { version: string; metadata: object } | null;
  try {
    written = await transaction(
      call,
      target.caller,
      'storage.object.upload',
      async (sql) => {
        const limits = limitsOf(call, bucket!);
        if (bytes.length > limits.limit) throw errors.entityTooLarge();
        const source = await uploadSource(buffered, limits.allowed);
        const blob = await writeBlob(call, source, limits.limit);
        pending = blob.pending;
        const row = await writeRow(sql, target, blob.version, blob.metadata, source.userMetadata);
        await blob.pending.publish();
        stored = { version: blob.version, metadata: blob.metadata };
        return row;
      },
      // Before the caller's role is set: the limits are read as the pool's user, as upstream reads them.
      async (sql) => {
        const { rows } = await sql.query<BucketLimits>(BUCKET_LIMITS_SQL, [target.bucket]);
        if (rows.length === 0) throw errors.noSuchBucket();
        bucket = rows[0];
      },
    );
  } catch (err) {
    await (pending as PendingBlob | null)?.discard();
    throw isDatabaseError(err) ? fromDatabaseError(err) : err;
  }
  (pending as PendingBlob | null)?.settle();
  await removeReplaced(call, tenantId, written, null);
  const { version, metadata } = stored!;
  noteObjectEvent(call, written.old_version === null ? 'object.created' : 'object.updated', version, target.bucket, {
    id: written.id, bucket_id: target.bucket, name: target.key, owner_id: target.owner, version, metadata,
  });
  return written.id;
}

/** The whole body, which must be `declared` bytes (uWS enforces Content-Length; a shorter stream was aborted). */
function readSmallBody(body: Readable, declared: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    if (body.destroyed) return reject(body.errored ?? new RequestAborted());
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > declared) body.destroy(errors.entityTooLarge());
      else chunks.push(chunk);
    });
    body.once('end', () => {
      const whole = Buffer.concat(chunks, size);
      // Copied: the body's (possibly pooled, ../chunks.ts) chunks are read by no one else.
      for (const chunk of chunks) chunkPool.giveBack(chunk);
      resolve(whole);
    });
    body.once('error', reject);
    body.once('close', () => {
      if (!body.readableEnded) reject(body.errored ?? new RequestAborted());
    });
  });
}

/** The key checked, and the size limit and allowed types of the target's bucket (NoSuchBucket when it has none). */
export async function uploadLimits(call: StorageCall, target: Pick<UploadTarget, 'bucket' | 'key'>): Promise<{ limit: number; allowed: string[] | null }> {
  mustBeValidKey(target.key);
  return limitsOf(call, await bucketLimits(call, target.bucket));
}

function limitsOf(call: StorageCall, bucket: BucketLimits): { limit: number; allowed: string[] | null } {
  const limit = Math.min(call.settings.fileSizeLimit, bucket.file_size_limit === null ? Infinity : Number(bucket.file_size_limit));
  return { limit, allowed: bucket.allowed_mime_types };
}

/**
 * Streams `source` to a new blob through the size meter, then writes the row as `target.caller` and publishes the
 * blob just before COMMIT; a failure anywhere discards the blob. The replaced version's blob goes after the commit.
 */
export async function storeStream(call: StorageCall, target: UploadTarget, source: UploadSource, limit: number): Promise<string> {
  const tenantId = call.tenant.settings.externalId;
  const { pending, version, metadata } = await writeBlob(call, source, limit);
  let written: { id: string; old_version: string | null };
  try {
    written = await transaction(call, target.caller, 'storage.object.upload', async (sql) => {
      const row = await writeRow(sql, target, version, metadata, source.userMetadata);
      await pending.publish();
      return row;
    });
  } catch (err) {
    await pending.discard();
    throw isDatabaseError(err) ? fromDatabaseError(err) : err;
  }
  pending.settle();
  await removeReplaced(call, tenantId, written, version);
  noteObjectEvent(call, written.old_version === null ? 'object.created' : 'object.updated', version, target.bucket, {
    id: written.id, bucket_id: target.bucket, name: target.key, owner_id: target.owner, version, metadata,
  });
  return written.id;
}

/** Streams `source` through the size meter to a new, not yet visible blob; its version and the row's metadata. */
async function writeBlob(call: StorageCall, source: UploadSource, limit: number): Promise<{ pending: PendingBlob; version: string; metadata: object }> {
  const version = randomUUID();
  const meter = new MeteredBytes(limit);
  // pipe() does not pass errors on: an aborted request must fail the write, or the backend would wait forever. The
  // request may also have been aborted already, during the checks before this point.
  const input = source.stream;
  if (input.destroyed) throw input.errored ?? new RequestAborted();
  input.once('error', (err) => meter.destroy(err));
  input.once('close', () => {
    if (!input.readableEnded) meter.destroy(new RequestAborted());
  });
  let pending: PendingBlob;
  try {
    pending = await call.backend.write(call.tenant.settings.externalId, version, input.pipe(meter), null);
  } catch (err) {
    input.destroy();
    throw err;
  }
  const metadata = {
    eTag: versionEtag(version),
    size: meter.size,
    mimetype: source.mimeType,
    cacheControl: source.cacheControl,
    lastModified: new Date().toISOString(),
    contentLength: meter.size,
    httpStatusCode: 200,
  };
  return { pending, version, metadata };
}

/** The replaced version's blob, removed after the commit; a failure only leaves a blob for the sweeper. */
async function removeReplaced(call: StorageCall, tenantId: string, written: { old_version: string | null }, version: string | null): Promise<void> {
  if (written.old_version === null || written.old_version === version) return;
  await call.backend.remove(tenantId, [written.old_version]).catch((err: unknown) => {
    call.tenant.log.warn({ err, error_code: 'StorageBlobRemoveFailed', request_id: call.requestId }, 'storage blob removal failed');
  });
}

async function writeRow(sql: Sql, target: UploadTarget, version: string, metadata: object, userMetadata: unknown): Promise<{ id: string; old_version: string | null }> {
  const values = [target.bucket, target.key, target.owner, version, JSON.stringify(metadata), userMetadata === undefined ? null : JSON.stringify(userMetadata)];
  const insert =
    `INSERT INTO storage.objects AS o (bucket_id, name, owner, owner_id, version, metadata, user_metadata) ` +
    `VALUES ($1, $2, CASE WHEN $3 ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN $3::uuid END, $3, $4, $5::jsonb, $6::jsonb)`;
  if (!target.upsert) {
    const { rows } = await sql.query<{ id: string }>(`${insert} RETURNING id`, values);
    return { id: rows[0].id, old_version: null };
  }
  const { rows } = await sql.query<{ id: string; old_version: string | null }>(
    `WITH old AS (SELECT version FROM storage.objects WHERE bucket_id = $1 AND name = $2) ${insert} ` +
      `ON CONFLICT (bucket_id, name) DO UPDATE SET owner = excluded.owner, owner_id = excluded.owner_id, version = excluded.version, ` +
      `metadata = excluded.metadata, user_metadata = excluded.user_metadata, last_accessed_at = now() ` +
      `RETURNING id, (SELECT version FROM old) AS old_version`,
    values,
  );
  return rows[0];
}

/**
 * Upstream's canUpload: the row the upload will write, inserted as the caller and rolled back, so a caller the
 * policies refuse (or a duplicate without upsert) is told before the body is read.
 */
export async function checkMayWrite(call: StorageCall, target: UploadTarget): Promise<void> {
  const probe = new Error('probe');
  await transaction(call, target.caller, 'storage.object.upload', async (sql) => {
    await writeRow(sql, target, randomUUID(), {}, undefined);
    throw probe;
  }).catch((err: unknown) => {
    if (err === probe) return;
    throw isDatabaseError(err) ? fromDatabaseError(err) : err;
  });
}

/** The file to store and its content type, cache control and user metadata, from a raw or a multipart body. */
async function uploadSource(call: StorageCall, allowed: string[] | null): Promise<UploadSource> {
  const body = call.body;
  if (!body) throw errors.noContent();
  if (body.destroyed) throw body.errored ?? new RequestAborted();
  const headers = call.info.headers;
  const type = headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(type)) {
    const mimeType = type || 'application/octet-stream';
    if (!mimeTypeAllowed(mimeType, allowed)) throw errors.invalidMimeType(mimeType);
    return { stream: body, mimeType, cacheControl: headers['cache-control'] ?? 'no-cache', userMetadata: headerMetadata(headers['x-metadata']) };
  }
  return new Promise<UploadSource>((resolve, reject) => {
    const fields: Record<string, string> = {};
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: headers as never, limits: { files: 1, fields: 16, fieldSize: MAX_FIELD_BYTES, parts: 32 } });
    } catch {
      return reject(errors.invalidRequest('Invalid multipart body'));
    }
    let found = false;
    let current: Readable | null = null;
    parser.on('field', (name, value) => (fields[name] = value));
    parser.on('file', (_name, file, info) => {
      if (found) return file.resume();
      found = true;
      current = file;
      file.on('error', () => undefined);
      const mimeType = fields.contentType || info.mimeType || 'application/octet-stream';
      if (!mimeTypeAllowed(mimeType, allowed)) {
        return reject(errors.invalidMimeType(mimeType));
      }
      let userMetadata: unknown;
      try {
        userMetadata = fields.metadata === undefined ? undefined : JSON.parse(fields.metadata);
      } catch {
        return reject(errors.invalidRequest('Invalid metadata'));
      }
      resolve({ stream: file, mimeType, cacheControl: fields.cacheControl ? `max-age=${fields.cacheControl}` : 'no-cache', userMetadata });
    });
    parser.on('error', (err: Error) => reject(errors.invalidRequest(err.message)));
    parser.on('close', () => reject(errors.noContent()));
    body.on('error', (err) => {
      current?.destroy(err);
      parser.destroy(err);
      reject(err);
    });
    body.pipe(parser);
  });
}

/** `x-metadata`: base64 of a JSON object (storage-js's `metadata` option). */
function headerMetadata(value: string | undefined): unknown {
  if (value === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed;
  } catch {
    // fall through
  }
  throw errors.invalidRequest('Invalid x-metadata header');
}

/**
 * The ETag of a stored version: a strong validator that changes whenever the bytes do, in S3's quoted 32-hex form.
 * Not an MD5 of the content; neither is S3's for a multipart upload, so clients cannot rely on that anyway.
 */
export function versionEtag(version: string): string {
  return `"${version.replace(/-/g, '')}"`;
}
