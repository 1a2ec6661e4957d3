/**
 * Signed URL tokens (spec baas-api.md §4.4; upstream src/storage/object.ts): HS256 JWTs signed with the tenant's JWT
 * secret. Download: `{url: "B/P", scope: "download", iat, exp}`; upload: `{owner, url, upsert, scope: "upload", iat,
 * exp}`. Verification order as upstream: signature and time (InvalidJWT), scope (InvalidSignature "Token is not
 * scoped for …"), the `url` claim against the path asked for (InvalidSignature), expiry again (ExpiredToken).
 * Tokens without `scope` from older servers are accepted by their shape (an `upsert` claim marks an upload token).
 */
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { errors, StorageError } from './errors.js';

export type TokenScope = 'download' | 'upload';

export interface SignedToken {
  url: string;
  scope?: TokenScope;
  owner?: string;
  upsert?: boolean;
  /** A signed render URL's options, `height:100,width:100,…`. */
  transformations?: string;
  exp: number;
}

const encoder = new TextEncoder();

export async function signToken(secret: string, claims: Record<string, unknown>, expiresInSeconds: number): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSeconds)
    .sign(encoder.encode(secret));
}

export async function verifyToken(secret: string, token: string, url: string, scope: TokenScope): Promise<SignedToken> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, encoder.encode(secret), { algorithms: ['HS256', 'HS384', 'HS512'] }));
  } catch (err) {
    throw errors.invalidJwt(libraryMessage(err));
  }
  const claimed = payload.scope;
  const scoped = claimed === undefined ? (scope === 'upload') === 'upsert' in payload : claimed === scope;
  if (!scoped) throw errors.invalidSignature(`Token is not scoped for ${scope}`);
  if (payload.url !== url) throw errors.invalidSignature();
  if (typeof payload.exp !== 'number' || payload.exp * 1000 <= Date.now()) throw errors.expiredToken();
  return payload as unknown as SignedToken;
}

/** jsonwebtoken's texts, which upstream passes through. */
function libraryMessage(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'jwt expired';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'invalid signature';
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return 'jwt malformed';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'invalid algorithm';
  return 'invalid token';
}

/** `expiresIn` of a sign request: a positive integer number of seconds. */
export function expiresInSeconds(value: unknown): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
    throw new StorageError(400, 'InvalidRequest', 'Bad Request', 'body/expiresIn must be >= 1');
  }
  return n;
}
