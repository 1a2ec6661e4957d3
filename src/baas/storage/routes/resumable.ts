/**
 * Resumable uploads (TUS 1.0) at `/upload/resumable`, as Supabase offers them, with `@tus/server`: the protocol
 * (creation, HEAD offsets, PATCH appends, termination) is the library's; the parts of an unfinished upload live in a
 * per-tenant `@tus/file-store` directory under STORAGE_DIR. Storage's rules sit in its hooks:
 *  - creation (`Upload-Metadata`: bucketName, objectName, contentType, cacheControl) checks the key, the bucket's
 *    size limit and MIME types, and that the caller may write there (the probe insert), then records the caller;
 *  - every later request must come from that same caller;
 *  - the last PATCH streams the finished file through the normal upload path (blob, then row as the caller, one
 *    transaction) and deletes the parts.
 * Requests reach the library as web Requests whose body streams from the uWS socket, and the caller rides along in
 * a header this module always overwrites, naming the request in a map only this module fills.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import { Server, type ServerOptions } from '@tus/server';
import { errors, StorageError } from '../errors.js';
import { mimeTypeAllowed } from '../names.js';
import type { StorageCall } from '../service.js';
import { checkMayWrite, storeStream, uploadLimits, type UploadTarget } from './upload.js';

export const RESUMABLE_PATH = '/storage/v1/upload/resumable';
const CALL_HEADER = 'x-performer-storage-call';
const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Unfinished uploads older than this are the file store's to expire (as upstream's default, a day). */
const UPLOAD_EXPIRY_MS = 24 * 60 * 60 * 1000;

/** What the hooks read of a TUS upload (the library's Upload). */
interface TusUpload {
  id: string;
  size?: number;
  metadata?: Record<string, string | null>;
}

type Hooked = Required<Pick<ServerOptions, 'onUploadCreate' | 'onUploadFinish' | 'onIncomingRequest'>>;

export class ResumableUploads {
  private readonly servers = new Map<string, { server: Server; store: FileStore }>();
  private readonly calls = new Map<string, StorageCall>();

  constructor(private readonly root: string) {}

  async handle(call: StorageCall): Promise<void> {
    const server = this.serverFor(call);
    const nonce = randomUUID();
    this.calls.set(nonce, call);
    try {
      const headers = new Headers();
      for (const [name, value] of Object.entries(call.info.headers)) if (name !== CALL_HEADER) headers.set(name, value);
      headers.set(CALL_HEADER, nonce);
      const query = call.info.query.toString();
      const url = `http://${call.info.headers.host ?? 'localhost'}${call.info.url}${query ? `?${query}` : ''}`;
      const withBody = call.body !== null && (call.method === 'PATCH' || call.method === 'POST');
      const request = new Request(url, {
        method: call.method,
        headers,
        ...(withBody ? { body: Readable.toWeb(call.body!) as ReadableStream, duplex: 'half' } : {}),
      } as RequestInit);
      const response = await server.handleWeb(request);
      const body = await response.text();
      response.headers.forEach((value, name) => {
        if (name !== 'content-length' && !name.startsWith('access-control-')) call.reply.header(name, value);
      });
      call.reply.send(response.status, body, response.headers.get('content-type') ?? undefined);
    } finally {
      this.calls.delete(nonce);
    }
  }

  /** Deletes a tenant's resumable uploads that expired unfinished; how many went. */
  async sweep(tenant: string): Promise<number> {
    return (await this.servers.get(tenant)?.server.cleanUpExpiredUploads().catch(() => 0)) ?? 0;
  }

  private serverFor(call: StorageCall): Server {
    return this.tenantTus(call).server;
  }

  private tenantTus(call: StorageCall): { server: Server; store: FileStore } {
    const tenant = call.tenant.settings.externalId;
    const known = this.servers.get(tenant);
    if (known) return known;
    const store = new FileStore({ directory: path.join(this.root, tenant, '.tus'), expirationPeriodInMilliseconds: UPLOAD_EXPIRY_MS });
    const server = new Server({
      path: RESUMABLE_PATH,
      datastore: store,
      maxSize: call.settings.fileSizeLimit,
      namingFunction: () => randomUUID(),
      // Only ids this module generated: anything else could name a path outside the store's directory.
      getFileIdFromRequest: (req) => {
        const id = new URL(req.url).pathname.slice(RESUMABLE_PATH.length + 1);
        return UPLOAD_ID.test(id) ? id : undefined;
      },
      generateUrl: (_req, { proto, host, id }) => `${proto}://${host}${RESUMABLE_PATH}/${id}`,
      ...this.hooks(),
    });
    this.servers.set(tenant, { server, store });
    return { server, store };
  }

  private callOf(req: { headers: Headers }): StorageCall {
    const call = this.calls.get(req.headers.get(CALL_HEADER) ?? '');
    if (!call?.caller) throw tusError(errors.accessDenied('Access denied: JWT is not authenticated'));
    return call;
  }

  private hooks(): Hooked {
    return {
      onUploadCreate: async (req, upload) => {
        const call = this.callOf(req);
        const caller = call.caller!;
        const meta = upload.metadata ?? {};
        const target = targetOf(call, meta, call.info.headers['x-upsert'] === 'true');
        try {
          const { limit, allowed } = await uploadLimits(call, target);
          if (upload.size !== undefined && upload.size > limit) throw errors.entityTooLarge();
          const mimeType = meta.contentType || 'application/octet-stream';
          if (!mimeTypeAllowed(mimeType, allowed)) throw errors.invalidMimeType(mimeType);
          await checkMayWrite(call, target);
        } catch (err) {
          throw tusError(err);
        }
        return { metadata: { ...meta, performerOwner: ownerKey(call), performerRole: caller.role, performerUpsert: String(target.upsert) } };
      },
      onIncomingRequest: async (req, uploadId) => {
        const call = this.callOf(req);
        if (call.method === 'POST' || !uploadId) return;
        const upload = await this.serverFor(call).datastore.getUpload(uploadId).catch(() => null);
        if (upload && upload.metadata?.performerOwner !== ownerKey(call)) throw tusError(errors.accessDenied('Access denied: the upload belongs to another caller'));
      },
      onUploadFinish: async (req, upload) => {
        const call = this.callOf(req);
        try {
          await this.finish(call, upload);
        } catch (err) {
          if (!(err instanceof StorageError)) call.tenant.log.error({ err, error_code: 'StorageResumableFailed', request_id: call.requestId }, 'resumable upload failed');
          throw tusError(err);
        }
        return {};
      },
    };
  }

  private async finish(call: StorageCall, upload: TusUpload): Promise<void> {
    const meta = upload.metadata ?? {};
    const target = targetOf(call, meta, meta.performerUpsert === 'true');
    const { limit } = await uploadLimits(call, target);
    const { store } = this.tenantTus(call);
    const stream = store.read(upload.id) as Readable;
    await storeStream(call, target, {
      stream,
      mimeType: meta.contentType || 'application/octet-stream',
      cacheControl: meta.cacheControl ? `max-age=${meta.cacheControl}` : 'no-cache',
      userMetadata: meta.metadata ? safeJson(meta.metadata) : undefined,
    }, limit);
    await store.remove(upload.id).catch(() => undefined);
  }
}

function targetOf(call: StorageCall, meta: Record<string, string | null>, upsert: boolean): UploadTarget {
  const bucket = meta.bucketName;
  const key = meta.objectName;
  if (!bucket || !key) throw tusError(errors.invalidRequest('Upload-Metadata must name bucketName and objectName'));
  const sub = call.caller?.claims.sub;
  return { bucket, key, upsert, caller: call.caller, owner: typeof sub === 'string' ? sub : null };
}

/** Who may continue an upload: the same subject with the same role (service_role and anon have no subject). */
function ownerKey(call: StorageCall): string {
  const sub = call.caller?.claims.sub;
  return `${call.caller?.role ?? ''}:${typeof sub === 'string' ? sub : ''}`;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A hook's refusal as the library sends it: the status and Storage's error body. */
function tusError(err: unknown): { status_code: number; body: string } {
  const e = err instanceof StorageError ? err : errors.internal();
  return { status_code: e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : e.httpStatus, body: JSON.stringify(e.body()) };
}
