/**
 * Who may call what: every /storage/v1 route refuses a request without a key, with a bad or expired token, and a
 * caller the policies do not let through; routes authorized by their URL refuse without the URL's proof.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStorageWorld, U1, type StorageWorld } from './support.js';

let w: StorageWorld;
let expired: string;
let foreign: string;
beforeAll(async () => {
  w = await startStorageWorld();
  await w.svc.storage.createBucket('docs');
  await w.u1.storage.from('docs').upload(`${U1}/x.txt`, 'secret', { contentType: 'text/plain' });
  expired = await w.t.sign({ sub: U1, role: 'authenticated', exp: Math.floor(Date.now() / 1000) - 60 });
  foreign = await w.t.sign({ sub: U1, role: 'authenticated', exp: Math.floor(Date.now() / 1000) + 60 }, 'some-other-secret-with-at-least-32-characters');
}, 60_000);
afterAll(async () => w?.stop());

const json = (body: unknown) => ({ 'content-type': 'application/json', body: JSON.stringify(body) });
/** Every route that needs a caller, with a request that would succeed for U1 or service_role. */
const CALLER_ROUTES: { name: string; method: string; path: string; body?: { 'content-type': string; body: string } }[] = [
  { name: 'list buckets', method: 'GET', path: '/bucket' },
  { name: 'get bucket', method: 'GET', path: '/bucket/docs' },
  { name: 'create bucket', method: 'POST', path: '/bucket', body: json({ name: 'new' }) },
  { name: 'update bucket', method: 'PUT', path: '/bucket/docs', body: json({ public: true }) },
  { name: 'empty bucket', method: 'POST', path: '/bucket/docs/empty', body: json({}) },
  { name: 'delete bucket', method: 'DELETE', path: '/bucket/docs', body: json({}) },
  { name: 'upload', method: 'POST', path: `/object/docs/${U1}/new.txt`, body: { 'content-type': 'text/plain', body: 'x' } },
  { name: 'update', method: 'PUT', path: `/object/docs/${U1}/x.txt`, body: { 'content-type': 'text/plain', body: 'x' } },
  { name: 'download', method: 'GET', path: `/object/docs/${U1}/x.txt` },
  { name: 'download authenticated', method: 'GET', path: `/object/authenticated/docs/${U1}/x.txt` },
  { name: 'head', method: 'HEAD', path: `/object/docs/${U1}/x.txt` },
  { name: 'info', method: 'GET', path: `/object/info/docs/${U1}/x.txt` },
  { name: 'info authenticated', method: 'GET', path: `/object/info/authenticated/docs/${U1}/x.txt` },
  { name: 'list', method: 'POST', path: '/object/list/docs', body: json({ prefix: U1 }) },
  { name: 'move', method: 'POST', path: '/object/move', body: json({ bucketId: 'docs', sourceKey: `${U1}/x.txt`, destinationKey: `${U1}/y.txt` }) },
  { name: 'copy', method: 'POST', path: '/object/copy', body: json({ bucketId: 'docs', sourceKey: `${U1}/x.txt`, destinationKey: `${U1}/y.txt` }) },
  { name: 'remove many', method: 'DELETE', path: '/object/docs', body: json({ prefixes: [`${U1}/x.txt`] }) },
  { name: 'remove one', method: 'DELETE', path: `/object/docs/${U1}/x.txt`, body: json({}) },
  { name: 'sign one', method: 'POST', path: `/object/sign/docs/${U1}/x.txt`, body: json({ expiresIn: 60 }) },
  { name: 'sign many', method: 'POST', path: '/object/sign/docs', body: json({ expiresIn: 60, paths: [`${U1}/x.txt`] }) },
  { name: 'sign upload', method: 'POST', path: `/object/upload/sign/docs/${U1}/z.txt`, body: json({}) },
  { name: 'render', method: 'GET', path: `/render/image/authenticated/docs/${U1}/x.txt?width=10` },
  { name: 'resumable create', method: 'POST', path: '/upload/resumable', body: { 'content-type': 'application/offset+octet-stream', body: '' } },
];

async function call(route: (typeof CALLER_ROUTES)[number], headers: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> | null }> {
  const res = await w.raw(route.path, {
    method: route.method,
    headers: { ...headers, ...(route.body ? { 'content-type': route.body['content-type'] } : {}) },
    ...(route.body ? { body: route.body.body } : {}),
  });
  const text = await res.text();
  // TUS answers its own protocol errors in plain text.
  let body: Record<string, unknown> | null = null;
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : null;
  } catch {
    body = { text };
  }
  return { status: res.status, body };
}

describe('routes that need a caller', () => {
  it.each(CALLER_ROUTES)('$name: no key is 401, a bad or expired token is AccessDenied', async (route) => {
    const none = await call(route, {});
    expect(none.status).toBe(401);
    if (route.method !== 'HEAD') expect(none.body).toMatchObject({ message: 'No API key found in request' });
    for (const token of [expired, foreign, 'not.a.jwt']) {
      const bad = await call(route, { apikey: w.t.anonKey, authorization: `Bearer ${token}` });
      expect(bad.status).toBe(400);
      if (route.method !== 'HEAD') expect(bad.body).toMatchObject({ statusCode: '403', code: 'AccessDenied', error: 'Unauthorized' });
    }
  });

  it.each(CALLER_ROUTES)('$name: the anon key, which no policy admits, changes and learns nothing', async (route) => {
    const res = await call(route, { apikey: w.t.anonKey });
    // Writes are refused; reads find nothing (a list is empty, signing finds no object).
    if (route.name === 'list buckets' || route.name === 'list') expect(res.body).toEqual([]);
    else if (route.name === 'remove many') expect(res.body).toEqual([]);
    else if (route.name === 'sign many') expect((res.body as unknown as { signedURL: unknown }[])[0].signedURL).toBeNull();
    else expect(res.status).toBeGreaterThanOrEqual(400);
    const still = await w.svc.storage.from('docs').download(`${U1}/x.txt`);
    expect(await still.data!.text()).toBe('secret');
    expect((await w.svc.storage.getBucket('docs')).data).toMatchObject({ public: false });
  });
});

describe('a token naming a role the API may not take', () => {
  it.each(CALLER_ROUTES)('$name: role postgres is refused, never run as a superuser', async (route) => {
    const superuser = await w.t.sign({ sub: U1, role: 'postgres', exp: Math.floor(Date.now() / 1000) + 60 });
    const res = await call(route, { apikey: w.t.anonKey, authorization: `Bearer ${superuser}` });
    expect(res.status).toBeGreaterThanOrEqual(400);
    if (route.method !== 'HEAD' && route.name !== 'resumable create') expect(res.body).toMatchObject({ statusCode: '403', code: 'AccessDenied' });
    expect(await (await w.svc.storage.from('docs').download(`${U1}/x.txt`)).data!.text()).toBe('secret');
  });
});

describe('routes authorized by their URL', () => {
  it('public reads need a public bucket; signed reads and uploads need a valid token', async () => {
    const pub = await w.raw(`/object/public/docs/${U1}/x.txt`);
    expect([pub.status, ((await pub.json()) as Record<string, unknown>).code]).toEqual([400, 'NoSuchBucket']);
    const info = await w.raw(`/object/info/public/docs/${U1}/x.txt`);
    expect(info.status).toBe(400);
    await info.text();
    const noToken = await w.raw(`/object/sign/docs/${U1}/x.txt`);
    expect(noToken.status).toBe(400);
    await noToken.text();
    const upload = await w.raw(`/object/upload/sign/docs/${U1}/x.txt?token=${w.u1Token}`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'x' });
    expect(upload.status).toBe(400);
    await upload.text();
    // A user's access token is not a download token either (no url claim).
    const asDownload = await w.raw(`/object/sign/docs/${U1}/x.txt?token=${w.u1Token}`);
    expect(((await asDownload.json()) as Record<string, unknown>).code).toBe('InvalidSignature');
  });
});
