/** Spec baas-api.md §9.2 auth checks 33-47, in order, with unmodified supabase-js against a real Postgres. */
import type { Session, SupabaseClient } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimsOf, email, startAuthWorld, type AuthWorld } from './support.js';

let w: AuthWorld;
let u1: SupabaseClient;
const E = email('e');
beforeAll(async () => {
  // A reuse interval of 0 (check 40): a rotated token is refused at once unless it is the active one's parent.
  w = await startAuthWorld({ AUTH_REFRESH_TOKEN_REUSE_INTERVAL: '0' });
  u1 = w.client();
}, 60_000);
afterAll(async () => w?.stop());

let firstSession: Session;

describe('§9.2 auth checks', () => {
  it('33: signUp with autoconfirm answers a session whose token has the upstream claims', async () => {
    const { data, error } = await w.anon.auth.signUp({ email: E, password: 'secret123', options: { data: { name: 'A' } } });
    expect(error).toBeNull();
    expect(data.session).not.toBeNull();
    const claims = claimsOf(data.session!.access_token);
    expect(claims).toMatchObject({ sub: data.user!.id, role: 'authenticated', aud: 'authenticated', aal: 'aal1', email: E, is_anonymous: false });
    expect(typeof claims.session_id).toBe('string');
    expect(claims.amr).toEqual([{ method: 'password', timestamp: expect.any(Number) }]);
    expect(claims.exp).toBe((claims.iat as number) + 3600);
    expect(data.user!.user_metadata.name).toBe('A');
    expect(data.user!.identities).toEqual([expect.objectContaining({ provider: 'email', user_id: data.user!.id, email: E })]);
  });

  it('34: the same signUp again is 422 user_already_exists', async () => {
    const { error } = await w.anon.auth.signUp({ email: E, password: 'secret123' });
    expect(error).toMatchObject({ status: 422, code: 'user_already_exists', message: 'User already registered' });
  });

  it('35: a short password is AuthWeakPasswordError 422 weak_password', async () => {
    const { error } = await w.anon.auth.signUp({ email: email('e2'), password: 'abc' });
    expect(error?.name).toBe('AuthWeakPasswordError');
    expect(error).toMatchObject({ status: 422, code: 'weak_password', message: 'Password should be at least 6 characters.' });
    expect((error as unknown as { reasons: string[] }).reasons).toEqual(['length']);
  });

  it('36: a wrong password is AuthApiError 400 invalid_credentials', async () => {
    const { error } = await w.anon.auth.signInWithPassword({ email: E, password: 'wrong' });
    expect(error?.name).toBe('AuthApiError');
    expect(error).toMatchObject({ status: 400, code: 'invalid_credentials', message: 'Invalid login credentials' });
    const unknown = await w.anon.auth.signInWithPassword({ email: email('nobody'), password: 'secret123' });
    expect(unknown.error).toMatchObject({ status: 400, code: 'invalid_credentials' });
  });

  it('37: signInWithPassword answers a bearer session and fires SIGNED_IN', async () => {
    const events: string[] = [];
    u1.auth.onAuthStateChange((event) => events.push(event));
    const { data, error } = await u1.auth.signInWithPassword({ email: E, password: 'secret123' });
    expect(error).toBeNull();
    expect(data.session).toMatchObject({ token_type: 'bearer', expires_in: 3600 });
    expect(Math.abs(data.session!.expires_at! - (Date.now() / 1000 + 3600))).toBeLessThan(60);
    expect(data.session!.refresh_token.length).toBeGreaterThan(0);
    expect(events).toContain('SIGNED_IN');
    firstSession = data.session!;
  });

  it('38: getUser answers the user of the token', async () => {
    const { data, error } = await u1.auth.getUser();
    expect(error).toBeNull();
    expect(data.user!.id).toBe(claimsOf(firstSession.access_token).sub);
    expect(data.user!.email).toBe(E);
  });

  it('39: updateUser merges metadata; the refreshed token carries it', async () => {
    const { data, error } = await u1.auth.updateUser({ data: { name: 'B' } });
    expect(error).toBeNull();
    expect(data.user!.user_metadata.name).toBe('B');
    const refreshed = await u1.auth.refreshSession();
    expect(refreshed.error).toBeNull();
    expect((claimsOf(refreshed.data.session!.access_token).user_metadata as { name: string }).name).toBe('B');
  });

  it('40: refresh rotates; the active token parent returns the active token; an older one is refused', async () => {
    // firstSession's token was rotated by check 39; rotate once more.
    const second = (await u1.auth.getSession()).data.session!;
    const third = await u1.auth.refreshSession();
    expect(third.error).toBeNull();
    // (The access token differs too unless both were issued within the same second: same claims, same iat.)
    expect(third.data.session!.refresh_token).not.toBe(second.refresh_token);
    // The immediate parent of the active token: the client lost the answer, it gets the active token back.
    const parent = await w.client().auth.refreshSession({ refresh_token: second.refresh_token });
    expect(parent.error).toBeNull();
    expect(parent.data.session!.refresh_token).toBe(third.data.session!.refresh_token);
    // The grand-parent, past the reuse interval (0 here): refused, and the session's tokens are revoked.
    const reused = await w.client().auth.refreshSession({ refresh_token: firstSession.refresh_token });
    expect(reused.error).toMatchObject({ status: 400, code: 'refresh_token_already_used', message: 'Invalid Refresh Token: Already Used' });
    const afterFamilyRevoked = await w.client().auth.refreshSession({ refresh_token: third.data.session!.refresh_token });
    expect(afterFamilyRevoked.error?.status).toBe(400);
  });

  it('41: signOut ends the session: its access token and refresh token are refused', async () => {
    const c = w.client();
    const { data } = await c.auth.signInWithPassword({ email: E, password: 'secret123' });
    const session = data.session!;
    expect((await c.auth.signOut()).error).toBeNull();
    const after = await w.anon.auth.getUser(session.access_token);
    expect(after.error?.name).toBe('AuthSessionMissingError');
    const raw = await w.http('/user', { token: session.access_token });
    expect(raw.status).toBe(403);
    expect(await raw.json()).toEqual({ code: 'session_not_found', message: 'Session from session_id claim in JWT does not exist' });
    const refresh = await w.client().auth.refreshSession({ refresh_token: session.refresh_token });
    expect(refresh.error?.status).toBe(400);
  });

  let e3Id: string;
  const E3 = email('e3');

  it('42: admin createUser is refused with the anon key and done with the service key', async () => {
    const refused = await w.anon.auth.admin.createUser({ email: E3, password: 'secret123' });
    expect(refused.error).toMatchObject({ status: 403, code: 'not_admin', message: 'User not allowed' });
    const { data, error } = await w.svc.auth.admin.createUser({ email: E3, password: 'secret123', email_confirm: true });
    expect(error).toBeNull();
    expect(data.user!.email_confirmed_at).toEqual(expect.any(String));
    e3Id = data.user!.id;
    const again = await w.svc.auth.admin.createUser({ email: E3, password: 'secret123' });
    expect(again.error).toMatchObject({ status: 422, code: 'email_exists' });
  });

  it('43: listUsers pages with a total', async () => {
    const { data, error } = await w.svc.auth.admin.listUsers({ page: 1, perPage: 10 });
    expect(error).toBeNull();
    expect(data.users.map((u) => u.email)).toContain(E3);
    expect((data as { total: number }).total).toBeGreaterThanOrEqual(2);
    const paged = await w.svc.auth.admin.listUsers({ page: 1, perPage: 1 });
    expect(paged.data.users).toHaveLength(1);
    expect((paged.data as { nextPage: number | null }).nextPage).toBe(2);
  });

  it('44: getUserById and updateUserById', async () => {
    const got = await w.svc.auth.admin.getUserById(e3Id);
    expect(got.data.user).toMatchObject({ id: e3Id, email: E3 });
    const updated = await w.svc.auth.admin.updateUserById(e3Id, { user_metadata: { x: 1 } });
    expect(updated.error).toBeNull();
    expect(updated.data.user!.user_metadata.x).toBe(1);
    const missing = await w.svc.auth.admin.getUserById('00000000-0000-4000-8000-000000000000');
    expect(missing.error).toMatchObject({ status: 404, code: 'user_not_found' });
  });

  it('45: deleteUser removes the user; signing in as it is invalid_credentials', async () => {
    const { data, error } = await w.svc.auth.admin.deleteUser(e3Id);
    expect(error).toBeNull();
    expect(data.user!.id).toBe(e3Id);
    const signIn = await w.anon.auth.signInWithPassword({ email: E3, password: 'secret123' });
    expect(signIn.error).toMatchObject({ status: 400, code: 'invalid_credentials' });
  });

  it('46: getClaims answers the verified claims', async () => {
    const c = w.client();
    const { data: signedIn } = await c.auth.signInWithPassword({ email: E, password: 'secret123' });
    const { data, error } = await c.auth.getClaims();
    expect(error).toBeNull();
    expect(data!.claims).toMatchObject({ sub: signedIn.user!.id, role: 'authenticated' });
  });

  it('47: signInAnonymously answers an anonymous user with an authenticated token', async () => {
    const { data, error } = await w.client().auth.signInAnonymously();
    expect(error).toBeNull();
    expect(data.user!.is_anonymous).toBe(true);
    expect(claimsOf(data.session!.access_token)).toMatchObject({ role: 'authenticated', is_anonymous: true, amr: [{ method: 'anonymous', timestamp: expect.any(Number) }] });
  });
});
