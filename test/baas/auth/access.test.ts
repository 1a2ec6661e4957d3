/** Who may call what, error shapes, the audit trail, rate limits, health/settings/jwks. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { email, startAuthWorld, type AuthWorld } from './support.js';

let w: AuthWorld;
let userToken: string;
let userId: string;
beforeAll(async () => {
  w = await startAuthWorld({ AUTH_RATE_LIMIT_OTP: '1000', AUTH_RATE_LIMIT_TOKEN: '1000' });
  const signup = await w.http('/signup', { method: 'POST', body: { email: email('acc'), password: 'secret123' } });
  const body = (await signup.json()) as { access_token: string; user: { id: string } };
  userToken = body.access_token;
  userId = body.user.id;
}, 60_000);
afterAll(async () => w?.stop());

const ADMIN_ROUTES: [string, string, unknown?][] = [
  ['GET', '/admin/users'],
  ['POST', '/admin/users', { email: 'x@example.com', password: 'secret123' }],
  ['GET', '/admin/users/USER'],
  ['PUT', '/admin/users/USER', { user_metadata: { a: 1 } }],
  ['DELETE', '/admin/users/USER', {}],
  ['POST', '/admin/generate_link', { type: 'magiclink', email: 'x@example.com' }],
  ['GET', '/admin/audit'],
];

describe('admin endpoints', () => {
  it('refuse the anon key and signed-in users (403 not_admin), and callers without a token (401)', async () => {
    for (const [method, path, body] of ADMIN_ROUTES) {
      const target = path.replace('USER', userId);
      for (const token of [w.t.anonKey, userToken]) {
        const res = await w.http(target, { method, body, token });
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(await res.json()).toEqual({ code: 'not_admin', message: 'User not allowed' });
      }
      const none = await w.http(target, { method, body });
      expect(none.status, `${method} ${path} without a token`).toBe(401);
      expect(await none.json()).toEqual({ code: 'no_authorization', message: 'This endpoint requires a valid Bearer token' });
    }
    // The user survived all of it.
    expect((await w.http(`/admin/users/${userId}`, { token: w.t.serviceKey })).status).toBe(200);
  });

  it('users cannot write their own app_metadata', async () => {
    const res = await w.http('/user', { method: 'PUT', token: userToken, body: { app_metadata: { roles: ['admin'] } } });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'not_admin' });
  });
});

describe('the gateway and error shapes', () => {
  it('needs an API key that is a tenant JWT, except on open routes', async () => {
    const none = await fetch(`${w.t.url}/auth/v1/settings`);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ message: 'No API key found in request', hint: 'No `apikey` request header or url param was found.' });
    const bad = await w.http('/settings', { key: 'garbage' });
    expect(bad.status).toBe(401);
    expect((await fetch(`${w.t.url}/auth/v1/health`)).status).toBe(200);
  });

  it('answers the legacy body without the version header, the versioned one with it', async () => {
    const legacy = await w.http('/token?grant_type=password', { method: 'POST', version: null, body: { email: 'no@example.com', password: 'x' } });
    expect(legacy.status).toBe(400);
    expect(legacy.headers.get('x-supabase-api-version')).toBeNull();
    expect(await legacy.json()).toEqual({ code: 400, error_code: 'invalid_credentials', msg: 'Invalid login credentials' });
    const versioned = await w.http('/token?grant_type=password', { method: 'POST', body: { email: 'no@example.com', password: 'x' } });
    expect(versioned.headers.get('x-supabase-api-version')).toBe('2024-01-01');
    expect(await versioned.json()).toEqual({ code: 'invalid_credentials', message: 'Invalid login credentials' });
  });

  it('answers 4xx with a code for bad input and unsupported endpoints, never 500', async () => {
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/token?grant_type=nope', {}, 400, 'invalid_credentials'],
      ['POST', '/token?grant_type=pkce', { auth_code: 'x', code_verifier: 'y' }, 404, 'flow_state_not_found'],
      ['POST', '/signup', { email: 'not-an-email', password: 'secret123' }, 400, 'validation_failed'],
      ['POST', '/signup', { email: email('np') }, 400, 'validation_failed'],
      ['POST', '/signup', { email: 5, password: 'secret123' }, 400, 'bad_json'],
      ['POST', '/signup', { phone: '+15550000', password: 'secret123' }, 422, 'phone_provider_disabled'],
      ['POST', '/otp', { phone: '+15550000' }, 400, 'sms_send_failed'],
      ['GET', '/authorize?provider=github', undefined, 400, 'provider_disabled'],
      ['GET', '/nope', undefined, 404, 'not_found'],
      ['DELETE', '/signup', {}, 405, 'method_not_allowed'],
      ['POST', '/factors/not-a-uuid/challenge', {}, 401, 'no_authorization'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const res = await w.http(path, { method, body });
      expect(res.status, `${method} ${path}`).toBe(status);
      expect(((await res.json()) as { code: string }).code, `${method} ${path}`).toBe(code);
    }
    const notJson = await fetch(`${w.t.url}/auth/v1/signup`, { method: 'POST', headers: { apikey: w.t.anonKey, 'x-supabase-api-version': '2024-01-01' }, body: '{nope' });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { code: string }).code).toBe('bad_json');
    const adminNotUuid = await w.http('/admin/users/123', { token: w.t.serviceKey });
    expect(adminNotUuid.status).toBe(404);
  });

  it('health, settings and an empty JWKS with HS256', async () => {
    expect(await (await w.http('/health')).json()).toMatchObject({ name: 'GoTrue', description: 'GoTrue is a user registration and authentication API' });
    expect(await (await w.http('/settings')).json()).toMatchObject({ external: { email: true, anonymous_users: true, phone: false }, disable_signup: false, mailer_autoconfirm: true });
    expect(await (await w.http('/.well-known/jwks.json')).json()).toEqual({ keys: [] });
  });
});

describe('audit trail', () => {
  it('records sign-up, login, refresh, logout and admin changes; GET /admin/audit lists them newest first', async () => {
    const address = email('audit');
    const signup = (await (await w.http('/signup', { method: 'POST', body: { email: address, password: 'secret123' } })).json()) as { access_token: string; refresh_token: string };
    await w.http('/token?grant_type=refresh_token', { method: 'POST', body: { refresh_token: signup.refresh_token } });
    await w.http('/logout', { method: 'POST', token: signup.access_token });
    const res = await w.http(`/admin/audit?query=${encodeURIComponent(address)}`, { token: w.t.serviceKey });
    expect(res.status).toBe(200);
    expect(Number(res.headers.get('x-total-count'))).toBe(4);
    const entries = (await res.json()) as { payload: { action: string; actor_username: string; log_type: string }; ip_address: string }[];
    expect(entries.map((e) => e.payload.action)).toEqual(['logout', 'token_refreshed', 'login', 'user_signedup']);
    expect(entries[0]).toMatchObject({ payload: { actor_username: address, log_type: 'account' }, ip_address: '127.0.0.1' });
  });
});

describe('rate limits', () => {
  it('answers 429 over_request_rate_limit past the per-IP budget', async () => {
    const limited = await startAuthWorld({ AUTH_RATE_LIMIT_TOKEN: '3', AUTH_RATE_LIMIT_ANONYMOUS_USERS: '2' });
    try {
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await limited.http('/token?grant_type=password', { method: 'POST', body: { email: 'a@example.com', password: 'x' } })).status);
      expect(statuses).toEqual([400, 400, 400, 429]);
      const over = await limited.http('/token?grant_type=refresh_token', { method: 'POST', body: { refresh_token: 'x' } });
      expect(await over.json()).toEqual({ code: 'over_request_rate_limit', message: 'Request rate limit reached' });
      const anonymous = [];
      for (let i = 0; i < 3; i++) anonymous.push((await limited.http('/signup', { method: 'POST', body: {} })).status);
      expect(anonymous).toEqual([200, 200, 429]);
    } finally {
      await limited.stop();
    }
  });
});
