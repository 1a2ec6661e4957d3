/** Per-tenant auth settings in the tenant record (`auth_settings`), set through the management API, win over AUTH_*. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../../support/tenants.js';
import { claimsOf, email, startAuthWorld, type AuthWorld } from './support.js';

let w: AuthWorld;
beforeAll(async () => {
  w = await startAuthWorld();
}, 60_000);
afterAll(async () => w?.stop());

describe('tenant auth_settings', () => {
  it('are validated field by field', async () => {
    const bad = await api(w.t, 'PATCH', '/api/tenants/realtime-dev', { tenant: { auth_settings: { jwt_expiry: 'soon', autoconfirm: 1, nope: true } } });
    expect(bad.status).toBe(422);
    expect(bad.body).toEqual({ errors: { 'auth_settings.jwt_expiry': ['is invalid'], 'auth_settings.autoconfirm': ['is invalid'], 'auth_settings.nope': ['is invalid'] } });
  });

  it('change token lifetime, password length and anonymous sign-ins of that tenant, live', async () => {
    const set = await api(w.t, 'PATCH', '/api/tenants/realtime-dev', { tenant: { auth_settings: { jwt_expiry: 120, min_password_length: 10, anonymous_sign_ins: false } } });
    expect(set.status).toBe(200);
    expect((set.body as { data: { auth_settings: unknown } }).data.auth_settings).toEqual({ jwt_expiry: 120, min_password_length: 10, anonymous_sign_ins: false });
    const short = await w.anon.auth.signUp({ email: email('ts'), password: 'secret123' });
    expect(short.error).toMatchObject({ code: 'weak_password', message: 'Password should be at least 10 characters.' });
    const { data } = await w.anon.auth.signUp({ email: email('ts'), password: 'secret-1234' });
    expect(data.session!.expires_in).toBe(120);
    const claims = claimsOf(data.session!.access_token);
    expect((claims.exp as number) - (claims.iat as number)).toBe(120);
    expect((await w.anon.auth.signInAnonymously()).error).toMatchObject({ status: 422, code: 'anonymous_provider_disabled' });
    expect(await (await w.http('/settings')).json()).toMatchObject({ external: { anonymous_users: false } });
    // Cleared: the AUTH_* defaults again.
    expect((await api(w.t, 'PATCH', '/api/tenants/realtime-dev', { tenant: { auth_settings: null } })).status).toBe(200);
    expect((await w.anon.auth.signInAnonymously()).error).toBeNull();
  });
});
