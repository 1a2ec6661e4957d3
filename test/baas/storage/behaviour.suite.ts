/** /storage/v1 beyond the §9.2 list: downloads (Range, ETag, 304, HEAD), signed uploads, copy, tokens, errors. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStorageWorld, type StorageBackendKind, U1, U2, type StorageWorld } from './support.js';

/** The suite, run against each blob backend by its own test file. */
export function storageBehaviour(backend: StorageBackendKind, env: Record<string, string> = {}): void {
  let w: StorageWorld;
  const BYTES = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
  beforeAll(async () => {
    w = await startStorageWorld(env, undefined, backend);
    await w.svc.storage.createBucket('docs');
    await w.svc.storage.createBucket('pub', { public: true });
    expect((await w.u1.storage.from('docs').upload(`${U1}/bin`, BYTES, { contentType: 'application/octet-stream', cacheControl: '60' })).error).toBeNull();
  }, 60_000);
  afterAll(async () => w?.stop());

  const auth = (token: string) => ({ apikey: w.t.anonKey, authorization: `Bearer ${token}` });

  describe('downloads', () => {
    it('answers ETag, Last-Modified, Cache-Control and Accept-Ranges; If-None-Match and If-Modified-Since give 304', async () => {
      const res = await w.raw(`/object/docs/${U1}/bin`, { headers: auth(w.u1Token) });
      expect(res.status).toBe(200);
      const etag = res.headers.get('etag');
      expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
      expect((await w.u1.storage.from('docs').info(`${U1}/bin`)).data?.etag).toBe(etag);
      expect(res.headers.get('cache-control')).toBe('max-age=60');
      expect(res.headers.get('accept-ranges')).toBe('bytes');
      expect(res.headers.get('content-length')).toBe('1000');
      expect(Buffer.from(await res.arrayBuffer()).equals(BYTES)).toBe(true);
      const cached = await w.raw(`/object/docs/${U1}/bin`, { headers: { ...auth(w.u1Token), 'if-none-match': etag! } });
      expect([cached.status, await cached.text()]).toEqual([304, '']);
      const other = await w.raw(`/object/docs/${U1}/bin`, { headers: { ...auth(w.u1Token), 'if-none-match': '"nope"' } });
      expect(other.status).toBe(200);
      await other.arrayBuffer();
      const since = await w.raw(`/object/docs/${U1}/bin`, { headers: { ...auth(w.u1Token), 'if-modified-since': res.headers.get('last-modified')! } });
      expect(since.status).toBe(304);
    });

    it('serves byte ranges with 206 and refuses a range past the end with 416', async () => {
      const cases: [string, number, number][] = [['bytes=0-9', 0, 9], ['bytes=990-', 990, 999], ['bytes=-5', 995, 999], ['bytes=500-5000', 500, 999]];
      for (const [range, start, end] of cases) {
        const res = await w.raw(`/object/authenticated/docs/${U1}/bin`, { headers: { ...auth(w.u1Token), range } });
        expect(res.status).toBe(206);
        expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/1000`);
        expect(Buffer.from(await res.arrayBuffer()).equals(BYTES.subarray(start, end + 1))).toBe(true);
      }
      const past = await w.raw(`/object/docs/${U1}/bin`, { headers: { ...auth(w.u1Token), range: 'bytes=1000-' } });
      expect(past.status).toBe(416);
      expect(past.headers.get('content-range')).toBe('bytes */1000');
    });

    it('HEAD gives the headers and no body; ?download makes an attachment', async () => {
      const head = await w.raw(`/object/docs/${U1}/bin`, { method: 'HEAD', headers: auth(w.u1Token) });
      expect([head.status, head.headers.get('content-length'), await head.text()]).toEqual([200, '1000', '']);
      const dl = await w.raw(`/object/docs/${U1}/bin?download=report%20"1".pdf`, { headers: auth(w.u1Token) });
      expect(dl.headers.get('content-disposition')).toBe(`attachment; filename="report _1_.pdf"; filename*=UTF-8''report%20%221%22.pdf`);
      await dl.arrayBuffer();
      const blob = await w.u1.storage.from('docs').download(`${U1}/bin`);
      expect(Buffer.from(await blob.data!.arrayBuffer()).equals(BYTES)).toBe(true);
    });
  });

  describe('signed URLs', () => {
    it('a signed upload URL takes one upload as the token says, without any other key', async () => {
      const { data, error } = await w.u1.storage.from('docs').createSignedUploadUrl(`${U1}/signed.txt`);
      expect(error).toBeNull();
      const up = await w.anon.storage.from('docs').uploadToSignedUrl(`${U1}/signed.txt`, data!.token, 'via token', { contentType: 'text/plain' });
      expect(up.error).toBeNull();
      expect(await (await w.u1.storage.from('docs').download(`${U1}/signed.txt`)).data!.text()).toBe('via token');
      // The token names one path, and a second upload without upsert is a duplicate.
      const elsewhere = await w.anon.storage.from('docs').uploadToSignedUrl(`${U1}/other.txt`, data!.token, 'x');
      expect(elsewhere.error).toMatchObject({ statusCode: '400' });
      const again = await w.anon.storage.from('docs').uploadToSignedUrl(`${U1}/signed.txt`, data!.token, 'x');
      expect(again.error).toMatchObject({ statusCode: '409' });
    });

    it('refuses to sign an upload where the caller may not insert, and a download token for upload', async () => {
      const refused = await w.u2.storage.from('docs').createSignedUploadUrl(`${U1}/intruder.txt`);
      expect(refused.error).toMatchObject({ statusCode: '403' });
      const signed = await w.u1.storage.from('docs').createSignedUrl(`${U1}/bin`, 60);
      const token = new URL(signed.data!.signedUrl).searchParams.get('token')!;
      const res = await w.raw(`/object/upload/sign/docs/${U1}/bin?token=${token}`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'overwrite' });
      expect((await res.json()) as Record<string, unknown>).toMatchObject({ statusCode: '400', code: 'InvalidSignature', message: 'Token is not scoped for upload' });
      const ours = await w.t.sign({ url: `docs/${U1}/bin`, scope: 'upload', upsert: true, exp: Math.floor(Date.now() / 1000) + 60 });
      const wrongScope = await w.raw(`/object/sign/docs/${U1}/bin?token=${ours}`);
      expect((await wrongScope.json()) as Record<string, unknown>).toMatchObject({ code: 'InvalidSignature', message: 'Token is not scoped for download' });
      const otherSecret = await w.t.sign({ url: `docs/${U1}/bin`, scope: 'download', exp: Math.floor(Date.now() / 1000) + 60 }, 'another-secret-with-at-least-32-characters!!');
      expect(((await (await w.raw(`/object/sign/docs/${U1}/bin?token=${otherSecret}`)).json()) as { code: string }).code).toBe('InvalidJWT');
    });

    it('signs nothing the caller cannot read', async () => {
      const res = await w.u2.storage.from('docs').createSignedUrl(`${U1}/bin`, 60);
      expect(res.error).toMatchObject({ statusCode: '404' });
      const bad = await w.raw(`/object/sign/docs/${U1}/bin`, { method: 'POST', headers: { ...auth(w.u1Token), 'content-type': 'application/json' }, body: '{"expiresIn":0}' });
      expect(bad.status).toBe(400);
    });
  });

  describe('objects', () => {
    it('copies within and across buckets, with the caller\'s rights on both ends', async () => {
      expect((await w.u1.storage.from('docs').copy(`${U1}/bin`, `${U1}/bin-copy`)).error).toBeNull();
      const copied = await w.u1.storage.from('docs').download(`${U1}/bin-copy`);
      expect(Buffer.from(await copied.data!.arrayBuffer()).equals(BYTES)).toBe(true);
      const intoOther = await w.u2.storage.from('docs').copy(`${U1}/bin`, `${U2}/stolen`);
      expect(intoOther.error).toMatchObject({ statusCode: '404' });
      const across = await w.svc.storage.from('docs').copy(`${U1}/bin`, 'copied', { destinationBucket: 'pub' });
      expect(across.error).toBeNull();
      const pub = await fetch(w.svc.storage.from('pub').getPublicUrl('copied').data.publicUrl);
      expect(Buffer.from(await pub.arrayBuffer()).equals(BYTES)).toBe(true);
    });

    it('keeps user metadata and answers info', async () => {
      const up = await w.u1.storage.from('docs').upload(`${U1}/meta.txt`, 'm', { contentType: 'text/plain', metadata: { kind: 'note' } });
      expect(up.error).toBeNull();
      const info = await w.u1.storage.from('docs').info(`${U1}/meta.txt`);
      expect(info.data).toMatchObject({ name: `${U1}/meta.txt`, bucketId: 'docs', size: 1, metadata: { kind: 'note' } });
    });

    it('update() replaces the bytes and removes the old blob', async () => {
      await w.u1.storage.from('docs').upload(`${U1}/v.txt`, 'one', { contentType: 'text/plain' });
      const before = (await w.files()).length;
      const etagBefore = (await w.u1.storage.from('docs').info(`${U1}/v.txt`)).data?.etag;
      expect((await w.u1.storage.from('docs').update(`${U1}/v.txt`, 'two', { contentType: 'text/plain' })).error).toBeNull();
      expect((await w.u1.storage.from('docs').info(`${U1}/v.txt`)).data?.etag).not.toBe(etagBefore);
      expect(await (await w.u1.storage.from('docs').download(`${U1}/v.txt`)).data!.text()).toBe('two');
      expect((await w.files()).length).toBe(before);
    });

    it('lists with search, offset and sort', async () => {
      for (const name of ['s/b1', 's/a1', 's/a2', 's/sub/x']) await w.svc.storage.from('pub').upload(name, name, { contentType: 'text/plain' });
      const all = await w.svc.storage.from('pub').list('s', { sortBy: { column: 'name', order: 'desc' } });
      expect(all.data!.map((e) => e.name)).toEqual(['sub', 'b1', 'a2', 'a1']);
      const search = await w.svc.storage.from('pub').list('s', { search: 'a' });
      expect(search.data!.map((e) => e.name)).toEqual(['a1', 'a2']);
      const page = await w.svc.storage.from('pub').list('s/', { limit: 1, offset: 1 });
      expect(page.data!.map((e) => e.name)).toEqual(['a2']);
      const pct = await w.svc.storage.from('pub').list('s', { search: '%' });
      expect(pct.data).toEqual([]);
    });

    it('refuses bad keys, bad bucket names, bad JSON and unknown routes with upstream bodies', async () => {
      const key = await w.raw('/object/pub/bad%7Bkey%7D', { method: 'POST', headers: { ...auth(w.t.serviceKey), 'content-type': 'text/plain' }, body: 'x' });
      expect((await key.json()) as Record<string, unknown>).toEqual({ statusCode: '400', code: 'InvalidKey', error: 'InvalidKey', message: 'Invalid key: bad{key}' });
      const bucket = await w.svc.storage.createBucket('no/slash');
      expect(bucket.error).toMatchObject({ statusCode: '400', message: 'Bucket name invalid' });
      const json = await w.raw('/bucket', { method: 'POST', headers: { ...auth(w.t.serviceKey), 'content-type': 'application/json' }, body: '{nope' });
      expect([json.status, ((await json.json()) as Record<string, unknown>).statusCode]).toEqual([400, '400']);
      const unknown = await w.raw('/nothing', { headers: auth(w.t.serviceKey) });
      expect(unknown.status).toBe(404);
      const notEmpty = await w.svc.storage.deleteBucket('pub');
      expect(notEmpty.error).toMatchObject({ statusCode: '409' });
    });
  });
}
