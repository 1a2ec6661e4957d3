/** Spec baas-api.md §9.2 checks 48-62, with unmodified supabase-js against /storage/v1. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStorageWorld, type StorageBackendKind, U1, U2, type StorageWorld } from './support.js';

/** The suite, run against each blob backend by its own test file. */
export function storageChecks(backend: StorageBackendKind, env: Record<string, string> = {}): void {
  let w: StorageWorld;
  beforeAll(async () => {
    w = await startStorageWorld(env, undefined, backend);
  }, 60_000);
  afterAll(async () => w?.stop());

  const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
  const GIF = Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'binary');

  describe('§9.2 storage checks', () => {
    it('48: createBucket, then the same again is 409', async () => {
      const created = await w.svc.storage.createBucket('avatars', { public: true, fileSizeLimit: 1024, allowedMimeTypes: ['text/plain', 'image/png'] });
      expect(created).toEqual({ data: { name: 'avatars' }, error: null });
      const again = await w.svc.storage.createBucket('avatars', { public: true });
      expect((again.error as unknown as { statusCode: string }).statusCode).toBe('409');
    });

    it('49: listBuckets and getBucket', async () => {
      const list = await w.svc.storage.listBuckets();
      expect(list.error).toBeNull();
      expect(list.data).toEqual(expect.arrayContaining([expect.objectContaining({ id: 'avatars', name: 'avatars', public: true })]));
      const one = await w.svc.storage.getBucket('avatars');
      expect(one.data).toMatchObject({ id: 'avatars', file_size_limit: 1024, allowed_mime_types: ['text/plain', 'image/png'] });
    });

    it('50: a user uploads into their own folder', async () => {
      const { data, error } = await w.u1.storage.from('avatars').upload(`${U1}/a.txt`, 'hello', { contentType: 'text/plain' });
      expect(error).toBeNull();
      expect(data).toEqual({ path: `${U1}/a.txt`, fullPath: `avatars/${U1}/a.txt`, id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    });

    it('51: the same upload again is 409; with upsert it succeeds', async () => {
      const again = await w.u1.storage.from('avatars').upload(`${U1}/a.txt`, 'hello', { contentType: 'text/plain' });
      expect((again.error as unknown as { statusCode: string }).statusCode).toBe('409');
      const upsert = await w.u1.storage.from('avatars').upload(`${U1}/a.txt`, 'hello', { contentType: 'text/plain', upsert: true });
      expect(upsert.error).toBeNull();
    });

    it('52: a multipart Blob upload keeps its type and size', async () => {
      const up = await w.u1.storage.from('avatars').upload(`${U1}/p.png`, new Blob([PNG], { type: 'image/png' }));
      expect(up.error).toBeNull();
      const info = await w.u1.storage.from('avatars').info(`${U1}/p.png`);
      expect(info.error).toBeNull();
      expect(info.data).toMatchObject({ contentType: 'image/png', size: PNG.length });
    });

    it('53: too large is 413, a type the bucket refuses is 415', async () => {
      const big = await w.u1.storage.from('avatars').upload(`${U1}/big.txt`, 'x'.repeat(2000), { contentType: 'text/plain' });
      expect((big.error as unknown as { statusCode: string }).statusCode).toBe('413');
      const gif = await w.u1.storage.from('avatars').upload(`${U1}/g.gif`, new Blob([GIF], { type: 'image/gif' }));
      expect((gif.error as unknown as { statusCode: string }).statusCode).toBe('415');
    });

    it('54: download', async () => {
      const { data, error } = await w.u1.storage.from('avatars').download(`${U1}/a.txt`);
      expect(error).toBeNull();
      expect(await data!.text()).toBe('hello');
    });

    it('55: the public URL serves the bytes without any header', async () => {
      const url = w.u1.storage.from('avatars').getPublicUrl(`${U1}/a.txt`).data.publicUrl;
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain');
      expect(await res.text()).toBe('hello');
    });

    it('56: a signed URL works alone, not tampered with, not expired', async () => {
      const { data, error } = await w.u1.storage.from('avatars').createSignedUrl(`${U1}/a.txt`, 60);
      expect(error).toBeNull();
      expect(data!.signedUrl).toContain('/storage/v1/object/sign/avatars/');
      const ok = await fetch(data!.signedUrl);
      expect([ok.status, await ok.text()]).toEqual([200, 'hello']);
      const [base, token] = data!.signedUrl.split('?token=');
      const [h, p, s] = token.split('.');
      const forged = `${h}.${Buffer.from(JSON.stringify({ url: `avatars/${U2}/a.txt`, scope: 'download', exp: 9999999999 })).toString('base64url')}.${s}`;
      for (const bad of [`${h}.${p}.${s.slice(0, -2)}xx`, forged, 'garbage']) {
        const res = await fetch(`${base}?token=${bad}`);
        expect(res.ok).toBe(false);
        expect(((await res.json()) as Record<string, unknown>).code).toBe('InvalidJWT');
      }
      const expired = await w.t.sign({ url: `avatars/${U1}/a.txt`, scope: 'download', iat: 1, exp: 2 });
      const late = await fetch(`${base}?token=${expired}`);
      expect(late.ok).toBe(false);
      expect(['InvalidJWT', 'ExpiredToken']).toContain(((await late.json()) as Record<string, unknown>).code);
    });

    it('57: createSignedUrls answers one entry per path', async () => {
      const { data, error } = await w.u1.storage.from('avatars').createSignedUrls([`${U1}/a.txt`, 'missing.txt'], 60);
      expect(error).toBeNull();
      expect(data).toHaveLength(2);
      expect(data![0].signedUrl).toContain('/object/sign/avatars/');
      expect(data![1]).toMatchObject({ signedUrl: null, error: 'Either the object does not exist or you do not have access to it' });
    });

    it('58: list a folder and the root', async () => {
      const { data, error } = await w.u1.storage.from('avatars').list(U1, { limit: 10, sortBy: { column: 'name', order: 'asc' } });
      expect(error).toBeNull();
      expect(data!.map((f) => f.name)).toEqual(['a.txt', 'p.png']);
      expect(data![0].metadata).toMatchObject({ size: 5, mimetype: 'text/plain' });
      const root = await w.u1.storage.from('avatars').list('');
      expect(root.data).toEqual(expect.arrayContaining([expect.objectContaining({ name: U1, id: null })]));
    });

    it('59: move, then exists', async () => {
      const moved = await w.u1.storage.from('avatars').move(`${U1}/a.txt`, `${U1}/b.txt`);
      expect(moved.error).toBeNull();
      expect((await w.u1.storage.from('avatars').exists(`${U1}/a.txt`)).data).toBe(false);
      expect((await w.u1.storage.from('avatars').exists(`${U1}/b.txt`)).data).toBe(true);
    });

    it('60: remove, then download is 404', async () => {
      const removed = await w.u1.storage.from('avatars').remove([`${U1}/b.txt`]);
      expect(removed.error).toBeNull();
      expect(removed.data).toHaveLength(1);
      const gone = await w.u1.storage.from('avatars').download(`${U1}/b.txt`);
      expect(gone.data).toBeNull();
      expect((gone.error as unknown as { statusCode: string }).statusCode).toBe('404');
    });

    it('61: a private bucket with the own-folder policy keeps users out of each other\'s folders', async () => {
      expect((await w.svc.storage.createBucket('docs')).error).toBeNull();
      expect((await w.u1.storage.from('docs').upload(`${U1}/x`, 'secret')).error).toBeNull();
      const read = await w.u2.storage.from('docs').download(`${U1}/x`);
      expect(read.data).toBeNull();
      expect(read.error).not.toBeNull();
      const write = await w.u2.storage.from('docs').upload(`${U1}/y`, 'z');
      expect(write.error).toMatchObject({ statusCode: '403', message: 'new row violates row-level security policy' });
      expect((await w.anon.storage.createBucket('b')).error).not.toBeNull();
      // The owner still reads it; the public URL of a private bucket does not.
      expect(await (await w.u1.storage.from('docs').download(`${U1}/x`)).data!.text()).toBe('secret');
      const pub = await fetch(w.u1.storage.from('docs').getPublicUrl(`${U1}/x`).data.publicUrl);
      expect(pub.ok).toBe(false);
    });

    it('62: emptyBucket then deleteBucket; the bucket is gone', async () => {
      expect((await w.svc.storage.emptyBucket('avatars')).error).toBeNull();
      expect((await w.svc.storage.deleteBucket('avatars')).error).toBeNull();
      const gone = await w.svc.storage.getBucket('avatars');
      expect((gone.error as unknown as { statusCode: string }).statusCode).toBe('404');
    });
  });
}
