/**
 * What a crashed server leaves in storage, and the sweep that collects it: a Performer process (src/main.ts) is
 * killed with SIGKILL at the two points an upload can die without cleaning up, then started again, and its start-up
 * sweep must remove the leftovers (once they are older than the sweep's bounds: the test ages them, as waiting hours
 * is not an option) and nothing else.
 *  - Between publishing the blob and COMMIT: a deferred constraint trigger makes the upload's COMMIT wait on an
 *    advisory lock this test holds; the process is killed there and its transaction terminated, so the blob is
 *    published (at its key) and no row names it.
 *  - Mid-body (file backend): the temp file with the bytes received so far.
 */
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signHs256 } from '../../../src/auth/jwt.js';
import { findFreePort } from '../../../src/db/embedded-postgres.js';
import { FileBlobBackend } from '../../../src/baas/storage/blob/file.js';
import { S3BlobBackend } from '../../../src/baas/storage/blob/s3.js';
import { ORPHAN_AGE_MS, STALE_TEMP_MS, sweepLeftovers } from '../../../src/baas/storage/sweeper.js';
import { killHard, startPerformerProcess } from '../../support/performer-process.js';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.js';
import { TEST_SECRET } from '../../support/server.js';
import type { StorageBackendKind } from './support.js';

const S3_BUCKET = 'performer-crash';
const LOCK = 718_281;

export function storageCrashes(backend: StorageBackendKind): void {
  let db: TestDatabase;
  let admin: pg.Client;
  let s3: S3rver | null = null;
  let root = '';
  let proc: ChildProcess | null = null;
  let port = 0;
  let env: Record<string, string> = {};
  let key = '';
  const dataDir = () => path.join(root, 'data');
  const blobDir = () => path.join(root, 'blobs');

  beforeAll(async () => {
    db = await createTestDatabase('crash');
    root = await mkdtemp(path.join(os.tmpdir(), 'performer-crash-'));
    await chmod(root, 0o755);
    await mkdir(blobDir());
    env = { STORAGE_DIR: blobDir(), API_JWT_SECRET: 'crash-test-management-secret-with-32-chars' };
    if (backend === 's3') {
      s3 = new S3rver({ address: '127.0.0.1', port: await findFreePort(), directory: blobDir(), silent: true, configureBuckets: [{ name: S3_BUCKET, configs: [] }] });
      const { port: s3Port } = await s3.run();
      env = { ...env, STORAGE_BACKEND: 's3', STORAGE_S3_ENDPOINT: `http://127.0.0.1:${s3Port}`, STORAGE_S3_BUCKET: S3_BUCKET, STORAGE_S3_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
    }
    port = await findFreePort();
    key = await signHs256({ role: 'service_role', exp: Math.floor(Date.now() / 1000) + 3600 }, TEST_SECRET);
    await start();
    admin = new pg.Client({ connectionString: db.url });
    admin.on('error', () => undefined);
    await admin.connect();
    const made = await api('/bucket', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'b' }) });
    expect(made.status).toBe(200);
  }, 120_000);

  afterAll(async () => {
    if (proc) await killHard(proc);
    await admin?.end().catch(() => undefined);
    await s3?.close();
    await db?.drop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  async function start(): Promise<void> {
    proc = await startPerformerProcess(port, db.url, dataDir(), env);
    // The first request starts the tenant (its database, migrations, and its children: the storage sweeper).
    expect((await api('/bucket')).status).toBe(200);
  }

  function api(p: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`http://127.0.0.1:${port}/storage/v1${p}`, { ...init, headers: { apikey: key, authorization: `Bearer ${key}`, ...init.headers } });
  }

  /** Every file of the backend's store, relative to it, with s3rver's bookkeeping (metadata, md5) left out. */
  async function files(): Promise<string[]> {
    const out: string[] = [];
    for (const e of await readdir(blobDir(), { withFileTypes: true, recursive: true })) {
      if (e.isFile() && !/\._S3rver_(metadata\.json|object\.md5)$/.test(e.name)) out.push(path.relative(blobDir(), path.join(e.parentPath, e.name)));
    }
    return out.sort();
  }

  /** The file holding the bytes of object version `version`. */
  const blobOf = async (version: string) => (await files()).find((f) => f.includes(version) && !f.includes('.tmp'));

  async function until(check: () => Promise<boolean>, what: string, tries = 400): Promise<void> {
    for (let i = 0; i < tries; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`gave up waiting for ${what}`);
  }

  async function age(file: string, ms: number): Promise<void> {
    const then = new Date(Date.now() - ms);
    await utimes(path.join(blobDir(), file), then, then);
  }

  const versionOf = async (name: string) =>
    (await admin.query<{ version: string }>('SELECT version FROM storage.objects WHERE bucket_id = $1 AND name = $2', ['b', name])).rows[0]?.version;

  describe(`storage crash leftovers (${backend} backend)`, () => {
    it('removes, at the next start-up, a blob published by a process killed before its COMMIT, and keeps blobs with rows and fresh ones', async () => {
      expect((await api('/object/b/kept.bin', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(300_000, 1) })).status).toBe(200);
      const kept = (await versionOf('kept.bin'))!;
      expect(await blobOf(kept)).toBeDefined();

      // The upload's COMMIT waits for this session's advisory lock (a deferred trigger runs at COMMIT).
      await admin.query(`
        CREATE FUNCTION public.crash_wait() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock(${LOCK}); RETURN NULL; END $$;
        CREATE CONSTRAINT TRIGGER crash_wait AFTER INSERT ON storage.objects DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW WHEN (NEW.name = 'crash.bin') EXECUTE FUNCTION public.crash_wait();
        SELECT pg_advisory_lock(${LOCK});`);
      const upload = api('/object/b/crash.bin', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(2_000_000, 2) });
      upload.catch(() => undefined);
      let waiting = 0;
      await until(async () => {
        const { rows } = await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'`);
        waiting = rows[0]?.pid ?? 0;
        return waiting !== 0;
      }, 'the upload to wait at COMMIT');
      const before = await files();
      await killHard(proc!);
      proc = null;
      // The killed process's transaction must not commit when the lock goes: end it, as a lost connection would.
      await admin.query('SELECT pg_terminate_backend($1)', [waiting]);
      await admin.query(`SELECT pg_advisory_unlock(${LOCK}); DROP TRIGGER crash_wait ON storage.objects; DROP FUNCTION public.crash_wait();`);
      await expect(upload).rejects.toThrow();

      expect(await versionOf('crash.bin')).toBeUndefined();
      const orphans = before.filter((f) => !f.includes(kept) && !f.includes('.tmp'));
      expect(orphans).toHaveLength(1);
      const [orphan] = orphans;
      // Aged past the bound, as is the kept blob: only the missing row tells them apart.
      await age(orphan!, ORPHAN_AGE_MS + 60_000);
      await age((await blobOf(kept))!, ORPHAN_AGE_MS + 60_000);
      // A blob no row names yet that was written just now: another server's upload on its way to COMMIT.
      const fresh = '0fffffff-1111-4222-8333-444444444444';
      await writeBlob(fresh);

      await start();
      await until(async () => !(await files()).includes(orphan!), 'the start-up sweep to remove the orphan');
      expect(await blobOf(kept)).toBeDefined();
      expect(await blobOf(fresh)).toBeDefined();
      const res = await api('/object/b/kept.bin');
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.alloc(300_000, 1))).toBe(true);
    }, 120_000);

    // S3: a process killed mid-body leaves an unfinished multipart upload, which s3rver can neither list nor abort.
    if (backend === 'file') it('removes, at the next start-up, the temp file of a process killed mid-upload once it is stale', async () => {
      const socket = connect(port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      socket.on('error', () => undefined);
      socket.write(`POST /storage/v1/object/b/cut.bin HTTP/1.1\r\nhost: 127.0.0.1\r\napikey: ${key}\r\nauthorization: Bearer ${key}\r\ncontent-type: application/octet-stream\r\ncontent-length: ${8 * 2 ** 20}\r\n\r\n`);
      socket.write(Buffer.alloc(2 ** 20, 3));
      let temp = '';
      await until(async () => {
        temp = (await files()).find((f) => f.includes('/.tmp/')) ?? '';
        return temp !== '' && (await stat(path.join(blobDir(), temp))).size > 0;
      }, 'bytes in a temp file');
      await killHard(proc!);
      proc = null;
      socket.destroy();
      expect(await files()).toContain(temp);
      await age(temp, STALE_TEMP_MS + 60_000);

      await start();
      await until(async () => !(await files()).includes(temp), 'the start-up sweep to remove the temp file');
      expect(await versionOf('cut.bin')).toBeUndefined();
    }, 120_000);

    it('sweeps at most a bound of blobs a pass, resuming after the last one seen, until all were looked at', async () => {
      const store = backend === 'file' ? new FileBlobBackend(blobDir()) : s3Backend();
      const tenant = await tenantDir();
      const orphans = ['c1', 'c2', 'c3', 'c4', 'c5'].map((p) => `${p}000000-0000-4000-8000-000000000000`);
      for (const version of orphans) await writeBlob(version);
      expect((await api('/object/b/last.bin', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(300_000, 4) })).status).toBe(200);
      const kept = (await versionOf('last.bin'))!;
      const named = (await admin.query<{ version: string }>('SELECT version FROM storage.objects')).rows.map((r) => r.version);
      const later = Date.now() + ORPHAN_AGE_MS + 60_000;
      let cursor: string | null = null;
      const seen: number[] = [];
      for (let pass = 0; pass < 20; pass++) {
        const result = await sweepLeftovers(store, tenant, admin, cursor, { now: later, blobsPerPass: 2 });
        seen.push(result.orphans);
        cursor = result.cursor;
        if (cursor === null) break;
        expect(result.more).toBe(true);
      }
      expect(cursor).toBeNull();
      expect(seen.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(orphans.length);
      expect(Math.max(...seen)).toBeLessThanOrEqual(2);
      const left = (await store.list(tenant, null, 1000)).map((b) => b.key).sort();
      // Exactly the blobs rows name are left (the fresh blob of the first test had no row: an hour later it went too).
      expect(left).toEqual([...named].sort());
      expect(left).toContain(kept);
      await store.close();
    }, 60_000);
  });

  function s3Backend(): S3BlobBackend {
    process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
    process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
    return new S3BlobBackend({ endpoint: env.STORAGE_S3_ENDPOINT!, bucket: S3_BUCKET, region: 'us-east-1', forcePathStyle: true });
  }

  /** Bytes at `version` as the backend would publish them, written now. */
  async function writeBlob(version: string): Promise<void> {
    const tenant = await tenantDir();
    if (backend === 'file') {
      await mkdir(path.join(blobDir(), tenant, version.slice(0, 2)), { recursive: true });
      await writeFile(path.join(blobDir(), tenant, version.slice(0, 2), version), 'in flight');
      return;
    }
    const client = new S3Client({ endpoint: env.STORAGE_S3_ENDPOINT, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    await client.send(new PutObjectCommand({ Bucket: S3_BUCKET, Key: `${tenant}/${version}`, Body: 'in flight' }));
    client.destroy();
  }

  /** The tenant's directory in the store (its external id). */
  async function tenantDir(): Promise<string> {
    const top = backend === 'file' ? blobDir() : path.join(blobDir(), S3_BUCKET);
    const dirs = (await readdir(top, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.'));
    expect(dirs).toHaveLength(1);
    return dirs[0]!.name;
  }
}
