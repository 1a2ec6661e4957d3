/**
 * Issue 17: an expired user token is refused everywhere, each module with its upstream answer. The token is a real
 * session token from /auth/v1 (supabase-js sign-up), re-signed with the tenant secret and `exp` in the past, so
 * nothing but its expiry differs; the same claims with a future `exp` pass, so each refusal is the expiry's doing.
 */
import { createClient } from '@supabase/supabase-js';
import { decodeJwt } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FunctionsAdmin } from './functions/support.js';
import { startStorageWorld, type StorageWorld } from './storage/support.js';

const WHOAMI = `export default { async fetch(request) { return new Response('ok'); } };`;

describe('an expired user token', () => {
  let w: StorageWorld;
  let expired: string;
  let fresh: string;

  beforeAll(async () => {
    w = await startStorageWorld();
    await w.admin.query(`
      CREATE TABLE public.notes (id int PRIMARY KEY, body text);
      INSERT INTO public.notes VALUES (1, 'hi');
      GRANT SELECT ON public.notes TO authenticated;
      NOTIFY pgrst, 'reload schema';`);
    expect((await w.svc.storage.createBucket('files', { public: false })).error).toBeNull();
    expect((await w.svc.storage.from('files').upload('a.txt', new Blob(['hello']))).error).toBeNull();
    await w.admin.query(`CREATE POLICY "read files" ON storage.objects FOR SELECT TO authenticated USING (bucket_id = 'files')`);
    await new FunctionsAdmin(w.t).deploy('whoami', WHOAMI, 'application/javascript', '?verify_jwt=true');
    const client = createClient(w.t.url, w.t.anonKey, { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: WebSocket as never } });
    const { data, error } = await client.auth.signUp({ email: 'expiry@example.com', password: 'secret-password' });
    expect(error).toBeNull();
    const claims = decodeJwt(data.session!.access_token);
    const now = Math.floor(Date.now() / 1000);
    expired = await w.t.sign({ ...claims, iat: now - 120, exp: now - 60 });
    fresh = await w.t.sign({ ...claims, iat: now, exp: now + 600 });
  });
  afterAll(() => w?.stop());

  const call = (path: string, token: string, init: RequestInit = {}) =>
    fetch(`${w.t.url}${path}`, { ...init, headers: { apikey: w.t.anonKey, authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });

  it('is refused by REST with PostgREST 401 PGRST303', async () => {
    const ok = await call('/rest/v1/notes?select=id', fresh);
    expect([ok.status, await ok.json()]).toEqual([200, [{ id: 1 }]]);
    const res = await call('/rest/v1/notes?select=id', expired);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ code: 'PGRST303', details: null, hint: null, message: 'JWT expired' });
  });

  it("is refused by storage with Storage's AccessDenied (HTTP 400, statusCode 403, jwt expired)", async () => {
    const ok = await call('/storage/v1/object/authenticated/files/a.txt', fresh);
    expect([ok.status, await ok.text()]).toEqual([200, 'hello']);
    const res = await call('/storage/v1/object/authenticated/files/a.txt', expired);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ statusCode: '403', code: 'AccessDenied', error: 'Unauthorized', message: 'jwt expired' });
    // supabase-js shows the same refusal.
    const user = createClient(w.t.url, w.t.anonKey, { auth: { persistSession: false, autoRefreshToken: false }, global: { headers: { Authorization: `Bearer ${expired}` } }, realtime: { transport: WebSocket as never } });
    const listed = await user.storage.from('files').list();
    expect(listed.error?.message).toBe('jwt expired');
  });

  it('is refused by a verify_jwt function with 401 Invalid JWT', async () => {
    const ok = await call('/functions/v1/whoami', fresh, { method: 'POST' });
    expect([ok.status, await ok.text()]).toEqual([200, 'ok']);
    const res = await call('/functions/v1/whoami', expired, { method: 'POST' });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ code: 401, message: 'Invalid JWT' });
  });

  it('is refused by auth GET /user with 403 bad_jwt', async () => {
    const ok = await call('/auth/v1/user', fresh);
    expect(ok.status).toBe(200);
    const res = await call('/auth/v1/user', expired, { headers: { 'x-supabase-api-version': '2024-01-01' } });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ code: 'bad_jwt', message: 'invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired' });
  });
});
