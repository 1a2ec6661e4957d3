/**
 * What every storage route is handed: the server's storage settings and blob backend, and the request, its tenant,
 * its caller (null on routes that authorize by URL: public objects, signed URLs), its JSON body or its body stream.
 */
import type pg from 'pg';
import type { Readable } from 'node:stream';
import type { ModuleEvent } from '../../http/module-events.js';
import type { Reply, RequestInfo } from '../../http/respond.js';
import type { TenantRuntime } from '../../tenants/tenant.js';
import type { BlobBackend } from './blob/backend.js';
import { inTransaction, type Caller, type Sql } from './db.js';
import { errors } from './errors.js';

export interface StorageSettings {
  fileSizeLimit: number;
  /** Uploads declaring at most this many bytes are read first and stored in one transaction (routes/upload.ts). */
  smallUploadBytes: number;
  statementTimeoutMs: number;
}

export interface StorageCall {
  settings: StorageSettings;
  backend: BlobBackend;
  tenant: TenantRuntime;
  reply: Reply;
  info: RequestInfo;
  method: string;
  /** Path parameters, percent-decoded: the bucket id and the object key where the route has them. */
  bucket: string;
  key: string;
  caller: Caller | null;
  /** A JSON route's body (null when empty). */
  json: unknown;
  /** An upload route's body, streamed from the socket. */
  body: Readable | null;
  requestId: string;
  /** Object events of changes that committed (pushed after COMMIT), emitted by module.ts when the handler is done. */
  events: ModuleEvent[];
}

/**
 * Notes a committed object change for function triggers. `id` is the event id: the written version for a write (a
 * fresh UUID per write), the removed version for a removal, a fresh UUID for a move.
 */
export function noteObjectEvent(call: StorageCall, type: 'object.created' | 'object.updated' | 'object.removed' | 'object.moved', id: string, bucket: string, record: Record<string, unknown>, oldRecord?: Record<string, unknown>): void {
  call.events.push({ kind: 'storage', type, id: `${type}:${id}`, scope: bucket, record, ...(oldRecord ? { old_record: oldRecord } : {}), occurred_at: new Date().toISOString() });
}

/** The caller of a route that requires one. */
export function callerOf(call: StorageCall): Caller {
  if (!call.caller) throw errors.accessDenied('Access denied: JWT is not authenticated');
  return call.caller;
}

/** `work` in one transaction as `caller` (null = the pool's user, who passes RLS), tagged with `operation`. */
export async function transaction<T>(
  call: StorageCall,
  caller: Caller | null,
  operation: string,
  work: (sql: Sql) => Promise<T>,
  asPoolUser?: (sql: Sql) => Promise<void>,
): Promise<T> {
  const pool: pg.Pool = await call.tenant.database();
  return inTransaction(pool, caller, { method: call.method, path: call.info.url, operation, statementTimeoutMs: call.settings.statementTimeoutMs, asPoolUser }, work);
}

/** The JSON body as an object, or InvalidRequest. */
export function jsonObject(call: StorageCall): Record<string, unknown> {
  const body = call.json ?? {};
  if (typeof body !== 'object' || Array.isArray(body) || body === null) throw errors.invalidRequest('body must be object');
  return body as Record<string, unknown>;
}

export interface BucketLimits {
  id: string;
  public: boolean;
  file_size_limit: string | null;
  allowed_mime_types: string[] | null;
}

export const BUCKET_LIMITS_SQL = 'SELECT id, public, file_size_limit::text, allowed_mime_types FROM storage.buckets WHERE id = $1';

/** A bucket's public flag and limits, read as the pool's user (upstream reads them as super user too). */
export async function bucketLimits(call: StorageCall, bucketId: string): Promise<BucketLimits> {
  const rows = await transaction(call, null, 'storage.bucket.limits', async (sql) =>
    (await sql.query<BucketLimits>(BUCKET_LIMITS_SQL, [bucketId])).rows,
  );
  if (rows.length === 0) throw errors.noSuchBucket();
  return rows[0];
}
