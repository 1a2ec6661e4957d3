/**
 * TOTP multi-factor authentication (internal/api/mfa.go): enroll a factor, challenge it, verify a code; a verified
 * code moves the session to aal2 and answers a new session (a new refresh token, an access token with aal2 and a
 * `totp` method). A challenge lives 5 minutes; codes come from any RFC 6238 authenticator.
 */
import { randomUUID } from 'node:crypto';
import { actorOf, audit } from '../audit.js';
import { field, inTransaction, isUuid, limit, requireUser, type AuthAnswer, type AuthCall } from '../call.js';
import { AuthError } from '../errors.js';
import { sessionAnswer } from '../issue.js';
import { addAmrClaim } from '../sessions.js';
import { newRefreshToken } from '../tokens.js';
import { newTotpSecret, totpUri, verifyTotp } from '../totp.js';

const CHALLENGE_LIFETIME_MS = 300_000;
const MAX_FACTORS = 10;

export async function enroll(call: AuthCall): Promise<AuthAnswer> {
  const { user } = await requireUser(call);
  const type = field(call, 'factor_type');
  if (type !== 'totp') {
    if (type === 'phone' || type === 'webauthn') throw AuthError.unprocessable(`mfa_${type}_enroll_not_enabled`, `MFA enroll is disabled for ${type === 'phone' ? 'Phone' : 'WebAuthn'}`);
    throw AuthError.validation('factor_type needs to be totp, phone, or webauthn');
  }
  const friendlyName = field(call, 'friendly_name') ?? '';
  const issuer = field(call, 'issuer') ?? new URL(call.baseUrl).hostname;
  const secret = newTotpSecret();
  const id = randomUUID();
  await inTransaction(call.pool, async (db) => {
    const { rows } = await db.query<{ n: string; named: boolean }>(
      `SELECT count(*) AS n, coalesce(bool_or(friendly_name = $2 AND trim($2) <> ''), false) AS named FROM auth.mfa_factors WHERE user_id = $1`,
      [user.id, friendlyName],
    );
    if (rows[0].named) throw AuthError.unprocessable('mfa_factor_name_conflict', `A factor with the friendly name "${friendlyName}" for this user already exists`);
    if (Number(rows[0].n) >= MAX_FACTORS) throw AuthError.unprocessable('too_many_enrolled_mfa_factors', 'Maximum number of verified factors reached, unenroll to continue');
    await db.query(
      `INSERT INTO auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret)
       VALUES ($1, $2, $3, 'totp', 'unverified', now(), now(), $4)`,
      [id, user.id, friendlyName, secret],
    );
    await audit(db, actorOf(user), 'factor_in_progress', call, { factor_id: id, factor_type: 'totp' });
  });
  const uri = totpUri(secret, issuer, user.email ?? user.id);
  return {
    status: 200,
    body: { id, type: 'totp', friendly_name: friendlyName, totp: { qr_code: uriCard(uri), secret, uri } },
  };
}

/** An SVG card carrying the otpauth URI as text (not a scannable QR code: enter the secret or URI by hand). */
function uriCard(uri: string): string {
  const text = uri.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="40"><text x="4" y="24" font-size="8">${text}</text></svg>`;
}

async function ownFactor(call: AuthCall, userId: string): Promise<{ id: string; secret: string; status: string }> {
  const factorId = call.params.id;
  const { rows } = isUuid(factorId)
    ? await call.pool.query<{ id: string; secret: string; status: string }>(
        `SELECT id, secret, status::text AS status FROM auth.mfa_factors WHERE id = $1 AND user_id = $2`,
        [factorId, userId],
      )
    : { rows: [] };
  if (rows.length === 0) throw AuthError.notFound('mfa_factor_not_found', 'Factor not found');
  return rows[0];
}

export async function challenge(call: AuthCall): Promise<AuthAnswer> {
  limit(call, call.limits.mfa);
  const { user } = await requireUser(call);
  const factor = await ownFactor(call, user.id);
  const id = randomUUID();
  const { rows } = await call.pool.query<{ created_at: Date }>(
    `INSERT INTO auth.mfa_challenges (id, factor_id, created_at, ip_address) VALUES ($1, $2, now(), $3) RETURNING created_at`,
    [id, factor.id, /^[0-9a-fA-F:.]+$/.test(call.ip) ? call.ip : '0.0.0.0'],
  );
  await call.pool.query(`UPDATE auth.mfa_factors SET last_challenged_at = now() WHERE id = $1`, [factor.id]).catch(() => undefined);
  return { status: 200, body: { id, type: 'totp', expires_at: Math.floor((rows[0].created_at.getTime() + CHALLENGE_LIFETIME_MS) / 1000) } };
}

export async function verifyFactor(call: AuthCall): Promise<AuthAnswer> {
  limit(call, call.limits.mfa);
  const { user, sessionId } = await requireUser(call);
  if (sessionId === null) throw AuthError.forbidden('session_not_found', 'Session from session_id claim in JWT does not exist');
  const factor = await ownFactor(call, user.id);
  const challengeId = field(call, 'challenge_id');
  const code = field(call, 'code') ?? '';
  if (!isUuid(challengeId)) throw AuthError.notFound('mfa_challenge_not_found', 'Challenge not found');
  return inTransaction(call.pool, async (db) => {
    const { rows } = await db.query<{ created_at: Date; verified_at: Date | null }>(
      `SELECT created_at, verified_at FROM auth.mfa_challenges WHERE id = $1 AND factor_id = $2 FOR UPDATE`,
      [challengeId, factor.id],
    );
    const found = rows[0];
    if (!found || found.verified_at !== null) throw AuthError.notFound('mfa_challenge_not_found', 'Challenge not found');
    if (found.created_at.getTime() + CHALLENGE_LIFETIME_MS < Date.now()) {
      await db.query(`DELETE FROM auth.mfa_challenges WHERE id = $1`, [challengeId]);
      throw AuthError.unprocessable('mfa_challenge_expired', `MFA challenge ${challengeId} has expired, verify against another challenge or create a new challenge.`);
    }
    if (!verifyTotp(factor.secret, code)) {
      await audit(db, actorOf(user), 'verification_attempted', call, { factor_id: factor.id, success: false });
      throw AuthError.unprocessable('mfa_verification_failed', 'Invalid TOTP code entered');
    }
    await db.query(`UPDATE auth.mfa_challenges SET verified_at = now() WHERE id = $1`, [challengeId]);
    await db.query(`UPDATE auth.mfa_factors SET status = 'verified', updated_at = now() WHERE id = $1`, [factor.id]);
    await db.query(`UPDATE auth.sessions SET aal = 'aal2', factor_id = $2, updated_at = now() WHERE id = $1`, [sessionId, factor.id]);
    await addAmrClaim(db, sessionId, 'totp');
    // The session's earlier refresh tokens stay aal1 material no longer: a fresh one continues the session.
    await db.query(`UPDATE auth.refresh_tokens SET revoked = true, updated_at = now() WHERE session_id = $1 AND revoked = false`, [sessionId]);
    const refreshToken = newRefreshToken();
    await db.query(
      `INSERT INTO auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
       VALUES ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), NULL, $3)`,
      [refreshToken, user.id, sessionId],
    );
    await audit(db, actorOf(user), 'verification_attempted', call, { factor_id: factor.id, success: true });
    return { status: 200, body: await sessionAnswer(call, db, user, sessionId, refreshToken) };
  });
}

export async function unenroll(call: AuthCall): Promise<AuthAnswer> {
  const { user, claims } = await requireUser(call);
  const factor = await ownFactor(call, user.id);
  if (factor.status === 'verified' && claims.aal !== 'aal2') {
    throw AuthError.unprocessable('insufficient_aal', 'AAL2 required to unenroll verified factor');
  }
  await inTransaction(call.pool, async (db) => {
    await db.query(`DELETE FROM auth.mfa_factors WHERE id = $1`, [factor.id]);
    await audit(db, actorOf(user), 'factor_unenrolled', call, { factor_id: factor.id });
  });
  return { status: 200, body: { id: factor.id } };
}
