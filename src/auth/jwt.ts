import { compactVerify, decodeProtectedHeader, importJWK, SignJWT, base64url, type JWK } from 'jose';

/**
 * Tenant JWT verification with the upstream rules: signer chosen by `alg`/`kid` (HS* with the tenant secret or an
 * `oct` JWK, RS/ES/EdDSA through the tenant JWKS), then `exp`/`iat` checks and, for sockets and channels, required
 * `role` and `exp`. Failures are values, so each caller renders the upstream text for its context.
 */
export interface Claims {
  role?: string;
  sub?: string;
  exp?: number;
  iat?: number;
  [claim: string]: unknown;
}

export type JwtFailure =
  | { kind: 'malformed' }
  | { kind: 'signature' }
  | { kind: 'signer' }
  | { kind: 'signer_kid'; kid: string }
  | { kind: 'expired'; secondsAgo: number }
  | { kind: 'exp_invalid' }
  | { kind: 'claims_missing' }
  | { kind: 'claim_mismatch'; claim: string };

export type JwtResult = { ok: true; claims: Claims; exp: number | null } | { ok: false; error: JwtFailure };

export interface JwtSigners {
  secret: string | null;
  jwks: { keys: Record<string, unknown>[] } | null;
  /** Exact-match claims every token of these signers must carry (upstream JWT_CLAIM_VALIDATORS). */
  claimValidators?: Record<string, unknown>;
}

export interface VerifyOptions {
  /** Sockets and channels require both `role` and `exp`. */
  requireRoleAndExp: boolean;
  /** Extra exact-match claims (upstream JWT_CLAIM_VALIDATORS). */
  claimValidators?: Record<string, unknown>;
  nowMs?: number;
}

type KeyLike = Awaited<ReturnType<typeof importJWK>>;

const HS = new Set(['HS256', 'HS384', 'HS512']);
const KTY_FOR: Record<string, string> = {
  RS256: 'RSA', RS384: 'RSA', RS512: 'RSA', PS256: 'RSA', PS384: 'RSA', PS512: 'RSA',
  ES256: 'EC', ES384: 'EC', ES512: 'EC',
  EdDSA: 'OKP', Ed25519: 'OKP', Ed448: 'OKP',
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Caches imported keys per signer set; a tenant keeps one instance and drops it when its secrets change. */
/** Tokens whose signature and payload were checked, most recent last: see {@link JwtVerifier.verifyCleaned}. */
const VERIFIED_CACHE_SIZE = 256;

export class JwtVerifier {
  private readonly keyCache = new Map<string, Promise<KeyLike>>();
  private readonly secretBytes: Uint8Array | null;
  /** Claims of recently verified tokens (a verifier's signers never change: a tenant makes a new verifier). */
  private readonly verified = new Map<string, Claims>();

  constructor(private readonly signers: JwtSigners) {
    this.secretBytes = signers.secret === null ? null : encoder.encode(signers.secret);
  }

  async verify(rawToken: string, opts: VerifyOptions): Promise<JwtResult> {
    return this.verifyCleaned(cleanToken(rawToken), opts);
  }

  /**
   * The result of {@link verify} without waiting, when `rawToken` was verified before (its signature and payload
   * cached; the time-dependent checks run now); undefined when it must go through verify. Per-request hot paths
   * (REST) skip a promise and its hops this way.
   */
  verifyKnown(rawToken: string, opts: VerifyOptions): JwtResult | undefined {
    const known = this.verified.get(cleanToken(rawToken));
    if (known === undefined) return undefined;
    return checkClaims(known, opts.claimValidators !== undefined || this.signers.claimValidators === undefined ? opts : { ...opts, claimValidators: this.signers.claimValidators });
  }

  /**
   * Verifies a token exactly as given, already cleaned (bearerToken): a caller that compares the token with a
   * blocklist first must verify that same text, not a second decoding of it (`%252E` would otherwise pass as `.`).
   */
  async verifyCleaned(token: string, opts: VerifyOptions): Promise<JwtResult> {
    // The same text verified again (every socket verifies its token at the handshake and again at the join, and most
    // sockets of a tenant use one key): its signature and payload are what they were; the time-dependent checks run
    // again. Skips ~10 KB of allocation and a crypto round trip per verify.
    const known = this.verified.get(token);
    if (known !== undefined) return checkClaims(known, { ...opts, claimValidators: opts.claimValidators ?? this.signers.claimValidators });
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
      if (token.split('.').length !== 3) return fail({ kind: 'malformed' });
    } catch {
      return fail({ kind: 'malformed' });
    }
    const alg = typeof header.alg === 'string' ? header.alg : null;
    const kid = typeof header.kid === 'string' ? header.kid : null;
    const key = await this.selectKey(alg, kid);
    if ('error' in key) return fail(key.error);
    let payloadBytes: Uint8Array;
    try {
      const verified = await compactVerify(token, key.key, { algorithms: [alg as string] });
      payloadBytes = verified.payload;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') return fail({ kind: 'signature' });
      if (code === 'ERR_JOSE_ALG_NOT_ALLOWED' || code === 'ERR_JOSE_NOT_SUPPORTED' || code === 'ERR_JWK_INVALID') {
        return fail({ kind: 'signer' });
      }
      return fail({ kind: 'malformed' });
    }
    let claims: unknown;
    try {
      claims = JSON.parse(decoder.decode(payloadBytes));
    } catch {
      return fail({ kind: 'malformed' });
    }
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) return fail({ kind: 'malformed' });
    if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value as string);
    // Shared by every caller of this token from now on: read-only.
    this.verified.set(token, Object.freeze(claims) as Claims);
    return checkClaims(claims as Claims, { ...opts, claimValidators: opts.claimValidators ?? this.signers.claimValidators });
  }

  private async selectKey(alg: string | null, kid: string | null): Promise<{ key: KeyLike } | { error: JwtFailure }> {
    if (alg === null) return { error: { kind: 'signer' } };
    if (HS.has(alg)) {
      const jwk = kid === null ? undefined : this.findJwk(kid, 'oct');
      if (jwk && typeof jwk.k === 'string') {
        let bytes: Uint8Array;
        try {
          bytes = base64url.decode(jwk.k);
        } catch {
          return { error: { kind: 'signer' } };
        }
        return { key: await this.hmacKey(`${alg}:oct:${kid}`, alg, bytes) };
      }
      if (this.secretBytes === null) return { error: { kind: 'signer' } };
      return { key: await this.hmacKey(`${alg}:secret`, alg, this.secretBytes) };
    }
    const kty = KTY_FOR[alg];
    if (!kty || kid === null || this.signers.jwks === null) return { error: { kind: 'signer' } };
    const jwk = this.findJwk(kid, kty);
    if (!jwk) return { error: { kind: 'signer_kid', kid } };
    if (kty === 'OKP' && jwk.crv !== 'Ed25519' && jwk.crv !== 'Ed448') return { error: { kind: 'signer' } };
    const cacheKey = `${alg}:${kid}`;
    let imported = this.keyCache.get(cacheKey);
    if (!imported) {
      const importAlg = alg === 'Ed25519' || alg === 'Ed448' ? 'EdDSA' : alg;
      imported = importJWK(jwk as JWK, importAlg) as Promise<KeyLike>;
      this.keyCache.set(cacheKey, imported);
    }
    try {
      return { key: await imported };
    } catch {
      this.keyCache.delete(cacheKey);
      return { error: { kind: 'signer' } };
    }
  }

  /**
   * An HMAC secret imported once per algorithm: given raw bytes, jose imports a CryptoKey on every verify (~20 KB of
   * garbage each, twice per socket: handshake and join). A secret WebCrypto refuses stays raw bytes, as before.
   */
  private hmacKey(cacheKey: string, alg: string, bytes: Uint8Array): Promise<KeyLike> {
    let imported = this.keyCache.get(cacheKey);
    if (!imported) {
      const hash = `SHA-${alg.slice(2)}`;
      imported = crypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash }, false, ['verify']).catch(() => bytes);
      this.keyCache.set(cacheKey, imported);
    }
    return imported;
  }

  private findJwk(kid: string, kty: string): Record<string, unknown> | undefined {
    return this.signers.jwks?.keys.find((k) => k.kid === kid && k.kty === kty);
  }
}

function checkClaims(claims: Claims, opts: VerifyOptions): JwtResult {
  const nowSec = Math.floor((opts.nowMs ?? Date.now()) / 1000);
  let exp: number | null = null;
  if ('exp' in claims && claims.exp !== undefined) {
    if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) return fail({ kind: 'exp_invalid' });
    exp = Math.round(claims.exp);
    if (exp <= nowSec) return fail({ kind: 'expired', secondsAgo: nowSec - exp });
  }
  if ('iat' in claims && claims.iat !== undefined && (typeof claims.iat !== 'number' || !Number.isFinite(claims.iat))) {
    return fail({ kind: 'malformed' });
  }
  if (opts.requireRoleAndExp && (exp === null || claims.role === undefined || claims.role === null)) {
    return fail({ kind: 'claims_missing' });
  }
  for (const [claim, expected] of Object.entries(opts.claimValidators ?? {})) {
    if (claims[claim] !== expected) return fail({ kind: 'claim_mismatch', claim });
  }
  return { ok: true, claims, exp };
}

function fail(error: JwtFailure): JwtResult {
  return { ok: false, error };
}

const NEEDS_CLEANING = /[%\s]/;

/** Upstream strips URL-encoding and all whitespace from tokens before verifying them. */
export function cleanToken(raw: string): string {
  // Nothing to decode or strip (the usual token): as given, without a decode and a regex replace.
  if (!NEEDS_CLEANING.test(raw)) return raw;
  let t = raw;
  try {
    t = decodeURIComponent(raw);
  } catch {
    // Not URL-encoded: verify it as given.
  }
  return t.replace(/\s+/g, '');
}

/** The token of an `Authorization: Bearer <jwt>` header, cleaned as verification cleans it; null without one. */
export function bearerToken(header: string | undefined): string | null {
  const m = header ? /^bearer\s+(.+)$/i.exec(header.trim()) : null;
  return m ? cleanToken(m[1]) : null;
}

/**
 * Whether `secret` is one of the HMAC keys a tenant's tokens may be signed with: its JWT secret, or an `oct` key of
 * its JWKS. Such a secret must never sign management tokens, or the tenant's (public) anon key would be one.
 */
export function isHmacKeyOf(secret: string, signers: Pick<JwtSigners, 'secret' | 'jwks'>): boolean {
  const wanted = encoder.encode(secret);
  if (signers.secret !== null && sameBytes(encoder.encode(signers.secret), wanted)) return true;
  for (const jwk of signers.jwks?.keys ?? []) {
    if (jwk.kty !== 'oct' || typeof jwk.k !== 'string') continue;
    let key: Uint8Array;
    try {
      key = base64url.decode(jwk.k);
    } catch {
      continue;
    }
    if (sameBytes(key, wanted)) return true;
  }
  return false;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

const SIGNER_MESSAGE = 'Failed to generate JWT signer, check your JWT secret or JWKS configuration';

/** The message text shared by handshake errors and channel errors. */
export function jwtFailureMessage(error: JwtFailure): string {
  switch (error.kind) {
    case 'malformed':
      return 'The token provided is not a valid JWT';
    case 'signature':
      return 'Failed to validate JWT signature';
    case 'signer':
      return SIGNER_MESSAGE;
    case 'signer_kid':
      return `Failed to generate JWT signer for key ID (kid) "${error.kid}", check your JWT secret or JWKS configuration`;
    case 'expired':
      return `Token has expired ${error.secondsAgo} seconds ago`;
    case 'exp_invalid':
      return 'Token expiration time is invalid';
    case 'claims_missing':
      return 'Fields `role` and `exp` are required in JWT';
    case 'claim_mismatch':
      return 'The token provided is not a valid JWT';
  }
}

/** Upstream error codes for join replies (`<Code>: <message>`). */
export function jwtFailureCode(error: JwtFailure): string {
  switch (error.kind) {
    case 'malformed':
    case 'claim_mismatch':
      return 'MalformedJWT';
    case 'signature':
      return 'JwtSignatureError';
    case 'signer':
    case 'signer_kid':
      return 'JwtSignerError';
    default:
      return 'InvalidJWTToken';
  }
}

/** The WebSocket handshake says only "Token has expired", without the seconds. */
export function handshakeJwtMessage(error: JwtFailure): string {
  return error.kind === 'expired' ? 'Token has expired' : jwtFailureMessage(error);
}

export async function signHs256(claims: Claims, secret: string): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(encoder.encode(secret));
}
