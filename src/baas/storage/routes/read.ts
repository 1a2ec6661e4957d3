/**
 * Reading objects (spec baas-api.md §4.3): `GET|HEAD /object/B/P` and `/object/authenticated/B/P` as the caller
 * (RLS SELECT), `/object/public/B/P` for public buckets without a token, `/object/sign/B/P?token=` by the token
 * alone; `/object/info/…` for metadata. Bodies stream from the backend with Range (206), ETag/If-None-Match and
 * If-Modified-Since (304), Last-Modified, and `?download` as an attachment.
 */
import type { Caller } from '../db.js';
import { errors } from '../errors.js';
import { sendStream } from '../http/send.js';
import { mustBeValidKey } from '../names.js';
import { bucketLimits, callerOf, transaction, type StorageCall } from '../service.js';
import { verifyToken, type SignedToken } from '../tokens.js';
import { signingSecret } from './upload.js';

interface ObjectRow {
  id: string;
  name: string;
  bucket_id: string;
  version: string | null;
  metadata: Record<string, unknown> | null;
  user_metadata: unknown;
  created_at: Date;
  updated_at: Date;
  last_accessed_at: Date;
}

export type Access = 'caller' | 'public' | 'signed';

export const readAuthenticated = (call: StorageCall) => serveObject(call, 'caller');
export const readPublic = (call: StorageCall) => serveObject(call, 'public');
export const readSigned = (call: StorageCall) => serveObject(call, 'signed');
export const infoAuthenticated = (call: StorageCall) => serveInfo(call, 'caller');
export const infoPublic = (call: StorageCall) => serveInfo(call, 'public');

export interface FoundObject {
  row: ObjectRow;
  /** The verified token of a signed URL. */
  token: SignedToken | null;
}

/** The object row, found as `access` allows; NoSuchKey when absent or hidden. */
export async function findObject(call: StorageCall, access: Access): Promise<FoundObject> {
  mustBeValidKey(call.key);
  let caller: Caller | null = null;
  let signed: SignedToken | null = null;
  if (access === 'caller') caller = callerOf(call);
  else if (access === 'public') {
    // A private or missing bucket reads as missing, as upstream's.
    const bucket = await bucketLimits(call, call.bucket).catch(() => null);
    if (!bucket?.public) throw errors.noSuchBucket();
  } else {
    const token = call.info.query.get('token');
    if (!token) throw errors.invalidSignature('Missing token');
    signed = await verifyToken(signingSecret(call), token, `${call.bucket}/${call.key}`, 'download');
  }
  const rows = await transaction(call, caller, 'storage.object.get', async (sql) =>
    (await sql.query<ObjectRow>(
      'SELECT id, name, bucket_id, version, metadata, user_metadata, created_at, updated_at, last_accessed_at FROM storage.objects WHERE bucket_id = $1 AND name = $2',
      [call.bucket, call.key],
    )).rows,
  );
  if (rows.length === 0) throw errors.noSuchKey();
  return { row: rows[0], token: signed };
}

async function serveObject(call: StorageCall, access: Access): Promise<void> {
  const { row } = await findObject(call, access);
  const meta = row.metadata ?? {};
  const size = typeof meta.size === 'number' ? meta.size : 0;
  const etag = typeof meta.eTag === 'string' ? meta.eTag : null;
  const lastModified = new Date(typeof meta.lastModified === 'string' ? meta.lastModified : row.updated_at);
  const { reply, info } = call;
  reply.header('cache-control', typeof meta.cacheControl === 'string' ? meta.cacheControl : 'no-cache');
  reply.header('accept-ranges', 'bytes');
  if (etag) reply.header('etag', etag);
  reply.header('last-modified', lastModified.toUTCString());
  const download = info.query.get('download');
  if (download !== null) reply.header('content-disposition', attachment(download || row.name.split('/').pop() || row.name));
  const contentType = typeof meta.mimetype === 'string' ? meta.mimetype : 'application/octet-stream';
  if (notModified(info.headers, etag, lastModified)) return reply.send(304);
  const range = parseRange(info.headers.range, size);
  if (range === 'unsatisfiable') {
    reply.header('content-range', `bytes */${size}`);
    throw errors.invalidRange();
  }
  if (!row.version) throw errors.noSuchKey();
  const head = call.method === 'HEAD';
  if (range) reply.header('content-range', `bytes ${range.start}-${range.end}/${size}`);
  const length = range ? range.end - range.start + 1 : size;
  const source = head || length === 0 ? null : await call.backend.read(call.tenant.settings.externalId, row.version, range ?? undefined);
  if (reply.aborted) return void source?.destroy();
  await sendStream(reply, range ? 206 : 200, contentType, head ? null : source, length);
}

async function serveInfo(call: StorageCall, access: Access): Promise<void> {
  const { row } = await findObject(call, access);
  const meta = row.metadata ?? {};
  call.reply.json(200, {
    id: row.id,
    name: row.name,
    version: row.version,
    bucket_id: row.bucket_id,
    size: meta.size ?? null,
    content_type: meta.mimetype ?? null,
    cache_control: meta.cacheControl ?? null,
    etag: meta.eTag ?? null,
    metadata: row.user_metadata ?? null,
    last_modified: meta.lastModified ?? row.updated_at,
    created_at: row.created_at,
  });
}

/** If-None-Match (an ETag list or `*`) first; If-Modified-Since only without it, as HTTP says. */
function notModified(headers: Record<string, string>, etag: string | null, lastModified: Date): boolean {
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    if (etag === null) return false;
    const bare = etag.replace(/^W\//, '');
    return ifNoneMatch.split(',').some((t) => t.trim() === '*' || t.trim().replace(/^W\//, '') === bare);
  }
  const since = headers['if-modified-since'];
  if (since === undefined) return false;
  const t = Date.parse(since);
  return !Number.isNaN(t) && Math.floor(lastModified.getTime() / 1000) <= Math.floor(t / 1000);
}

/**
 * One `bytes=` range (`a-b`, `a-`, `-n`) within `size`; null for no or an unparsable header (serve everything, as
 * HTTP allows), 'unsatisfiable' for a range past the end. Several ranges are served whole.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  // An empty object has no byte to select: it is served whole (empty), as a range could not describe it.
  if (header === undefined || size === 0) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** A Content-Disposition that survives any file name: ASCII fallback plus the RFC 5987 encoded form. */
function attachment(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}
