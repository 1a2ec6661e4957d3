import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../../support/server.js';

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
  /** Every file under the storage directory (blobs and temp files). */
  files(): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startStorageWorld(env: Record<string, string> = {}, policies = OWN_FOLDER_POLICIES): Promise<StorageWorld> {
  const storageDir = await mkdtemp(path.join(tmpdir(), 'performer-storage-'));
  const t = await startTestServer({ STORAGE_DIR: storageDir, ...env });
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
    files: () => listFiles(storageDir),
    async stop() {
      await admin.end();
      await t.stop();
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
