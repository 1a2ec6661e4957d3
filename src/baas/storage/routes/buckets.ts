/**
 * `/bucket` routes (spec baas-api.md §4.1): list, get, create, update, empty, delete, each run as the caller so the
 * policies on storage.buckets (and storage.objects, for emptying) decide. Bodies and messages as upstream's
 * src/http/routes/bucket/.
 */
import { errors, fromDatabaseError, isDatabaseError } from '../errors.js';
import { isValidMimeTypePattern, mustBeValidBucketName, parseFileSizeLimit } from '../names.js';
import { callerOf, jsonObject, transaction, type StorageCall } from '../service.js';

const BUCKET_COLUMNS = 'id, name, owner, public, type, file_size_limit, allowed_mime_types, created_at, updated_at';
const SORT_COLUMNS = new Set(['id', 'name', 'created_at', 'updated_at']);

export async function listBuckets(call: StorageCall): Promise<void> {
  const q = call.info.query;
  const limit = optionalCount(q.get('limit'), 'limit');
  const offset = optionalCount(q.get('offset'), 'offset') ?? 0;
  const sortColumn = q.get('sortColumn') ?? 'name';
  const sortOrder = (q.get('sortOrder') ?? 'asc').toLowerCase();
  if (!SORT_COLUMNS.has(sortColumn)) throw errors.invalidRequest('querystring/sortColumn must be equal to one of the allowed values');
  if (sortOrder !== 'asc' && sortOrder !== 'desc') throw errors.invalidRequest('querystring/sortOrder must be equal to one of the allowed values');
  const search = q.get('search') ?? '';
  // The sort column and order come from the allow-lists above; every value is a parameter.
  const rows = await transaction(call, callerOf(call), 'storage.bucket.list', async (sql) =>
    (await sql.query(
      `SELECT ${BUCKET_COLUMNS} FROM storage.buckets WHERE ($1 = '' OR name ILIKE '%' || $1 || '%') ` +
        `ORDER BY ${sortColumn} ${sortOrder} LIMIT $2 OFFSET $3`,
      [escapeLike(search), limit, offset],
    )).rows,
  );
  call.reply.json(200, rows.map(bucketBody));
}

export async function getBucket(call: StorageCall): Promise<void> {
  const rows = await transaction(call, callerOf(call), 'storage.bucket.get', async (sql) =>
    (await sql.query(`SELECT ${BUCKET_COLUMNS} FROM storage.buckets WHERE id = $1`, [call.bucket])).rows,
  );
  if (rows.length === 0) throw errors.noSuchBucket();
  call.reply.json(200, bucketBody(rows[0]));
}

export async function createBucket(call: StorageCall): Promise<void> {
  const caller = callerOf(call);
  const body = jsonObject(call);
  if (typeof body.name !== 'string') throw errors.invalidRequest("body must have required property 'name'");
  const id = mustBeValidBucketName(typeof body.id === 'string' ? body.id : body.name);
  mustBeValidBucketName(body.name);
  const limits = bucketLimitsFrom(body);
  const sub = typeof caller.claims.sub === 'string' ? caller.claims.sub : null;
  await transaction(call, caller, 'storage.bucket.create', (sql) =>
    sql.query(
      `INSERT INTO storage.buckets (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types) ` +
        `VALUES ($1, $2, CASE WHEN $3 ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN $3::uuid END, $3, $4, $5, $6)`,
      [id, body.name, sub, body.public === true, limits.fileSizeLimit ?? null, limits.allowedMimeTypes ?? null],
    ),
  ).catch((err: unknown) => {
    throw isDatabaseError(err) ? fromDatabaseError(err, errors.bucketExists) : err;
  });
  call.reply.json(200, { name: id });
}

export async function updateBucket(call: StorageCall): Promise<void> {
  const body = jsonObject(call);
  const limits = bucketLimitsFrom(body);
  const sets: string[] = [];
  const values: unknown[] = [call.bucket];
  const set = (column: string, value: unknown) => {
    values.push(value);
    sets.push(`${column} = $${values.length}`);
  };
  if (typeof body.public === 'boolean') set('public', body.public);
  if (limits.fileSizeLimit !== undefined) set('file_size_limit', limits.fileSizeLimit);
  if (limits.allowedMimeTypes !== undefined) set('allowed_mime_types', limits.allowedMimeTypes);
  set('updated_at', new Date().toISOString());
  const rows = await transaction(call, callerOf(call), 'storage.bucket.update', async (sql) =>
    (await sql.query(`UPDATE storage.buckets SET ${sets.join(', ')} WHERE id = $1 RETURNING id`, values)).rows,
  );
  if (rows.length === 0) throw errors.noSuchBucket();
  call.reply.json(200, { message: 'Successfully updated' });
}

/** Deletes every object the caller may delete in the bucket, then their blobs once the rows are gone. */
export async function emptyBucket(call: StorageCall): Promise<void> {
  const versions = await transaction(call, callerOf(call), 'storage.bucket.empty', async (sql) => {
    const found = await sql.query('SELECT 1 FROM storage.buckets WHERE id = $1', [call.bucket]);
    if (found.rowCount === 0) throw errors.noSuchBucket();
    const { rows } = await sql.query<{ version: string | null }>('DELETE FROM storage.objects WHERE bucket_id = $1 RETURNING version', [call.bucket]);
    return rows.map((r) => r.version).filter((v): v is string => v !== null);
  });
  await removeBlobs(call, versions);
  call.reply.json(200, { message: 'Successfully emptied' });
}

export async function deleteBucket(call: StorageCall): Promise<void> {
  const caller = callerOf(call);
  const deleted = await transaction(call, caller, 'storage.bucket.delete', async (sql) => {
    const { rows } = await sql.query('DELETE FROM storage.buckets WHERE id = $1 RETURNING id', [call.bucket]);
    return rows.length;
  }).catch((err: unknown) => {
    if (isDatabaseError(err) && err.code === '23503') throw errors.bucketNotEmpty();
    throw err;
  });
  if (deleted === 0) throw errors.noSuchBucket();
  call.reply.json(200, { message: 'Successfully deleted' });
}

export async function removeBlobs(call: StorageCall, versions: readonly string[]): Promise<void> {
  if (versions.length === 0) return;
  await call.backend.remove(call.tenant.settings.externalId, versions).catch((err: unknown) => {
    // The rows are gone; a blob left behind is only space, logged for the operator.
    call.tenant.log.warn({ err, error_code: 'StorageBlobRemoveFailed', request_id: call.requestId }, 'storage blob removal failed');
  });
}

function bucketBody(row: Record<string, unknown>): Record<string, unknown> {
  return { ...row, file_size_limit: row.file_size_limit === null ? null : Number(row.file_size_limit) };
}

function bucketLimitsFrom(body: Record<string, unknown>): { fileSizeLimit?: number | null; allowedMimeTypes?: string[] | null } {
  const out: { fileSizeLimit?: number | null; allowedMimeTypes?: string[] | null } = {};
  if ('file_size_limit' in body) out.fileSizeLimit = parseFileSizeLimit(body.file_size_limit);
  if ('allowed_mime_types' in body) {
    const types = body.allowed_mime_types;
    if (types === null) out.allowedMimeTypes = null;
    else if (!Array.isArray(types) || !types.every((t) => typeof t === 'string' && isValidMimeTypePattern(t))) {
      throw errors.invalidRequest('Invalid mime type format');
    } else out.allowedMimeTypes = types.length === 0 ? null : (types as string[]);
  }
  return out;
}

function optionalCount(value: string | null, name: string): number | null {
  if (value === null) return null;
  if (!/^\d{1,9}$/.test(value)) throw errors.invalidRequest(`querystring/${name} must be integer`);
  return Number(value);
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}
