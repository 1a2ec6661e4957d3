/**
 * TUS resumable uploads at /storage/v1/upload/resumable with a real tus client (tus-js-client, as Supabase documents
 * it): an upload dropped mid-way and resumed from the server's offset, the creation checks, and another caller
 * refused an upload that is not theirs.
 */
import { createHash } from 'node:crypto';
import * as tus from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStorageWorld, U1, type StorageWorld } from './support.js';

let w: StorageWorld;
beforeAll(async () => {
  w = await startStorageWorld();
  await w.svc.storage.createBucket('docs', { public: false, fileSizeLimit: 20 * 1024 * 1024, allowedMimeTypes: ['application/octet-stream', 'text/plain'] });
}, 60_000);
afterAll(async () => w?.stop());

const SIZE = 12 * 1024 * 1024;
const DATA = Buffer.from(Array.from({ length: SIZE }, (_, i) => (i * 7) % 256));

function upload(token: string, objectName: string, data: Buffer, opts: Partial<tus.UploadOptions> = {}): tus.Upload {
  return new tus.Upload(data, {
    endpoint: `${w.t.url}/storage/v1/upload/resumable`,
    headers: { authorization: `Bearer ${token}`, apikey: w.t.anonKey, 'x-upsert': 'true' },
    uploadDataDuringCreation: true,
    removeFingerprintOnSuccess: true,
    retryDelays: [],
    metadata: { bucketName: 'docs', objectName, contentType: 'application/octet-stream', cacheControl: '3600' },
    chunkSize: 2 * 1024 * 1024,
    ...opts,
  });
}

function run(u: tus.Upload): Promise<void> {
  return new Promise((resolve, reject) => {
    u.options.onSuccess = () => resolve();
    u.options.onError = (err) => reject(err);
    u.start();
  });
}

describe('TUS resumable uploads', () => {
  it('resumes after a drop from the offset the server kept, and the object is whole', async () => {
    let dropped = false;
    const first = upload(w.u1Token, `${U1}/resumed.bin`, DATA);
    await new Promise<void>((resolve, reject) => {
      first.options.onProgress = (sent) => {
        // Drop the connection mid-way through a chunk, as a flaky network would.
        if (!dropped && sent > 5 * 1024 * 1024) {
          dropped = true;
          void first.abort().then(resolve, reject);
        }
      };
      first.options.onError = reject;
      first.options.onSuccess = () => reject(new Error('finished before the drop'));
      first.start();
    });
    expect(first.url).toMatch(/\/storage\/v1\/upload\/resumable\/[0-9a-f-]{36}$/);
    const head = await fetch(first.url!, { method: 'HEAD', headers: { authorization: `Bearer ${w.u1Token}`, apikey: w.t.anonKey, 'tus-resumable': '1.0.0' } });
    const offset = Number(head.headers.get('upload-offset'));
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThan(SIZE);
    const before = await w.u1.storage.from('docs').exists(`${U1}/resumed.bin`);
    expect(before.data).toBe(false);

    let resumedFrom = -1;
    const second = upload(w.u1Token, `${U1}/resumed.bin`, DATA, { uploadUrl: first.url! });
    second.options.onProgress = (sent) => {
      if (resumedFrom < 0) resumedFrom = sent;
    };
    await run(second);
    expect(resumedFrom).toBeGreaterThan(offset - 1);
    const { data, error } = await w.u1.storage.from('docs').download(`${U1}/resumed.bin`);
    expect(error).toBeNull();
    const bytes = Buffer.from(await data!.arrayBuffer());
    expect(createHash('md5').update(bytes).digest('hex')).toBe(createHash('md5').update(DATA).digest('hex'));
    // The parts are gone once the object exists.
    expect((await w.files()).some((f) => f.includes('/.tus/') && !f.endsWith('.json'))).toBe(false);
  });

  it('refuses at creation what a plain upload refuses: policy, size, type, key', async () => {
    const intruder = upload(w.u2Token, `${U1}/nope.bin`, Buffer.from('x'));
    await expect(run(intruder)).rejects.toThrow(/403|row-level security/);
    const tooBig = upload(w.u1Token, `${U1}/big.bin`, Buffer.alloc(21 * 1024 * 1024));
    await expect(run(tooBig)).rejects.toThrow(/413/);
    const gif = upload(w.u1Token, `${U1}/g.gif`, Buffer.from('GIF89a'), { metadata: { bucketName: 'docs', objectName: `${U1}/g.gif`, contentType: 'image/gif' } });
    await expect(run(gif)).rejects.toThrow(/415/);
    const noKey = await fetch(`${w.t.url}/storage/v1/upload/resumable`, { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': '1' } });
    expect(noKey.status).toBe(401);
  });

  it('does not let another caller continue or inspect an upload', async () => {
    const mine = upload(w.u1Token, `${U1}/mine.bin`, DATA);
    await new Promise<void>((resolve, reject) => {
      mine.options.onProgress = (sent) => {
        if (sent > 2 * 1024 * 1024) void mine.abort().then(resolve, reject);
      };
      mine.options.onError = reject;
      mine.start();
    });
    const headers = { authorization: `Bearer ${w.u2Token}`, apikey: w.t.anonKey, 'tus-resumable': '1.0.0' };
    const head = await fetch(mine.url!, { method: 'HEAD', headers });
    expect(head.status).toBe(403);
    const patch = await fetch(mine.url!, { method: 'PATCH', headers: { ...headers, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, body: 'x' });
    expect(patch.status).toBe(403);
    const traversal = await fetch(`${w.t.url}/storage/v1/upload/resumable/..%2F..%2Fetc`, { method: 'HEAD', headers });
    expect(traversal.status).toBeGreaterThanOrEqual(400);
  });
});
