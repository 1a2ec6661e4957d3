/**
 * Who a REST request runs as (spec baas-api.md §0.2, §0.3, §3.2): the JWT of `Authorization: Bearer`, else the
 * `apikey` header, verified against the tenant's secret or JWKS; its `role` claim is the database role (`anon`
 * without one). A bad token is PostgREST's 401 PGRST301, a failed time check 401 PGRST303 (§1.6).
 */
import type { Claims, JwtFailure, JwtResult } from '../../../auth/jwt.js';
import { tenantToken } from '../../../http/gate.js';
import type { TenantRuntime } from '../../../tenants/tenant.js';
import { RestError } from '../errors.js';

export interface RequestIdentity {
  role: string;
  claims: Claims;
}

/** A refusal before any database work; `wwwAuthenticate` is PostgREST's header on JWT errors. */
export class AuthRefusal extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly wwwAuthenticate?: string,
  ) {
    super(String(body.message));
  }
}

export async function identify(tenant: TenantRuntime, headers: Record<string, string>): Promise<RequestIdentity> {
  return identifyKnown(tenant, headers) ?? identityOf(await tenant.verifier.verify(tokenOf(headers), VERIFY), tokenOf(headers));
}

/**
 * {@link identify} without waiting when the token was verified before (the common case: a client sends the same
 * key on every request); undefined when it must be verified. Throws the same refusals.
 */
export function identifyKnown(tenant: TenantRuntime, headers: Record<string, string>): RequestIdentity | undefined {
  const token = tokenOf(headers);
  const result = tenant.verifier.verifyKnown(token, VERIFY);
  return result === undefined ? undefined : identityOf(result, token);
}

const VERIFY = { requireRoleAndExp: false };

function tokenOf(headers: Record<string, string>): string {
  const token = tenantToken(headers);
  if (!token) {
    throw new AuthRefusal(401, { message: 'No API key found in request', hint: 'No `apikey` request header or url param was found.' });
  }
  return token;
}

/** One identity per verified claims object (the verifier caches those per token), so later memos can key on it. */
const identities = new WeakMap<Claims, RequestIdentity>();

function identityOf(result: JwtResult, token: string): RequestIdentity {
  if (!result.ok) {
    const error = jwtError(result.error, token);
    throw new AuthRefusal(401, error.body() as unknown as Record<string, unknown>, `Bearer error="invalid_token", error_description="${error.message}"`);
  }
  const known = identities.get(result.claims);
  if (known) return known;
  const role = typeof result.claims.role === 'string' && result.claims.role !== '' ? result.claims.role : 'anon';
  const identity = { role, claims: result.claims };
  if (Object.isFrozen(result.claims)) identities.set(result.claims, identity);
  return identity;
}

/** PostgREST's JWT error texts (Error.hs, JwtErr). */
function jwtError(error: JwtFailure, token: string): RestError {
  switch (error.kind) {
    case 'expired':
      return new RestError(401, 'PGRST303', 'JWT expired');
    case 'exp_invalid':
    case 'claim_mismatch':
    case 'claims_missing':
      return new RestError(401, 'PGRST303', 'JWT claims validation or parsing failed');
    case 'malformed': {
      const parts = token.split('.').length;
      return new RestError(401, 'PGRST301', parts === 3 ? 'JWT cryptographic operation failed' : `Expected 3 parts in JWT; got ${parts}`);
    }
    case 'signature':
      return new RestError(401, 'PGRST301', 'JWT cryptographic operation failed');
    case 'signer':
    case 'signer_kid':
      return new RestError(401, 'PGRST301', 'No suitable key or wrong key type');
  }
}
