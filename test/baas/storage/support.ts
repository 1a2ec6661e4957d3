import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import WebSocket from 'ws';
import S3rver from 's3rver';
import { findFreePort } from '../../../src/db/embedded-postgres.js';
import { startTestServer, type TestServer } from '../../support/server.js';

export type StorageBackendKind = 'file' | 's3';
const S3_BUCKET = 'performer-test';

export const U1 = '00000000-0000-0000-0000-0000000000b1';
export const U2 = '00000000-0000-0000-0000-0000000000b2';

/** Supabase's documented "own folder" policy (spec §4.7) on a private bucket `docs`. */
export const OWN_FOLDER_POLICIES = `
create policy "own folder" on storage.objects for all to authenticated
  using (bucket_id = 'docs' and (storage.foldername(name))[1] = auth.uid()::text)
  with check (bucket_id = 'docs' and (storage.foldername(name))[1] = auth.uid()::text);
create policy "avatars own folder" on storage.objects for all to authenticated
  using (bucket_id = 'avatars' and (storage.foldername(name))[1] = auth.uid()::text)
  with check (bucket_id = 'avatars' and (storage.foldername(name))[1] = auth.uid()::text);
`;

export interface StorageWorld {
  t: TestServer;
  admin: pg.Client;
  storageDir: string;
  anon: SupabaseClient;
  svc: SupabaseClient;
  u1: SupabaseClient;
  u2: SupabaseClient;
  u1Token: string;
  u2Token: string;
  /** A raw request to /storage/v1 with the given headers (no apikey unless given). */
  raw(path: string, init?: RequestInit): Promise<Response>;
  /**
   * Every file the backend keeps: blobs and temp files on disk, or s3rver's objects. s3rver does not implement
   * AbortMultipartUpload, so the parts of an aborted multipart upload (`._S3rver_uploads`) are left out here and
   * reported by `uploadsInFlight()`; real S3 deletes them on the abort lib-storage sends.
   */
  files(): Promise<string[]>;
  /** Whether some upload has bytes at the backend that are not an object yet (a temp file, multipart parts). */
  uploadsInFlight(): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * A server with its storage on `backend`: the file backend in a temp dir, or S3 on an s3rver started here, which
 * keeps its objects in a temp dir too, so `files()` sees what either backend stored.
 */
export async function startStorageWorld(env: Record<string, string> = {}, policies = OWN_FOLDER_POLICIES, backend: StorageBackendKind = 'file'): Promise<StorageWorld> {
  const storageDir = await mkdtemp(path.join(tmpdir(), 'performer-storage-'));
  let s3: S3rver | null = null;
  let backendEnv: Record<string, string> = { STORAGE_DIR: storageDir };
  if (backend === 's3') {
    const port = await findFreePort();
    s3 = new S3rver({ address: '127.0.0.1', port, directory: storageDir, silent: true, configureBuckets: [{ name: S3_BUCKET, configs: [] }] });
    await s3.run();
    // The AWS SDK takes credentials from the environment, as in production.
    process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
    process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
    backendEnv = { STORAGE_BACKEND: 's3', STORAGE_S3_ENDPOINT: `http://127.0.0.1:${port}`, STORAGE_S3_BUCKET: S3_BUCKET, STORAGE_S3_REGION: 'us-east-1' };
  }
  // The suites make hundreds of requests in a few seconds: above the default request rate limit.
  const t = await startTestServer({ TENANT_MAX_EVENTS_PER_SECOND: '100000', ...backendEnv, ...env });
  // The first request migrates the tenant database (the storage schema among it).
  await fetch(`${t.url}/rest/v1/`, { headers: { apikey: t.anonKey } });
  const admin = new pg.Client({ connectionString: t.db.url });
  await admin.connect();
  await waitForStorageSchema(admin);
  await admin.query(policies);
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const u1Token = await t.sign({ sub: U1, role: 'authenticated', aud: 'authenticated', exp });
  const u2Token = await t.sign({ sub: U2, role: 'authenticated', aud: 'authenticated', exp });
  const client = (key: string, token?: string) =>
    createClient(t.url, key, {
      auth: { persistSession: false, autoRefreshToken: false },
      realtime: { transport: WebSocket as never },
      ...(token ? { global: { headers: { Authorization: `Bearer ${token}` } } } : {}),
    }) as SupabaseClient;
  return {
    t,
    admin,
    storageDir,
    anon: client(t.anonKey),
    svc: client(t.serviceKey),
    u1: client(t.anonKey, u1Token),
    u2: client(t.anonKey, u2Token),
    u1Token,
    u2Token,
    raw: (p, init = {}) => fetch(`${t.url}/storage/v1${p}`, init),
    files: async () => (await listFiles(storageDir)).filter((f) => !f.includes('._S3rver_uploads')),
    uploadsInFlight: async () => (await listFiles(storageDir)).some((f) => f.includes('/.tmp/') || f.includes('._S3rver_uploads')),
    async stop() {
      await admin.end();
      await t.stop();
      await s3?.close();
      await rm(storageDir, { recursive: true, force: true });
    },
  };
}

async function waitForStorageSchema(admin: pg.Client): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await admin.query(`select to_regclass('storage.objects') is not null as ok`);
    if (rows[0].ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('storage schema never appeared');
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.join(entry.parentPath, entry.name));
  }
  return out;
}
