/**
 * The session answer of /signup, /token and /verify (spec baas-api.md §2.2): an access token with GoTrue's claims
 * for the session's current assurance level and methods, the refresh token, and the user object.
 */
import type pg from 'pg';
import type { Claims } from '../../auth/jwt.js';
import type { AuthCall } from './call.js';
import { AuthError } from './errors.js';
import { sessionClaims, type SessionClaims } from './sessions.js';
import { userJson, type UserRow } from './users.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** The claims of an access token for `user` in `sessionId` (internal/tokens/service.go GenerateAccessToken). */
export async function accessClaims(call: AuthCall, db: Queryable, user: UserRow, sessionId: string, known?: SessionClaims): Promise<Claims> {
  const session = known ?? (await sessionClaims(db, sessionId));
  if (session === null) throw AuthError.forbidden('session_not_found', 'Session from session_id claim in JWT does not exist');
  const iat = Math.floor(Date.now() / 1000);
  return {
    iss: `${call.baseUrl}/auth/v1`,
    sub: user.id,
    aud: user.aud ?? 'authenticated',
    exp: iat + call.config.jwtExpiry,
    iat,
    email: user.email ?? '',
    phone: user.phone ?? '',
    app_metadata: user.raw_app_meta_data ?? {},
    user_metadata: user.raw_user_meta_data ?? {},
    role: user.role ?? 'authenticated',
    aal: session.aal,
    amr: session.amr,
    session_id: sessionId,
    is_anonymous: user.is_anonymous,
  };
}

/** `known`: the session's level and methods when the caller just made it (saves reading them back). */
export async function sessionAnswer(call: AuthCall, db: Queryable, user: UserRow, sessionId: string, refreshToken: string, known?: SessionClaims): Promise<Record<string, unknown>> {
  const claims = await accessClaims(call, db, user, sessionId, known);
  const accessToken = await call.keys.sign(claims, call.tenant);
  return {
    access_token: accessToken,
    token_type: 'bearer',
    expires_in: call.config.jwtExpiry,
    expires_at: claims.exp,
    refresh_token: refreshToken,
    user: await userJson(db, user),
  };
}
