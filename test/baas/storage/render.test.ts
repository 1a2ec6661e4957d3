/** Image transforms at /storage/v1/render/image/… on real PNG and JPEG images, as supabase-js requests them. */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderStats } from '../../../src/baas/storage/routes/render.js';
import { startStorageWorld, U1, type StorageWorld } from './support.js';

let w: StorageWorld;
let png: Buffer;
let jpeg: Buffer;
beforeAll(async () => {
  w = await startStorageWorld();
  await w.svc.storage.createBucket('pics', { public: true });
  await w.svc.storage.createBucket('docs');
  const raw = Buffer.alloc(200 * 100 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 13) % 256;
  png = await sharp(raw, { raw: { width: 200, height: 100, channels: 3 } }).png().toBuffer();
  jpeg = await sharp(raw, { raw: { width: 200, height: 100, channels: 3 } }).jpeg().toBuffer();
  expect((await w.svc.storage.from('pics').upload('a.png', png, { contentType: 'image/png' })).error).toBeNull();
  expect((await w.svc.storage.from('pics').upload('b.jpg', jpeg, { contentType: 'image/jpeg' })).error).toBeNull();
  expect((await w.u1.storage.from('docs').upload(`${U1}/c.png`, png, { contentType: 'image/png' })).error).toBeNull();
}, 60_000);
afterAll(async () => w?.stop());

const size = async (bytes: Buffer) => {
  const m = await sharp(bytes).metadata();
  return { width: m.width, height: m.height, format: m.format };
};

describe('render/image', () => {
  it('download({transform}) resizes as the caller, keeping the PNG format', async () => {
    const { data, error } = await w.u1.storage.from('docs').download(`${U1}/c.png`, { transform: { width: 50, height: 50 } });
    expect(error).toBeNull();
    expect(await size(Buffer.from(await data!.arrayBuffer()))).toEqual({ width: 50, height: 50, format: 'png' });
    const other = await w.u2.storage.from('docs').download(`${U1}/c.png`, { transform: { width: 50 } });
    expect(other.error).not.toBeNull();
  });

  it('getPublicUrl({transform}) serves a public JPEG resized, contained, in WebP at a quality', async () => {
    const url = w.anon.storage.from('pics').getPublicUrl('b.jpg', { transform: { width: 100, height: 100, resize: 'contain', quality: 50, format: 'webp' as 'origin' } }).data.publicUrl;
    expect(url).toContain('/storage/v1/render/image/public/pics/b.jpg?');
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/webp');
    expect(await size(Buffer.from(await res.arrayBuffer()))).toEqual({ width: 100, height: 50, format: 'webp' });
    const origin = await fetch(w.anon.storage.from('pics').getPublicUrl('b.jpg', { transform: { width: 20 } }).data.publicUrl);
    expect(await size(Buffer.from(await origin.arrayBuffer()))).toMatchObject({ width: 20, format: 'jpeg' });
  });

  it('createSignedUrl({transform}) signs a render URL whose token carries the transform', async () => {
    const { data, error } = await w.u1.storage.from('docs').createSignedUrl(`${U1}/c.png`, 60, { transform: { width: 40, height: 30, resize: 'fill' } });
    expect(error).toBeNull();
    expect(data!.signedUrl).toContain('/storage/v1/render/image/sign/docs/');
    const res = await fetch(data!.signedUrl);
    expect(await size(Buffer.from(await res.arrayBuffer()))).toEqual({ width: 40, height: 30, format: 'png' });
    // Query parameters cannot change what the token allows.
    const bigger = await fetch(`${data!.signedUrl}&width=2000`);
    expect(await size(Buffer.from(await bigger.arrayBuffer()))).toMatchObject({ width: 40 });
  });

  it('caches a result: the same transform again is not rendered again, and answers its ETag with 304', async () => {
    const url = w.anon.storage.from('pics').getPublicUrl('a.png', { transform: { width: 33 } }).data.publicUrl;
    const first = await fetch(url);
    await first.arrayBuffer();
    const renders = renderStats.renders;
    const second = await fetch(url);
    expect(await size(Buffer.from(await second.arrayBuffer()))).toMatchObject({ width: 33 });
    expect(renderStats.renders).toBe(renders);
    const cached = await fetch(url, { headers: { 'if-none-match': first.headers.get('etag')! } });
    expect(cached.status).toBe(304);
  });

  it('refuses bad options and non-images with upstream-shaped errors', async () => {
    const bad = await fetch(`${w.t.url}/storage/v1/render/image/public/pics/a.png?quality=5`);
    expect([bad.status, ((await bad.json()) as { statusCode: string }).statusCode]).toEqual([400, '400']);
    await w.svc.storage.from('pics').upload('t.txt', 'not an image', { contentType: 'text/plain' });
    const text = await fetch(`${w.t.url}/storage/v1/render/image/public/pics/t.txt?width=10`);
    expect(text.ok).toBe(false);
    expect(((await text.json()) as { code: string }).code).toBe('InvalidImage');
  });
});
