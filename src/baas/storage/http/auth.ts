/**
 * Who a storage request runs as (spec baas-api.md §0.3, §3.2): the JWT of `Authorization: Bearer`, else the `apikey`
 * header, verified with the tenant's secret or JWKS by the shared verifier, exactly as REST does; its `role` claim is
 * the database role (`anon` without one). No token at all is the gateway's 401; a token that fails verification is
 * upstream Storage's AccessDenied with the JWT library's message (HTTP 400, `statusCode` "403").
 */
import type { JwtFailure } from '../../../auth/jwt.js';
import { tenantToken } from '../../../http/gate.js';
import type { TenantRuntime } from '../../../tenants/tenant.js';
import type { Caller } from '../db.js';
import { errors } from '../errors.js';

/** The gateway's refusal of a request that carries no key at all. */
export class MissingApiKey extends Error {
  readonly body = { message: 'No API key found in request', hint: 'No `apikey` request header or url param was found.' };
}

export async function identify(tenant: TenantRuntime, headers: Record<string, string>): Promise<Caller> {
  const token = tenantToken(headers);
  if (!token) throw new MissingApiKey();
  const result = await tenant.verifier.verify(token, { requireRoleAndExp: false });
  if (!result.ok) throw errors.accessDenied(jwtLibraryMessage(result.error));
  const role = typeof result.claims.role === 'string' && result.claims.role !== '' ? result.claims.role : 'anon';
  return { role, claims: result.claims, token };
}

/** The texts of the JWT library upstream uses (jsonwebtoken / jose), which storage-js shows as `error.message`. */
export function jwtLibraryMessage(error: JwtFailure): string {
  switch (error.kind) {
    case 'expired':
      return 'jwt expired';
    case 'signature':
      return 'invalid signature';
    case 'malformed':
      return 'jwt malformed';
    case 'signer':
    case 'signer_kid':
      return 'no suitable key found';
    default:
      return 'invalid token';
  }
}
