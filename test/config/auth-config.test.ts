import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { configError } from './config-error.js';

describe('auth configuration', () => {
  it("defaults as a local supabase start: 1 h tokens, 10 s reuse, 6 characters, autoconfirm, anonymous sign-ins, GoTrue's limits", () => {
    expect(loadConfig({}).auth).toEqual({
      siteUrl: null, jwtExpiry: 3600, refreshTokenReuseInterval: 10, minPasswordLength: 6, autoconfirm: true, anonymousSignIns: true,
      uriAllowList: [], smtpUrl: null, smtpSender: 'Performer <noreply@performer.local>', signingKeys: [], rateLimitToken: 150, rateLimitOtp: 30,
      rateLimitVerify: 30, rateLimitAnonymous: 30, emailMaxFrequency: 60,
    });
  });

  it('reads every variable', () => {
    const auth = loadConfig({
      AUTH_SITE_URL: 'https://app.example.com', AUTH_JWT_EXPIRY: '600', AUTH_REFRESH_TOKEN_REUSE_INTERVAL: '0', AUTH_MIN_PASSWORD_LENGTH: '10',
      AUTH_AUTOCONFIRM: 'false', AUTH_ANONYMOUS_SIGN_INS: '0', AUTH_SMTP_URL: 'smtp://u:p@mail:25',
      AUTH_SIGNING_KEYS: '[{"kty":"EC","kid":"k","d":"x","crv":"P-256","x":"a","y":"b"}]',
    }).auth;
    expect(auth).toMatchObject({ siteUrl: 'https://app.example.com', jwtExpiry: 600, refreshTokenReuseInterval: 0, minPasswordLength: 10, autoconfirm: false, anonymousSignIns: false, smtpUrl: 'smtp://u:p@mail:25' });
    expect(auth.signingKeys).toHaveLength(1);
  });

  it('refuses bad values by name', () => {
    expect(configError({ AUTH_JWT_EXPIRY: '10' }).variable).toBe('AUTH_JWT_EXPIRY');
    expect(configError({ AUTH_MIN_PASSWORD_LENGTH: '3' }).variable).toBe('AUTH_MIN_PASSWORD_LENGTH');
    expect(configError({ AUTH_AUTOCONFIRM: 'maybe' }).variable).toBe('AUTH_AUTOCONFIRM');
    expect(configError({ AUTH_SMTP_URL: 'http://mail' }).variable).toBe('AUTH_SMTP_URL');
    expect(configError({ AUTH_SIGNING_KEYS: '[{"kty":"oct","k":"abc"}]' }).variable).toBe('AUTH_SIGNING_KEYS');
    expect(configError({ AUTH_SIGNING_KEYS: 'nope' }).variable).toBe('AUTH_SIGNING_KEYS');
  });
});
