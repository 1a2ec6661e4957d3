/**
 * PKCE for e-mail links (internal/api/pkce.go, models/flow_state.go): a request carrying `code_challenge` gets a flow
 * state and a `pkce_`-prefixed link token; the verified link then redirects with `?code=<auth code>` instead of a
 * session, and POST /token?grant_type=pkce trades the code and its verifier for the session.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import { actorOf, audit } from '../audit.js';
import { field, inTransaction, type AuthAnswer, type AuthCall } from '../call.js';
import { AuthError } from '../errors.js';
import { sessionAnswer } from '../issue.js';
import type { MailKind } from '../mailer.js';
import { createSession, type AuthMethod } from '../sessions.js';
import { findUserById, updateUser } from '../users.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export const PKCE_PREFIX = 'pkce_';
const FLOW_LIFETIME_MS = 300_000;
const CHALLENGE = /^[a-zA-Z._~0-9-]{43,128}$/;

const FLOW_METHOD: Record<MailKind, AuthMethod> = {
  confirmation: 'email/signup', invite: 'invite', magiclink: 'magiclink', recovery: 'recovery', email_change: 'email_change',
};

/** The request's PKCE challenge, checked as upstream; null for the implicit flow. */
export function pkceChallenge(call: AuthCall): { challenge: string; method: 's256' | 'plain' } | null {
  const challenge = field(call, 'code_challenge');
  const method = field(call, 'code_challenge_method')?.toLowerCase();
  if (!challenge && !method) return null;
  if (!challenge || !method) throw AuthError.validation('PKCE flow requires code_challenge_method and code_challenge');
  if (challenge.length < 43 || challenge.length > 128) throw AuthError.validation('code challenge has to be between 43 and 128 characters');
  if (!CHALLENGE.test(challenge)) throw AuthError.validation('code challenge can only contain alphanumeric characters, hyphens, periods, underscores and tildes');
  if (method !== 's256' && method !== 'plain') throw AuthError.validation(`unsupported code_challenge method "${method}"`);
  return { challenge, method };
}

/** Records the flow of a mailed link when the request is a PKCE one; returns the prefix its token takes. */
export async function recordFlow(call: AuthCall, db: Queryable, userId: string, kind: MailKind): Promise<string> {
  const pkce = pkceChallenge(call);
  if (pkce === null) return '';
  await db.query(
    `INSERT INTO auth.flow_state (id, user_id, auth_code, code_challenge_method, code_challenge, provider_type, authentication_method, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, 'email', $6, now(), now())`,
    [randomUUID(), userId, randomUUID(), pkce.method, pkce.challenge, FLOW_METHOD[kind]],
  );
  return PKCE_PREFIX;
}

/** The auth code of the user's latest flow for a verified link (its issue time recorded); 422 when there is none. */
export async function issueAuthCode(db: Queryable, userId: string, method: AuthMethod): Promise<string> {
  const { rows } = await db.query<{ auth_code: string }>(
    `UPDATE auth.flow_state SET auth_code_issued_at = now(), updated_at = now()
      WHERE id = (SELECT id FROM auth.flow_state WHERE user_id = $1 AND authentication_method = $2 AND auth_code IS NOT NULL
                   ORDER BY created_at DESC LIMIT 1)
      RETURNING auth_code`,
    [userId, method],
  );
  if (rows.length === 0) throw AuthError.unprocessable('flow_state_not_found', 'No valid flow state found for user.');
  return rows[0].auth_code;
}

function challengeOf(verifier: string, method: string): string {
  return method === 's256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
}

export async function pkceGrant(call: AuthCall): Promise<AuthAnswer> {
  const authCode = field(call, 'auth_code');
  const verifier = field(call, 'code_verifier');
  if (!authCode || !verifier) throw AuthError.validation('invalid request: both auth code and code verifier should be non-empty');
  return inTransaction(call.pool, async (db) => {
    const { rows } = await db.query<{ id: string; user_id: string | null; code_challenge: string; code_challenge_method: string; authentication_method: string; created_at: Date; auth_code_issued_at: Date | null }>(
      `SELECT id, user_id, code_challenge, code_challenge_method::text AS code_challenge_method, authentication_method, created_at, auth_code_issued_at
         FROM auth.flow_state WHERE auth_code = $1 FOR UPDATE`,
      [authCode],
    );
    const flow = rows[0];
    if (!flow || flow.user_id === null) throw AuthError.notFound('flow_state_not_found', 'invalid flow state, no valid flow state found');
    const since = flow.authentication_method === 'magiclink' && flow.auth_code_issued_at !== null ? flow.auth_code_issued_at : flow.created_at;
    if (since.getTime() + FLOW_LIFETIME_MS < Date.now()) throw AuthError.unprocessable('flow_state_expired', 'invalid flow state, flow state has expired');
    const expected = Buffer.from(flow.code_challenge);
    const given = Buffer.from(challengeOf(verifier, flow.code_challenge_method));
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      throw AuthError.badRequest('bad_code_verifier', 'code challenge does not match previously saved code verifier');
    }
    await db.query(`DELETE FROM auth.flow_state WHERE id = $1`, [flow.id]);
    const user = await findUserById(db, flow.user_id);
    if (!user) throw AuthError.notFound('user_not_found', 'User not found');
    const signedIn = await updateUser(db, user.id, { last_sign_in_at: new Date() });
    const session = await createSession(db, signedIn, flow.authentication_method as AuthMethod, { ip: call.ip, userAgent: call.headers['user-agent'] ?? '' });
    await audit(db, actorOf(signedIn), 'login', call, { provider: 'email', method: flow.authentication_method });
    return { status: 200, body: await sessionAnswer(call, db, signedIn, session.sessionId, session.refreshToken) };
  });
}
