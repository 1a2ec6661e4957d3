import { bearerToken, cleanToken, isHmacKeyOf, JwtVerifier } from '../auth/jwt.js';
import type { AppContext } from '../context.js';
import type { TenantRecord } from '../tenants/record.js';

/** Whether a management secret is also one of the tenant's signing keys (its anon key would be an admin token). */
export function signsForTenant(secret: string, record: TenantRecord): boolean {
  return isHmacKeyOf(secret, { secret: record.jwtSecret, jwks: record.jwtJwks });
}

/**
 * The check of every management API route (tenants, cluster): a Bearer JWT signed with a management secret
 * (API_JWT_SECRET or the generated one, or API_JWT_SECRET_NEXT), not blocklisted. A management secret that is also a
 * tenant's signing key never authorizes.
 */
export function managementAuthorizer(ctx: AppContext): (header: string | undefined) => Promise<boolean> {
  const verifiers = ctx.managementSecrets.map((secret) => ({ secret, verifier: new JwtVerifier({ secret, jwks: null }) }));
  const blocklist = new Set(ctx.config.apiTokenBlocklist.map(cleanToken));
  return async (header) => {
    // Blocklisted and verified in the one cleaned form, so no spelling of a listed token gets past the list.
    const token = bearerToken(header);
    if (token === null || blocklist.has(token)) return false;
    for (const { secret, verifier } of verifiers) {
      if (!(await verifier.verifyCleaned(token, { requireRoleAndExp: false })).ok) continue;
      // Tenants written by another node, or before this check existed, may share it: fail closed, say why.
      const sharing = ctx.registry.list().find((record) => signsForTenant(secret, record));
      if (!sharing) return true;
      ctx.log.error(
        { tenant: sharing.externalId, error_code: 'ManagementSecretIsTenantKey' },
        'management token refused: its secret is also a signing key of this tenant; change API_JWT_SECRET or the tenant secret',
      );
    }
    return false;
  };
}
