/** TOTP multi-factor authentication with an independent TOTP generator (otpauth) and unmodified supabase-js. */
import type { SupabaseClient } from '@supabase/supabase-js';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { base32Encode, totpCode, verifyTotp } from '../../../src/baas/auth/totp.js';
import { claimsOf, email, startAuthWorld, type AuthWorld } from './support.js';

let w: AuthWorld;
beforeAll(async () => {
  w = await startAuthWorld();
}, 60_000);
afterAll(async () => w?.stop());

function generator(secret: string): TOTP {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });
}

describe('TOTP codes (pure)', () => {
  it('match otpauth at any time and accept one step of skew, not three', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.integer({ min: 120_000, max: 4_000_000_000_000 }), (bytes, t) => {
        const secret = base32Encode(bytes);
        const at = (ms: number) => generator(secret).generate({ timestamp: ms });
        expect(totpCode(secret, Math.floor(t / 30_000))).toBe(at(t));
        expect(verifyTotp(secret, at(t - 30_000), t)).toBe(true);
        expect(verifyTotp(secret, at(t + 30_000), t)).toBe(true);
        // Three steps away is refused unless that code happens to equal a near one (1 in ~333k).
        const far = at(t - 90_000);
        if (![-1, 0, 1].some((d) => at(t + d * 30_000) === far)) expect(verifyTotp(secret, far, t)).toBe(false);
      }),
    );
    expect(verifyTotp('JBSWY3DPEHPK3PXP', '12345', Date.now())).toBe(false);
    // RFC 6238 appendix B, SHA-1, 8 digits truncated to the last 6.
    expect(totpCode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 1)).toBe('287082');
  });
});

describe('MFA with supabase-js', () => {
  let c: SupabaseClient;
  let factorId: string;
  let secret: string;

  it('enroll, challenge and verify move the session to aal2', async () => {
    c = w.client();
    const address = email('mfa');
    await c.auth.signUp({ email: address, password: 'secret123' });
    const enrolled = await c.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'phone app' });
    expect(enrolled.error).toBeNull();
    factorId = enrolled.data!.id;
    secret = (enrolled.data as { totp: { secret: string; uri: string } }).totp.secret;
    expect((enrolled.data as { totp: { uri: string } }).totp.uri).toContain('otpauth://totp/');
    const duplicate = await c.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'phone app' });
    expect(duplicate.error).toMatchObject({ status: 422, code: 'mfa_factor_name_conflict' });
    const challenge = await c.auth.mfa.challenge({ factorId });
    expect(challenge.error).toBeNull();
    const wrong = await c.auth.mfa.verify({ factorId, challengeId: challenge.data!.id, code: '000000' === generator(secret).generate() ? '111111' : '000000' });
    expect(wrong.error).toMatchObject({ status: 422, code: 'mfa_verification_failed' });
    const verified = await c.auth.mfa.verify({ factorId, challengeId: challenge.data!.id, code: generator(secret).generate() });
    expect(verified.error).toBeNull();
    const claims = claimsOf(verified.data!.access_token);
    expect(claims.aal).toBe('aal2');
    expect((claims.amr as { method: string }[]).map((m) => m.method)).toEqual(['totp', 'password']);
    const level = await c.auth.mfa.getAuthenticatorAssuranceLevel();
    expect(level.data).toMatchObject({ currentLevel: 'aal2', nextLevel: 'aal2' });
    // A refresh keeps aal2.
    const refreshed = await c.auth.refreshSession();
    expect(claimsOf(refreshed.data.session!.access_token).aal).toBe('aal2');
  });

  it('a new sign-in is aal1 with aal2 next; listFactors shows the verified factor', async () => {
    const other = w.client();
    const { data: user } = await c.auth.getUser();
    await other.auth.signInWithPassword({ email: user.user!.email!, password: 'secret123' });
    const level = await other.auth.mfa.getAuthenticatorAssuranceLevel();
    expect(level.data).toMatchObject({ currentLevel: 'aal1', nextLevel: 'aal2' });
    const factors = await other.auth.mfa.listFactors();
    expect(factors.data!.totp.map((f) => f.id)).toEqual([factorId]);
    // Unenrolling a verified factor needs aal2.
    const refused = await other.auth.mfa.unenroll({ factorId });
    expect(refused.error).toMatchObject({ status: 422, code: 'insufficient_aal' });
  });

  it("another user's factor is not found", async () => {
    const stranger = w.client();
    await stranger.auth.signUp({ email: email('stranger'), password: 'secret123' });
    const challenge = await stranger.auth.mfa.challenge({ factorId });
    expect(challenge.error).toMatchObject({ status: 404, code: 'mfa_factor_not_found' });
  });
});
