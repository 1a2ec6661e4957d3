import fc from 'fast-check';
import { base64url, CompactSign, exportJWK, generateKeyPair, generateSecret, SignJWT, type JWK } from 'jose';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  bearerToken,
  cleanToken,
  handshakeJwtMessage,
  jwtFailureCode,
  jwtFailureMessage,
  JwtVerifier,
  signHs256,
  type JwtFailure,
  type JwtResult,
} from '../../src/auth/jwt.js';

const SECRET = 'unit-test-secret-with-at-least-32-characters!';
const OTHER_SECRET = 'a-completely-different-secret-of-32-chars-or-more';
const encoder = new TextEncoder();
const nowSec = () => Math.floor(Date.now() / 1000);
const later = () => nowSec() + 3600;

type Signable = Parameters<SignJWT['sign']>[0];

interface Keys {
  rs: { priv: Signable; jwk: JWK };
  es: { priv: Signable; jwk: JWK };
  ed: { priv: Signable; jwk: JWK };
  oct: { bytes: Uint8Array; jwk: JWK };
}

let keys: Keys;
let jwks: { keys: Record<string, unknown>[] };

async function pair(alg: string, kid: string): Promise<{ priv: Signable; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { priv: privateKey, jwk: { ...(await exportJWK(publicKey)), kid } };
}

beforeAll(async () => {
  const octKey = await generateSecret('HS256', { extractable: true });
  const octJwk = { ...(await exportJWK(octKey)), kid: 'oct-1' };
  keys = {
    rs: await pair('RS256', 'rsa-1'),
    es: await pair('ES256', 'ec-1'),
    ed: await pair('EdDSA', 'ed-1'),
    oct: { bytes: base64url.decode(octJwk.k as string), jwk: octJwk },
  };
  jwks = { keys: [keys.rs.jwk, keys.es.jwk, keys.ed.jwk, keys.oct.jwk] as Record<string, unknown>[] };
});

function sign(claims: Record<string, unknown>, header: Record<string, unknown>, key: Signable): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key);
}

function failure(result: JwtResult): JwtFailure {
  if (result.ok) throw new Error(`expected a failure, got claims ${JSON.stringify(result.claims)}`);
  return result.error;
}

/** A compact JWS by hand, for headers and payloads jose would refuse to produce. */
function handmade(header: unknown, payload: string, signature = 'c2ln'): string {
  return `${base64url.encode(JSON.stringify(header))}.${base64url.encode(payload)}.${signature}`;
}

const strict = { requireRoleAndExp: true } as const;
const lax = { requireRoleAndExp: false } as const;

describe('HS* with the tenant secret', () => {
  it.each(['HS256', 'HS384', 'HS512'])('accepts %s signed with the secret', async (alg) => {
    const v = new JwtVerifier({ secret: SECRET, jwks: null });
    const exp = later();
    const token = await sign({ role: 'anon', exp, sub: 'u1' }, { alg, typ: 'JWT' }, encoder.encode(SECRET));
    const result = await v.verify(token, strict);
    expect(result).toEqual({ ok: true, claims: { role: 'anon', exp, sub: 'u1' }, exp });
  });

  it.each(['HS256', 'HS384', 'HS512'])('rejects %s signed with another secret as a bad signature', async (alg) => {
    const v = new JwtVerifier({ secret: SECRET, jwks: null });
    const token = await sign({ role: 'anon', exp: later() }, { alg }, encoder.encode(OTHER_SECRET));
    const error = failure(await v.verify(token, strict));
    expect(error).toEqual({ kind: 'signature' });
    expect(jwtFailureCode(error)).toBe('JwtSignatureError');
    expect(jwtFailureMessage(error)).toBe('Failed to validate JWT signature');
  });

  it('signHs256 produces tokens the verifier accepts with the same secret only', async () => {
    const token = await signHs256({ role: 'service_role', exp: later() }, SECRET);
    expect((await new JwtVerifier({ secret: SECRET, jwks: null }).verify(token, strict)).ok).toBe(true);
    expect(failure(await new JwtVerifier({ secret: OTHER_SECRET, jwks: null }).verify(token, strict))).toEqual({ kind: 'signature' });
  });

  it('imports the HMAC key once per algorithm and key, not on every verify', async () => {
    // jose given raw secret bytes imports a WebCrypto key on every call: ~20 KB of garbage per verify, two verifies
    // per socket (handshake and join), which a burst of joins promotes into the old generation.
    const tokens: string[] = [];
    for (const alg of ['HS256', 'HS256', 'HS256', 'HS512', 'HS512']) tokens.push(await sign({ role: 'anon', exp: later() }, { alg }, encoder.encode(SECRET)));
    for (let i = 0; i < 3; i++) tokens.push(await sign({ role: 'anon', exp: later() }, { alg: 'HS256', kid: 'oct-1' }, keys.oct.bytes));
    const importKey = vi.spyOn(crypto.subtle, 'importKey');
    try {
      const v = new JwtVerifier({ secret: SECRET, jwks });
      for (const token of tokens) expect((await v.verify(token, strict)).ok).toBe(true);
      const hmacImports = importKey.mock.calls.filter(([, , algorithm]) => (algorithm as { name?: string }).name === 'HMAC');
      expect(hmacImports.length).toBe(3);
    } finally {
      importKey.mockRestore();
    }
  });

  it('checks a signature once per token text, and the time-dependent claims on every verify', async () => {
    const v = new JwtVerifier({ secret: SECRET, jwks });
    const exp = nowSec() + 60;
    const token = await sign({ role: 'anon', exp }, { alg: 'HS256' }, encoder.encode(SECRET));
    const forged = `${token.slice(0, token.lastIndexOf('.'))}.${'A'.repeat(43)}`;
    const verify = vi.spyOn(crypto.subtle, 'verify');
    try {
      expect(await v.verify(token, strict)).toEqual({ ok: true, claims: { role: 'anon', exp }, exp });
      expect(await v.verify(token, strict)).toEqual({ ok: true, claims: { role: 'anon', exp }, exp });
      expect(verify).toHaveBeenCalledTimes(1);
      // Same payload, other signature: a different text, checked on its own.
      expect(failure(await v.verify(forged, strict))).toEqual({ kind: 'signature' });
      expect(verify).toHaveBeenCalledTimes(2);
    } finally {
      verify.mockRestore();
    }
    // Known, and expired since: refused.
    expect(failure(await v.verify(token, { ...strict, nowMs: (exp + 5) * 1000 }))).toEqual({ kind: 'expired', secondsAgo: 5 });
    // Known, and another caller's rules: applied.
    expect(failure(await v.verify(token, { ...strict, claimValidators: { iss: 'x' } }))).toEqual({ kind: 'claim_mismatch', claim: 'iss' });
  });

  it('fails with a signer error for HS* when the tenant has no secret and no oct key', async () => {
    const v = new JwtVerifier({ secret: null, jwks: null });
    const token = await signHs256({ role: 'anon', exp: later() }, SECRET);
    const error = failure(await v.verify(token, strict));
    expect(error).toEqual({ kind: 'signer' });
    expect(jwtFailureCode(error)).toBe('JwtSignerError');
  });
});

describe('HS* with a kid', () => {
  it('uses the oct JWK with that kid instead of the secret', async () => {
    const v = new JwtVerifier({ secret: SECRET, jwks });
    const withOct = await sign({ role: 'anon', exp: later() }, { alg: 'HS256', kid: 'oct-1' }, keys.oct.bytes);
    expect((await v.verify(withOct, strict)).ok).toBe(true);
    // Signed with the secret but naming the oct kid: the oct key is used, so the signature does not verify.
    const withSecret = await sign({ role: 'anon', exp: later() }, { alg: 'HS256', kid: 'oct-1' }, encoder.encode(SECRET));
    expect(failure(await v.verify(withSecret, strict))).toEqual({ kind: 'signature' });
  });

  it('falls back to the secret when the kid is not in the JWKS', async () => {
    const v = new JwtVerifier({ secret: SECRET, jwks });
    const token = await sign({ role: 'anon', exp: later() }, { alg: 'HS256', kid: 'not-there' }, encoder.encode(SECRET));
    expect((await v.verify(token, strict)).ok).toBe(true);
    const octSigned = await sign({ role: 'anon', exp: later() }, { alg: 'HS256', kid: 'not-there' }, keys.oct.bytes);
    expect(failure(await v.verify(octSigned, strict))).toEqual({ kind: 'signature' });
  });

  it('falls back to the secret when the kid names a non-oct key', async () => {
    const v = new JwtVerifier({ secret: SECRET, jwks });
    const token = await sign({ role: 'anon', exp: later() }, { alg: 'HS256', kid: 'rsa-1' }, encoder.encode(SECRET));
    expect((await v.verify(token, strict)).ok).toBe(true);
  });

  it('falls back to the secret when the tenant has no JWKS at all', async () => {
    const v = new JwtVerifier({ secret: SECRET, jwks: null });
    const token = await sign({ role: 'anon', exp: later() }, { alg: 'HS512', kid: 'oct-1' }, encoder.encode(SECRET));
    expect((await v.verify(token, strict)).ok).toBe(true);
  });
});

describe('asymmetric algorithms through the JWKS', () => {
  const cases = [
    ['RS256', 'rs', 'rsa-1'],
    ['ES256', 'es', 'ec-1'],
    ['EdDSA', 'ed', 'ed-1'],
  ] as const;

  it.each(cases)('accepts %s by kid', async (alg, which, kid) => {
    const v = new JwtVerifier({ secret: SECRET, jwks });
    const exp = later();
    const token = await sign({ role: 'authenticated', exp }, { alg, kid }, keys[which].priv);
    expect(await v.verify(token, strict)).toEqual({ ok: true, claims: { role: 'authenticated', exp }, exp });
    // The imported key is cached per alg and kid: verifying again must give the same answer.
    expect((await v.verify(token, strict)).ok).toBe(true);
  });

  it.each(cases)('rejects %s signed by a different key under the same kid as a bad signature', async (alg, _which, kid) => {
    const v = new JwtVerifier({ secret: SECRET, jwks });
    const stranger = await generateKeyPair(alg, { extractable: true });
    const token = await sign({ role: 'anon', exp: later() }, { alg, kid }, stranger.privateKey);
    expect(failure(await v.verify(token, strict))).toEqual({ kind: 'signature' });
  });

  it.each(cases)('fails %s with an unknown kid with a signer error naming the kid', async (alg, which) => {
    const v = new JwtVerifier({ secret: SECRET, jwks });
    const token = await sign({ role: 'anon', exp: later() }, { alg, kid: 'missing-kid' }, keys[which].priv);
    const error = failure(await v.verify(token, strict));
    expect(error).toEqual({ kind: 'signer_kid', kid: 'missing-kid' });
    expect(jwtFailureCode(error)).toBe('JwtSignerError');
    expect(jwtFailureMessage(error)).toBe(
      'Failed to generate JWT signer for key ID (kid) "missing-kid", check your JWT secret or JWKS configuration',
    );
    expect(handshakeJwtMessage(error)).toBe(jwtFailureMessage(error));
  });

  it('needs the key type to match the alg: an RS256 token naming an EC kid has no signer', async () => {
    const v = new JwtVerifier({ secret: SECRET, jwks });
    const token = await sign({ role: 'anon', exp: later() }, { alg: 'RS256', kid: 'ec-1' }, keys.rs.priv);
    expect(failure(await v.verify(token, strict))).toEqual({ kind: 'signer_kid', kid: 'ec-1' });
  });

  it('fails with the generic signer error when the asymmetric token has no kid, or the tenant has no JWKS', async () => {
    const token = await sign({ role: 'anon', exp: later() }, { alg: 'RS256' }, keys.rs.priv);
    expect(failure(await new JwtVerifier({ secret: SECRET, jwks }).verify(token, strict))).toEqual({ kind: 'signer' });
    const withKid = await sign({ role: 'anon', exp: later() }, { alg: 'RS256', kid: 'rsa-1' }, keys.rs.priv);
    const error = failure(await new JwtVerifier({ secret: SECRET, jwks: null }).verify(withKid, strict));
    expect(error).toEqual({ kind: 'signer' });
    expect(jwtFailureMessage(error)).toBe('Failed to generate JWT signer, check your JWT secret or JWKS configuration');
  });
});

describe('headers without a usable signer', () => {
  it('fails with a signer error when alg is missing', async () => {
    const v = new JwtVerifier({ secret: SECRET, jwks });
    const token = handmade({ typ: 'JWT' }, JSON.stringify({ role: 'anon', exp: later() }));
    const error = failure(await v.verify(token, strict));
    expect(error).toEqual({ kind: 'signer' });
    expect(jwtFailureCode(error)).toBe('JwtSignerError');
  });

  it.each(['none', 'XS256', 'HS1024'])('fails with a signer error for the unsupported alg %s', async (alg) => {
    const v = new JwtVerifier({ secret: SECRET, jwks });
    const token = handmade({ alg, typ: 'JWT' }, JSON.stringify({ role: 'anon', exp: later() }));
    expect(failure(await v.verify(token, strict))).toEqual({ kind: 'signer' });
  });
});

describe('malformed tokens', () => {
  const v = () => new JwtVerifier({ secret: SECRET, jwks: null });

  it.each([
    ['not-a-jwt', 'not-a-jwt'],
    ['bad_token', 'bad_token'],
    ['empty', ''],
    ['two segments', `${base64url.encode('{"alg":"HS256"}')}.${base64url.encode('{"role":"anon"}')}`],
    ['four segments', `${base64url.encode('{"alg":"HS256"}')}.e30.c2ln.c2ln`],
    ['a header that is not JSON', `${base64url.encode('nope')}.e30.c2ln`],
    ['a header that is a JSON array', `${base64url.encode('["HS256"]')}.e30.c2ln`],
    ['a publishable key', 'sb_publishable_abc123'],
  ])('rejects %s as MalformedJWT', async (_name, token) => {
    const error = failure(await v().verify(token, lax));
    expect(error).toEqual({ kind: 'malformed' });
    expect(jwtFailureCode(error)).toBe('MalformedJWT');
    expect(jwtFailureMessage(error)).toBe('The token provided is not a valid JWT');
  });

  it('rejects a correctly signed payload that is not JSON', async () => {
    const token = await new CompactSign(encoder.encode('hello, not json')).setProtectedHeader({ alg: 'HS256' }).sign(encoder.encode(SECRET));
    expect(failure(await v().verify(token, lax))).toEqual({ kind: 'malformed' });
  });

  it.each(['[1,2]', 'null', '42', '"role"'])('rejects a correctly signed payload %s that is not a JSON object', async (payload) => {
    const token = await new CompactSign(encoder.encode(payload)).setProtectedHeader({ alg: 'HS256' }).sign(encoder.encode(SECRET));
    expect(failure(await v().verify(token, lax))).toEqual({ kind: 'malformed' });
  });

  it('never accepts arbitrary strings (property)', async () => {
    const verifier = v();
    await fc.assert(
      fc.asyncProperty(fc.string(), async (s) => {
        expect((await verifier.verify(s, lax)).ok).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});

describe('exp and iat', () => {
  const v = () => new JwtVerifier({ secret: SECRET, jwks: null });
  const NOW_MS = 1_800_000_000_000;
  const NOW = NOW_MS / 1000;

  it('reports an expired token with the seconds since expiry, and the handshake text without them', async () => {
    const token = await signHs256({ role: 'anon', exp: NOW - 42 }, SECRET);
    const error = failure(await v().verify(token, { requireRoleAndExp: true, nowMs: NOW_MS }));
    expect(error).toEqual({ kind: 'expired', secondsAgo: 42 });
    expect(jwtFailureCode(error)).toBe('InvalidJWTToken');
    expect(jwtFailureMessage(error)).toBe('Token has expired 42 seconds ago');
    expect(handshakeJwtMessage(error)).toBe('Token has expired');
  });

  it('treats exp equal to now as expired (exp must be in the future)', async () => {
    const token = await signHs256({ role: 'anon', exp: NOW }, SECRET);
    expect(failure(await v().verify(token, { requireRoleAndExp: true, nowMs: NOW_MS }))).toEqual({ kind: 'expired', secondsAgo: 0 });
    const ok = await signHs256({ role: 'anon', exp: NOW + 1 }, SECRET);
    expect((await v().verify(ok, { requireRoleAndExp: true, nowMs: NOW_MS })).ok).toBe(true);
  });

  it('checks expiry even when role and exp are not required', async () => {
    const token = await signHs256({ exp: NOW - 5 }, SECRET);
    expect(failure(await v().verify(token, { requireRoleAndExp: false, nowMs: NOW_MS }))).toEqual({ kind: 'expired', secondsAgo: 5 });
  });

  it('rejects exp given as a string with InvalidJWTToken: Token expiration time is invalid', async () => {
    const token = await signHs256({ role: 'anon', exp: String(NOW + 3600) as unknown as number }, SECRET);
    const error = failure(await v().verify(token, { requireRoleAndExp: true, nowMs: NOW_MS }));
    expect(error).toEqual({ kind: 'exp_invalid' });
    expect(jwtFailureCode(error)).toBe('InvalidJWTToken');
    expect(jwtFailureMessage(error)).toBe('Token expiration time is invalid');
  });

  it('rejects iat given as a string', async () => {
    const token = await signHs256({ role: 'anon', exp: NOW + 3600, iat: String(NOW) as unknown as number }, SECRET);
    expect((await v().verify(token, { requireRoleAndExp: true, nowMs: NOW_MS })).ok).toBe(false);
  });

  it('accepts decimal exp and iat, rounding exp', async () => {
    const token = await signHs256({ role: 'anon', exp: NOW + 100.6, iat: NOW - 0.25 }, SECRET);
    const result = await v().verify(token, { requireRoleAndExp: true, nowMs: NOW_MS });
    expect(result.ok).toBe(true);
    expect(result.ok && result.exp).toBe(NOW + 101);
  });

  it('returns exp null for a token without exp when it is not required', async () => {
    const token = await signHs256({ role: 'anon' }, SECRET);
    expect(await v().verify(token, { requireRoleAndExp: false, nowMs: NOW_MS })).toEqual({ ok: true, claims: { role: 'anon' }, exp: null });
  });

  it('reports the exact seconds for any past exp (property)', async () => {
    const verifier = v();
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 10_000_000 }), async (ago) => {
        const token = await signHs256({ role: 'anon', exp: NOW - ago }, SECRET);
        const error = failure(await verifier.verify(token, { requireRoleAndExp: true, nowMs: NOW_MS }));
        expect(jwtFailureMessage(error)).toBe(`Token has expired ${ago} seconds ago`);
      }),
      { numRuns: 50 },
    );
  });
});

describe('required claims and claim validators', () => {
  const v = () => new JwtVerifier({ secret: SECRET, jwks: null });

  it.each([
    ['no role', { exp: 0 }],
    ['no exp', { role: 'anon' }],
    ['neither', { sub: 'x' }],
    ['a null role', { role: null, exp: 0 }],
  ])('with requireRoleAndExp, rejects a token with %s', async (_name, claims) => {
    const c = { ...claims } as Record<string, unknown>;
    if (c.exp === 0) c.exp = later();
    const token = await signHs256(c, SECRET);
    const error = failure(await v().verify(token, strict));
    expect(error).toEqual({ kind: 'claims_missing' });
    expect(jwtFailureCode(error)).toBe('InvalidJWTToken');
    expect(jwtFailureMessage(error)).toBe('Fields `role` and `exp` are required in JWT');
    // The same token is fine where the claims are not required (metrics, management API).
    expect((await v().verify(token, lax)).ok).toBe(true);
  });

  it('rejects a token whose claim differs from a configured validator, and accepts a matching one', async () => {
    const validators = { iss: 'supabase', aud: 'authenticated' };
    const good = await signHs256({ role: 'anon', exp: later(), iss: 'supabase', aud: 'authenticated' }, SECRET);
    expect((await v().verify(good, { requireRoleAndExp: true, claimValidators: validators })).ok).toBe(true);
    for (const claims of [
      { role: 'anon', exp: later(), iss: 'someone-else', aud: 'authenticated' },
      { role: 'anon', exp: later(), aud: 'authenticated' },
      { role: 'anon', exp: later(), iss: 'supabase', aud: 'anon' },
    ]) {
      const token = await signHs256(claims, SECRET);
      const error = failure(await v().verify(token, { requireRoleAndExp: true, claimValidators: validators }));
      expect(error.kind).toBe('claim_mismatch');
      expect(jwtFailureCode(error)).toBe('MalformedJWT');
    }
  });
});

describe('token cleanup', () => {
  it('strips all whitespace and URL-encoding before verifying', async () => {
    const v = new JwtVerifier({ secret: SECRET, jwks: null });
    const token = await signHs256({ role: 'anon', exp: later() }, SECRET);
    const [h, p, s] = token.split('.');
    const spaced = ` ${h}\n.${p.slice(0, 5)} \t${p.slice(5)}.\r\n${s}  `;
    expect(cleanToken(spaced)).toBe(token);
    expect((await v.verify(spaced, strict)).ok).toBe(true);
    const encoded = encodeURIComponent(`${h}.${p}.${s}`).replace(/\./g, '%2E');
    expect(encoded).not.toBe(token);
    expect(cleanToken(encoded)).toBe(token);
    expect((await v.verify(encoded, strict)).ok).toBe(true);
    expect((await v.verify(`${h}%20.${p}%0A.${s}`, strict)).ok).toBe(true);
  });

  it('leaves strings with a stray % as they are, minus whitespace', () => {
    expect(cleanToken('ab%zz cd')).toBe('ab%zzcd');
  });

  it('bearerToken gives the one cleaned form of every spelling of a token (what blocklists compare)', async () => {
    const token = await signHs256({ role: 'anon', exp: later() }, SECRET);
    const spelling = fc.array(fc.constantFrom('as-is', '%2E', '%2e', ' ', '\t', '%20'), { minLength: token.length, maxLength: token.length });
    fc.assert(
      fc.property(spelling, fc.constantFrom('Bearer ', 'bearer  ', 'BEARER\t'), (choices, scheme) => {
        // Each character: kept, or (for dots) percent-encoded, or followed by whitespace, raw or encoded.
        const written = [...token].map((ch, i) => {
          const how = choices[i];
          if (how === '%2E' || how === '%2e') return ch === '.' ? how : ch;
          return how === 'as-is' ? ch : `${ch}${how}`;
        }).join('');
        expect(bearerToken(`${scheme}${written}`)).toBe(token);
      }),
    );
    for (const header of [undefined, '', 'Basic abc', 'Bearer', 'Bearer   ']) expect(bearerToken(header)).toBeNull();
  });

  it('verifyCleaned verifies the text as given: a double-encoded dot is not decoded a second time', async () => {
    const v = new JwtVerifier({ secret: SECRET, jwks: null });
    const token = await signHs256({ role: 'anon', exp: later() }, SECRET);
    const doubly = token.replace('.', '%252E');
    // verify() decodes once (as upstream does before comparing); verifyCleaned must not decode what is left again.
    expect((await v.verifyCleaned(bearerToken(`Bearer ${doubly}`) as string, strict)).ok).toBe(false);
    expect((await v.verifyCleaned(bearerToken(`Bearer ${token.replace('.', '%2E')}`) as string, strict)).ok).toBe(true);
  });
});

describe('failure codes', () => {
  it('maps every failure kind to the upstream code', () => {
    const table: [JwtFailure, string][] = [
      [{ kind: 'malformed' }, 'MalformedJWT'],
      [{ kind: 'claim_mismatch', claim: 'iss' }, 'MalformedJWT'],
      [{ kind: 'signature' }, 'JwtSignatureError'],
      [{ kind: 'signer' }, 'JwtSignerError'],
      [{ kind: 'signer_kid', kid: 'k' }, 'JwtSignerError'],
      [{ kind: 'expired', secondsAgo: 1 }, 'InvalidJWTToken'],
      [{ kind: 'exp_invalid' }, 'InvalidJWTToken'],
      [{ kind: 'claims_missing' }, 'InvalidJWTToken'],
    ];
    for (const [error, code] of table) expect([error.kind, jwtFailureCode(error)]).toEqual([error.kind, code]);
  });
});
