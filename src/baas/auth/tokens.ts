/**
 * Access tokens as GoTrue issues them (spec baas-api.md §2.3; internal/tokens/service.go): HS256 with the tenant's
 * JWT secret, so REST, realtime and storage accept them as they are; or, with AUTH_SIGNING_KEYS, ES256/RS256 with a
 * `kid`, the public halves published at /.well-known/jwks.json. Refresh tokens are opaque random strings.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import { JwtVerifier, type Claims } from '../../auth/jwt.js';
import type { TenantRuntime } from '../../tenants/tenant.js';
import { AuthError } from './errors.js';

type SigningKey = Awaited<ReturnType<typeof importJWK>>;

interface AsymmetricSigner {
  alg: string;
  kid: string;
  key: Promise<SigningKey>;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** The signer and verifier of the auth module, one per server. */
export class TokenKeys {
  private readonly signer: AsymmetricSigner | null;
  readonly publicJwks: Record<string, unknown>[];
  private readonly verifiers = new WeakMap<JwtVerifier, JwtVerifier>();

  constructor(privateJwks: readonly Record<string, unknown>[]) {
    this.publicJwks = privateJwks.map(publicHalf);
    const first = privateJwks[0];
    if (first === undefined) {
      this.signer = null;
    } else {
      const alg = typeof first.alg === 'string' ? first.alg : first.kty === 'EC' ? 'ES256' : 'RS256';
      this.signer = { alg, kid: String(first.kid), key: importJWK(first as JWK, alg) };
      this.signer.key.catch(() => undefined);
    }
  }

  async sign(claims: Claims, tenant: TenantRuntime): Promise<string> {
    if (this.signer !== null) {
      return new SignJWT(claims).setProtectedHeader({ alg: this.signer.alg, kid: this.signer.kid, typ: 'JWT' }).sign(await this.signer.key);
    }
    const secret = tenant.settings.jwtSecret;
    if (secret === null) throw new AuthError(500, 'unexpected_failure', 'No JWT secret configured for this project');
    return signHs256Now(claims, secret);
  }

  /** Verifies what the auth endpoints are given: tenant-signed tokens (keys, users) and the ones signed here. */
  verifierFor(tenant: TenantRuntime): JwtVerifier {
    if (this.publicJwks.length === 0) return tenant.verifier;
    let verifier = this.verifiers.get(tenant.verifier);
    if (!verifier) {
      const keys = [...(tenant.settings.jwtJwks?.keys ?? []), ...this.publicJwks];
      verifier = new JwtVerifier({ secret: tenant.settings.jwtSecret, jwks: { keys }, claimValidators: tenant.settings.claimValidators });
      this.verifiers.set(tenant.verifier, verifier);
    }
    return verifier;
  }
}

function publicHalf(jwk: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(jwk)) if (!PRIVATE_MEMBERS.includes(k)) out[k] = v;
  out.use ??= 'sig';
  out.key_ops = ['verify'];
  return out;
}

const HS256_HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

/**
 * HS256 on the calling thread: an HMAC of a few hundred bytes takes microseconds, while WebCrypto's async sign would
 * queue behind the bcrypt jobs that fill the libuv pool during sign-ins.
 */
export function signHs256Now(claims: Claims, secret: string): string {
  const input = `${HS256_HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** An opaque refresh token: 128 random bits, URL-safe. */
export function newRefreshToken(): string {
  return randomBytes(16).toString('base64url');
}

/** A URL-safe random token for e-mail links (stored hashed). */
export function newLinkToken(): string {
  return randomBytes(28).toString('hex');
}

/** A 6-digit e-mail OTP. */
export function newOtp(): string {
  return String(randomBytes(4).readUInt32BE() % 1_000_000).padStart(6, '0');
}
