/** Refresh rotation and reuse under concurrency, sign-out scopes, imported Supabase users, expired tokens. */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimsOf, email, startAuthWorld, type AuthWorld } from './support.js';
import { DUMP_EMAIL, DUMP_PASSWORD, SUPABASE_AUTH_DUMP } from './supabase-dump.js';

let w: AuthWorld;
let admin: pg.Client;
beforeAll(async () => {
  // Upstream's platform default reuse interval (10 s).
  w = await startAuthWorld();
  await w.http('/health');
  admin = new pg.Client({ connectionString: w.t.db.url });
  await admin.connect();
}, 60_000);
afterAll(async () => {
  await admin?.end();
  await w?.stop();
});

async function signedIn(address = email('s')): Promise<{ access_token: string; refresh_token: string; user: { id: string } }> {
  const signup = await w.http('/signup', { method: 'POST', body: { email: address, password: 'secret123' } });
  expect(signup.status).toBe(200);
  return (await signup.json()) as { access_token: string; refresh_token: string; user: { id: string } };
}

async function refresh(token: string): Promise<Response> {
  return w.http('/token?grant_type=refresh_token', { method: 'POST', body: { refresh_token: token } });
}

describe('refresh-token rotation', () => {
  it('concurrent refreshes of one token all succeed with one new active token (row locks)', async () => {
    const session = await signedIn();
    const answers = await Promise.all(Array.from({ length: 8 }, () => refresh(session.refresh_token)));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    const tokens = new Set(await Promise.all(answers.map(async (a) => ((await a.json()) as { refresh_token: string }).refresh_token)));
    expect(tokens.size).toBe(1);
    const { rows } = await admin.query(
      `SELECT count(*) FILTER (WHERE NOT revoked)::int AS active, count(*)::int AS total FROM auth.refresh_tokens WHERE session_id = $1`,
      [claimsOf(session.access_token).session_id],
    );
    expect(rows[0]).toEqual({ active: 1, total: 2 });
  });

  it('an older token within the reuse interval gets a new token; past it, the family is revoked', async () => {
    const session = await signedIn();
    const second = ((await (await refresh(session.refresh_token)).json()) as { refresh_token: string }).refresh_token;
    const third = ((await (await refresh(second)).json()) as { refresh_token: string }).refresh_token;
    // The grand-parent, within 10 s: allowed (a client that lost two answers in a row).
    const within = await refresh(session.refresh_token);
    expect(within.status).toBe(200);
    // That answer's token is now the active one, with the grand-parent as its parent. `second` is neither active nor
    // the active one's parent: past the interval (moved back in the database) it is refused and the family revoked.
    await admin.query(`UPDATE auth.refresh_tokens SET updated_at = now() - interval '1 minute' WHERE token = $1`, [second]);
    const reused = await refresh(second);
    expect(reused.status).toBe(400);
    expect(await reused.json()).toEqual({ code: 'refresh_token_already_used', message: 'Invalid Refresh Token: Already Used' });
    expect(reused.headers.get('x-sb-error-code')).toBe('refresh_token_already_used');
    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM auth.refresh_tokens WHERE session_id = $1 AND NOT revoked`, [claimsOf(session.access_token).session_id]);
    expect(rows[0].n).toBe(0);
    expect(third).not.toBe(second);
  });

  it('unknown and missing refresh tokens', async () => {
    const unknown = await refresh('not-a-token');
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toEqual({ code: 'refresh_token_not_found', message: 'Invalid Refresh Token: Refresh Token Not Found' });
    const missing = await w.http('/token?grant_type=refresh_token', { method: 'POST', body: {} });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({ error: 'invalid_request', error_description: 'refresh_token required' });
  });
});

describe('sign-out scopes', () => {
  it('local ends one session, others all but this one, global all', async () => {
    const address = email('scopes');
    await signedIn(address);
    const signIn = async () => ((await (await w.http('/token?grant_type=password', { method: 'POST', body: { email: address, password: 'secret123' } })).json()) as { access_token: string });
    const [a, b, c] = [await signIn(), await signIn(), await signIn()];
    const live = async (token: string) => (await w.http('/user', { token })).status;
    expect((await w.http('/logout?scope=local', { method: 'POST', token: a.access_token })).status).toBe(204);
    expect([await live(a.access_token), await live(b.access_token), await live(c.access_token)]).toEqual([403, 200, 200]);
    expect((await w.http('/logout?scope=others', { method: 'POST', token: b.access_token })).status).toBe(204);
    expect([await live(b.access_token), await live(c.access_token)]).toEqual([200, 403]);
    expect((await w.http('/logout?scope=nope', { method: 'POST', token: b.access_token })).status).toBe(400);
    expect((await w.http('/logout', { method: 'POST', token: b.access_token })).status).toBe(204);
    expect(await live(b.access_token)).toBe(403);
  });
});

describe('tokens', () => {
  it('an expired token is refused by /user (403 bad_jwt) and by REST (401 PGRST303)', async () => {
    const session = await signedIn();
    const claims = claimsOf(session.access_token);
    const expired = await w.t.sign({ ...claims, exp: Math.floor(Date.now() / 1000) - 10 });
    const user = await w.http('/user', { token: expired });
    expect(user.status).toBe(403);
    expect(await user.json()).toMatchObject({ code: 'bad_jwt' });
    const rest = await fetch(`${w.t.url}/rest/v1/nothing`, { headers: { apikey: w.t.anonKey, authorization: `Bearer ${expired}` } });
    expect(rest.status).toBe(401);
    expect(await rest.json()).toMatchObject({ code: 'PGRST303', message: 'JWT expired' });
    // A live one is REST's authenticated role.
    const live = await fetch(`${w.t.url}/rest/v1/nothing`, { headers: { apikey: w.t.anonKey, authorization: `Bearer ${session.access_token}` } });
    expect(live.status).toBe(404);
  });

  it('a token signed with another secret is refused', async () => {
    const forged = await w.t.sign({ sub: '00000000-0000-4000-8000-000000000001', role: 'service_role', exp: Math.floor(Date.now() / 1000) + 60 }, 'another-secret-with-at-least-32-characters!!');
    expect((await w.http('/user', { token: forged })).status).toBe(403);
    expect((await w.http('/admin/users', { token: forged, key: w.t.serviceKey })).status).toBe(403);
  });
});

describe('users imported from a Supabase dump', () => {
  it('sign in with the password of their GoTrue bcrypt hash', async () => {
    await admin.query(SUPABASE_AUTH_DUMP);
    const wrong = await w.http('/token?grant_type=password', { method: 'POST', body: { email: DUMP_EMAIL, password: 'nope-nope' } });
    expect(wrong.status).toBe(400);
    const ok = await w.http('/token?grant_type=password', { method: 'POST', body: { email: DUMP_EMAIL.toUpperCase(), password: DUMP_PASSWORD } });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { user: { email: string; user_metadata: { name: string } } };
    expect(body.user).toMatchObject({ email: DUMP_EMAIL, user_metadata: { name: 'Imported' } });
    // Its dumped session's refresh token still refreshes.
    expect((await refresh('dumpedrefreshtk1')).status).toBe(200);
  });

  it('admin createUser keeps a given bcrypt password_hash', async () => {
    const address = email('hash');
    const created = await w.http('/admin/users', { method: 'POST', token: w.t.serviceKey, key: w.t.serviceKey, body: { email: address, password_hash: '$2a$10$qdcLWaSnsfMkE8CcqaO3uO/S8Tm1fwByQ8PIiGYq/720AxuXEUTqy', email_confirm: true } });
    expect(created.status).toBe(200);
    const ok = await w.http('/token?grant_type=password', { method: 'POST', body: { email: address, password: DUMP_PASSWORD } });
    expect(ok.status).toBe(200);
    const bad = await w.http('/admin/users', { method: 'POST', token: w.t.serviceKey, key: w.t.serviceKey, body: { email: email('hash'), password_hash: 'plain' } });
    expect(bad.status).toBe(400);
  });
});

describe('claims in RLS', () => {
  it('app_metadata.roles set by an admin reaches auth.jwt() in REST after a refresh', async () => {
    await admin.query(`CREATE FUNCTION public.my_roles() RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT auth.jwt() -> 'app_metadata' -> 'roles' $$`);
    await admin.query(`NOTIFY pgrst, 'reload schema'`);
    const session = await signedIn();
    const set = await w.http(`/admin/users/${session.user.id}`, { method: 'PUT', token: w.t.serviceKey, key: w.t.serviceKey, body: { app_metadata: { roles: ['editor'] } } });
    expect(set.status).toBe(200);
    const refreshed = (await (await refresh(session.refresh_token)).json()) as { access_token: string };
    expect((claimsOf(refreshed.access_token).app_metadata as { roles: string[] }).roles).toEqual(['editor']);
    let roles: unknown = null;
    for (let i = 0; i < 50 && roles === null; i++) {
      const res = await fetch(`${w.t.url}/rest/v1/rpc/my_roles`, { method: 'POST', headers: { apikey: w.t.anonKey, authorization: `Bearer ${refreshed.access_token}`, 'content-type': 'application/json' }, body: '{}' });
      if (res.status === 200) roles = await res.json();
      else await new Promise((r) => setTimeout(r, 50));
    }
    expect(roles).toEqual(['editor']);
  });
});
