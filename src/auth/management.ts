import type { Config } from '../config/index.js';
import { keyFileSecret } from '../config/key-file.js';
import { signHs256 } from './jwt.js';

/** The generated management secret's file in the data dir (beside encryption.key). */
export const MANAGEMENT_SECRET_FILE = 'api-jwt-secret.key';

/**
 * The banner's management token lives a day: long enough for a working session, short enough that a copy left in
 * a log or a terminal scroll-back stops being an admin credential. Longer-lived tokens are signed with the secret.
 */
export const MANAGEMENT_TOKEN_LIFETIME_SECONDS = 24 * 3600;

export interface ManagementSecrets {
  /** API_JWT_SECRET, or the generated one. */
  primary: string;
  /** Every secret a management token may be signed with: the primary, then API_JWT_SECRET_NEXT. */
  accepted: string[];
  /** Where a generated primary is kept; null when API_JWT_SECRET is set. */
  file: string | null;
}

/**
 * The management API's secrets. Without API_JWT_SECRET a random one is generated once and kept in the data dir, so
 * the management API is never open to anyone holding a tenant key (upstream falls back to nothing of the sort).
 */
export async function managementSecrets(config: Config): Promise<ManagementSecrets> {
  const { secret: primary, file } =
    config.apiJwtSecret !== null ? { secret: config.apiJwtSecret, file: null } : await keyFileSecret(config.dataDir, MANAGEMENT_SECRET_FILE);
  const accepted = config.apiJwtSecretNext === null ? [primary] : [primary, config.apiJwtSecretNext];
  return { primary, accepted, file };
}

/**
 * A management token. No `role` claim: the management API checks only the signature, and without a role the token
 * is useless as a tenant token even where a secret were shared.
 */
export function signManagementToken(secret: string, nowMs = Date.now()): Promise<string> {
  const iat = Math.floor(nowMs / 1000);
  return signHs256({ iss: 'performer', sub: 'management-api', iat, exp: iat + MANAGEMENT_TOKEN_LIFETIME_SECONDS }, secret);
}
