/**
 * Object management as the caller (spec baas-api.md §4.1, §4.5): list, move, copy, remove (one or a batch), and
 * signed URLs for download (one or many) and upload. Every statement runs with the caller's role, so the policies on
 * storage.objects decide what is listed, moved, copied, removed or signed.
 */
import { randomUUID } from 'node:crypto';
import { errors, fromDatabaseError, isDatabaseError } from '../errors.js';
import { mustBeValidBucketName, mustBeValidKey } from '../names.js';
import { callerOf, jsonObject, noteObjectEvent, transaction, type StorageCall } from '../service.js';
import { expiresInSeconds, signToken } from '../tokens.js';
import { transformFromBody, transformToString } from '../transform.js';
import { removeBlobs } from './buckets.js';
import { signingSecret, versionEtag } from './upload.js';

/** Upstream's MAX_OBJECTS_PER_REQUEST for batch deletes and signs. */
const MAX_OBJECTS_PER_REQUEST = 1000;
const LIST_SORT_COLUMNS = new Set(['name', 'updated_at', 'created_at', 'last_accessed_at']);
const DEFAULT_UPLOAD_URL_SECONDS = 2 * 60 * 60;

export async function listObjects(call: StorageCall): Promise<void> {
  const body = jsonObject(call);
  const rawPrefix = typeof body.prefix === 'string' ? body.prefix : '';
  if (body.prefix === undefined) throw errors.invalidRequest("body must have required property 'prefix'");
  const prefix = rawPrefix === '' || rawPrefix.endsWith('/') ? rawPrefix : `${rawPrefix}/`;
  const limit = boundedInt(body.limit, 100, 'limit');
  const offset = boundedInt(body.offset, 0, 'offset');
  const sortBy = (body.sortBy ?? {}) as Record<string, unknown>;
  const column = typeof sortBy.column === 'string' ? sortBy.column : 'name';
  const order = typeof sortBy.order === 'string' ? sortBy.order.toLowerCase() : 'asc';
  if (!LIST_SORT_COLUMNS.has(column) || (order !== 'asc' && order !== 'desc')) throw errors.invalidRequest('Invalid sortBy');
  const search = typeof body.search === 'string' ? body.search : '';
  // Immediate children of the prefix: an entry is a file when nothing follows it, else a folder (virtual, id null).
  // The sort column and order come from the allow-lists above; every value is a parameter.
  const text =
    `SELECT name, id, updated_at, created_at, last_accessed_at, metadata FROM (` +
    ` SELECT DISTINCT ON (entry, is_folder) entry AS name, CASE WHEN is_folder THEN NULL ELSE id END AS id,` +
    `  CASE WHEN is_folder THEN NULL ELSE updated_at END AS updated_at, CASE WHEN is_folder THEN NULL ELSE created_at END AS created_at,` +
    `  CASE WHEN is_folder THEN NULL ELSE last_accessed_at END AS last_accessed_at, CASE WHEN is_folder THEN NULL ELSE metadata END AS metadata` +
    ` FROM (SELECT split_part(rest, '/', 1) AS entry, strpos(rest, '/') > 0 AS is_folder, o.*` +
    `   FROM (SELECT substr(name, length($2) + 1) AS rest, id, updated_at, created_at, last_accessed_at, metadata` +
    `     FROM storage.objects WHERE bucket_id = $1 AND left(name, length($2)) = $2) AS o) AS entries` +
    ` WHERE entry <> '' AND ($3 = '' OR entry ILIKE $3 || '%')` +
    ` ORDER BY entry, is_folder) AS listed` +
    ` ORDER BY ${column} ${order} NULLS FIRST, name COLLATE "C" LIMIT $4 OFFSET $5`;
  const rows = await transaction(call, callerOf(call), 'storage.object.list', async (sql) =>
    (await sql.query(text, [call.bucket, prefix, escapeLike(search), limit, offset])).rows,
  );
  call.reply.json(200, rows);
}

export async function moveObject(call: StorageCall): Promise<void> {
  const { bucketId, sourceKey, destinationBucket, destinationKey } = transferBody(call);
  const rows = await transaction(call, callerOf(call), 'storage.object.move', async (sql) =>
    (await sql.query<{ id: string }>(
      'UPDATE storage.objects SET bucket_id = $3, name = $4, last_accessed_at = now() WHERE bucket_id = $1 AND name = $2 RETURNING id',
      [bucketId, sourceKey, destinationBucket, destinationKey],
    )).rows,
  ).catch(databaseError);
  if (rows.length === 0) throw errors.noSuchKey();
  noteObjectEvent(call, 'object.moved', randomUUID(), destinationBucket, { id: rows[0].id, bucket_id: destinationBucket, name: destinationKey }, { id: rows[0].id, bucket_id: bucketId, name: sourceKey });
  call.reply.json(200, { message: 'Successfully moved', Id: rows[0].id, Key: `${destinationBucket}/${destinationKey}` });
}

export async function copyObject(call: StorageCall): Promise<void> {
  const { bucketId, sourceKey, destinationBucket, destinationKey, body } = transferBody(call);
  const caller = callerOf(call);
  const upsert = call.info.headers['x-upsert'] === 'true';
  const copyMetadata = body.copyMetadata !== false;
  const source = await transaction(call, caller, 'storage.object.copy', async (sql) =>
    (await sql.query<{ version: string | null; metadata: unknown; user_metadata: unknown }>(
      'SELECT version, metadata, user_metadata FROM storage.objects WHERE bucket_id = $1 AND name = $2',
      [bucketId, sourceKey],
    )).rows,
  );
  if (source.length === 0 || !source[0].version) throw errors.noSuchKey();
  const tenantId = call.tenant.settings.externalId;
  const version = randomUUID();
  const pending = await call.backend.copy(tenantId, source[0].version, version);
  const owner = typeof caller.claims.sub === 'string' ? caller.claims.sub : null;
  const conflict = upsert
    ? ' ON CONFLICT (bucket_id, name) DO UPDATE SET version = excluded.version, metadata = excluded.metadata, user_metadata = excluded.user_metadata, owner = excluded.owner, owner_id = excluded.owner_id'
    : '';
  let written: { id: string; old_version: string | null };
  try {
    written = await transaction(call, caller, 'storage.object.copy', async (sql) => {
      const { rows } = await sql.query<{ id: string; old_version: string | null }>(
        `WITH old AS (SELECT version FROM storage.objects WHERE bucket_id = $1 AND name = $2) ` +
          `INSERT INTO storage.objects (bucket_id, name, owner, owner_id, version, metadata, user_metadata) ` +
          `VALUES ($1, $2, CASE WHEN $3 ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN $3::uuid END, $3, $4, $5::jsonb, $6::jsonb)` +
          `${conflict} RETURNING id, (SELECT version FROM old) AS old_version`,
        [destinationBucket, destinationKey, owner, version, JSON.stringify(copiedMetadata(source[0].metadata, version)), copyMetadata ? JSON.stringify(source[0].user_metadata) : null],
      );
      await pending.publish();
      return rows[0];
    });
  } catch (err) {
    await pending.discard();
    throw isDatabaseError(err) ? fromDatabaseError(err) : err;
  }
  pending.settle();
  noteObjectEvent(call, written.old_version ? 'object.updated' : 'object.created', version, destinationBucket, { id: written.id, bucket_id: destinationBucket, name: destinationKey, owner_id: owner, version });
  if (written.old_version) await removeBlobs(call, [written.old_version]);
  call.reply.json(200, { Id: written.id, Key: `${destinationBucket}/${destinationKey}` });
}

/** `DELETE /object/B` with `{prefixes: [...]}`: the rows deleted (missing or hidden paths skipped), then their blobs. */
export async function removeObjects(call: StorageCall): Promise<void> {
  const body = jsonObject(call);
  const prefixes = body.prefixes;
  if (!Array.isArray(prefixes) || !prefixes.every((p) => typeof p === 'string')) throw errors.invalidRequest("body must have required property 'prefixes'");
  if (prefixes.length === 0 || prefixes.length > MAX_OBJECTS_PER_REQUEST) throw errors.invalidRequest(`At most ${MAX_OBJECTS_PER_REQUEST} objects can be deleted per request.`);
  const rows = await deleteRows(call, prefixes as string[]);
  call.reply.json(200, rows);
}

/** `DELETE /object/B/P`. */
export async function removeObject(call: StorageCall): Promise<void> {
  mustBeValidKey(call.key);
  const rows = await deleteRows(call, [call.key]);
  if (rows.length === 0) throw errors.noSuchKey();
  call.reply.json(200, { message: 'Successfully deleted' });
}

async function deleteRows(call: StorageCall, names: string[]): Promise<Record<string, unknown>[]> {
  const rows = await transaction(call, callerOf(call), 'storage.object.delete', async (sql) =>
    (await sql.query<Record<string, unknown>>(
      'DELETE FROM storage.objects WHERE bucket_id = $1 AND name = ANY($2::text[]) ' +
        'RETURNING bucket_id, name, owner, owner_id, id, updated_at, created_at, last_accessed_at, metadata, user_metadata, version',
      [call.bucket, names],
    )).rows,
  ).catch(databaseError);
  for (const row of rows) noteObjectEvent(call, 'object.removed', String(row.version ?? row.id), call.bucket, { id: row.id, bucket_id: row.bucket_id, name: row.name }, row);
  await removeBlobs(call, rows.map((r) => r.version).filter((v): v is string => typeof v === 'string'));
  return rows;
}

/** `POST /object/sign/B/P` `{expiresIn}`: a download URL, if the caller can read the object. */
export async function signOne(call: StorageCall): Promise<void> {
  mustBeValidKey(call.key);
  const body = jsonObject(call);
  const expiresIn = expiresInSeconds(body.expiresIn);
  const transform = transformFromBody(body.transform);
  const found = await visibleNames(call, [call.key]);
  if (!found.has(call.key)) throw errors.noSuchKey();
  const url = `${call.bucket}/${call.key}`;
  // With a transform the token carries it, and the URL is a render URL (upstream's signObjectUrl).
  const claims = transform ? { transformations: transformToString(transform), url, scope: 'download' } : { url, scope: 'download' };
  const token = await signToken(signingSecret(call), claims, expiresIn);
  call.reply.json(200, { signedURL: `/${transform ? 'render/image' : 'object'}/sign/${url}?token=${token}` });
}

/** `POST /object/sign/B` `{expiresIn, paths}`: one entry per path, a URL or the upstream error text. */
export async function signMany(call: StorageCall): Promise<void> {
  const body = jsonObject(call);
  const expiresIn = expiresInSeconds(body.expiresIn);
  const paths = body.paths;
  if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string')) throw errors.invalidRequest("body must have required property 'paths'");
  if (paths.length > MAX_OBJECTS_PER_REQUEST) throw errors.invalidRequest(`At most ${MAX_OBJECTS_PER_REQUEST} paths per request`);
  const found = await visibleNames(call, paths as string[]);
  const secret = signingSecret(call);
  const out = await Promise.all(
    (paths as string[]).map(async (path) => {
      if (!found.has(path)) return { error: 'Either the object does not exist or you do not have access to it', path, signedURL: null };
      const url = `${call.bucket}/${path}`;
      const token = await signToken(secret, { url, scope: 'download' }, expiresIn);
      return { error: null, path, signedURL: `/object/sign/${url}?token=${token}` };
    }),
  );
  call.reply.json(200, out);
}

/** `POST /object/upload/sign/B/P`: checks the caller may insert there, then a token for one upload. */
export async function signUpload(call: StorageCall): Promise<void> {
  mustBeValidKey(call.key);
  const caller = callerOf(call);
  const upsert = call.info.headers['x-upsert'] === 'true';
  const owner = typeof caller.claims.sub === 'string' ? caller.claims.sub : undefined;
  const probe = new Error('probe');
  await transaction(call, caller, 'storage.object.upload_sign', async (sql) => {
    const conflict = upsert ? ' ON CONFLICT (bucket_id, name) DO UPDATE SET version = excluded.version' : '';
    await sql.query(`INSERT INTO storage.objects (bucket_id, name, owner_id, version) VALUES ($1, $2, $3, $4)${conflict}`, [call.bucket, call.key, owner ?? null, randomUUID()]);
    throw probe;
  }).catch((err: unknown) => {
    if (err === probe) return;
    if (isDatabaseError(err) && err.code === '23503') throw errors.noSuchBucket();
    throw isDatabaseError(err) ? fromDatabaseError(err) : err;
  });
  const url = `${call.bucket}/${call.key}`;
  const token = await signToken(signingSecret(call), { owner, url, upsert, scope: 'upload' }, DEFAULT_UPLOAD_URL_SECONDS);
  call.reply.json(200, { url: `/object/upload/sign/${url}?token=${token}`, token });
}

async function visibleNames(call: StorageCall, names: string[]): Promise<Set<string>> {
  const rows = await transaction(call, callerOf(call), 'storage.object.sign', async (sql) =>
    (await sql.query<{ name: string }>('SELECT name FROM storage.objects WHERE bucket_id = $1 AND name = ANY($2::text[])', [call.bucket, names])).rows,
  );
  return new Set(rows.map((r) => r.name));
}

function transferBody(call: StorageCall) {
  const body = jsonObject(call);
  for (const field of ['bucketId', 'sourceKey', 'destinationKey']) {
    if (typeof body[field] !== 'string') throw errors.invalidRequest(`body must have required property '${field}'`);
  }
  const bucketId = mustBeValidBucketName(body.bucketId as string);
  const destinationBucket = typeof body.destinationBucket === 'string' ? mustBeValidBucketName(body.destinationBucket) : bucketId;
  return { bucketId, sourceKey: mustBeValidKey(body.sourceKey as string), destinationBucket, destinationKey: mustBeValidKey(body.destinationKey as string), body };
}

function databaseError(err: unknown): never {
  throw isDatabaseError(err) ? fromDatabaseError(err) : err;
}

function boundedInt(value: unknown, fallback: number, name: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw errors.invalidRequest(`body/${name} must be a non-negative integer`);
  return Math.min(value, 1_000_000);
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** A copy's system metadata: the source's, with the copy's own ETag and time. */
function copiedMetadata(metadata: unknown, version: string): Record<string, unknown> {
  const base = typeof metadata === 'object' && metadata !== null ? (metadata as Record<string, unknown>) : {};
  return { ...base, eTag: versionEtag(version), lastModified: new Date().toISOString() };
}
