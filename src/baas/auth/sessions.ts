/**
 * Sessions and refresh-token rotation (spec baas-api.md §2.4; upstream RefreshTokenGrant). A sign-in makes a session
 * row, its AMR claim and a first refresh token. A refresh locks the token and its session (concurrent refreshes of
 * one token queue on the row locks), revokes the token and issues a child. Presenting a revoked token: the parent
 * of the active one gets the active one back (the client lost the previous answer); another one within the reuse
 * interval gets a new child; past it, every token of the session is revoked and the call fails.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { AuthError } from './errors.js';
import { newRefreshToken } from './tokens.js';
import { auditPayload, actorOf, noteAuditEvent } from './audit.js';
import type { ModuleEvent } from '../../http/module-events.js';
import { findUserById, isBanned, USER_COLUMNS, type UserRow } from './users.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export type AuthMethod = 'password' | 'otp' | 'magiclink' | 'anonymous' | 'email/signup' | 'recovery' | 'invite' | 'totp' | 'email_change';

export interface SessionInfo {
  sessionId: string;
  refreshToken: string;
}

export interface RequestMeta {
  ip: string;
  userAgent: string;
  /** The request's events (audit.ts AuditSite), for the audit row a sign-in writes. */
  events?: ModuleEvent[];
}

/** A new session of `user` authenticated by `method`, with its first refresh token. */
export async function createSession(db: Queryable, user: UserRow, method: AuthMethod, meta: RequestMeta): Promise<SessionInfo> {
  const sessionId = randomUUID();
  await db.query(
    `INSERT INTO auth.sessions (id, user_id, created_at, updated_at, aal, user_agent, ip)
     VALUES ($1, $2, now(), now(), 'aal1', $3, $4)`,
    [sessionId, user.id, meta.userAgent.slice(0, 1000), validIp(meta.ip)],
  );
  await addAmrClaim(db, sessionId, method);
  const refreshToken = await insertRefreshToken(db, user.id, sessionId, null);
  return { sessionId, refreshToken };
}

/**
 * A sign-in in ONE statement (atomic without BEGIN/COMMIT): last_sign_in_at, the session, its AMR claim, its first
 * refresh token and the `login` audit row. Password sign-ins are bounded by bcrypt on 2 cores; every round trip
 * saved is CPU given back to it.
 */
export async function signIn(db: Queryable, user: UserRow, method: AuthMethod, meta: RequestMeta, traits: Record<string, unknown>): Promise<{ user: UserRow } & SessionInfo> {
  const sessionId = randomUUID();
  const refreshToken = newRefreshToken();
  const auditId = randomUUID();
  const { rows } = await db.query<UserRow>(
    `WITH signed_in AS (
       UPDATE auth.users SET last_sign_in_at = now(), updated_at = now() WHERE id = $1 RETURNING ${USER_COLUMNS}
     ), new_session AS (
       INSERT INTO auth.sessions (id, user_id, created_at, updated_at, aal, user_agent, ip) VALUES ($2, $1, now(), now(), 'aal1', $3, $4)
     ), amr AS (
       INSERT INTO auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id) VALUES ($2, now(), now(), $5, $6)
     ), first_token AS (
       INSERT INTO auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
       VALUES ('00000000-0000-0000-0000-000000000000', $7, $1::text, false, now(), now(), NULL, $2)
     ), logged AS (
       INSERT INTO auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)
       VALUES ('00000000-0000-0000-0000-000000000000', $8, $9, clock_timestamp(), $10)
     )
     SELECT * FROM signed_in`,
    [user.id, sessionId, meta.userAgent.slice(0, 1000), validIp(meta.ip), method, randomUUID(), refreshToken, auditId,
      auditPayload(actorOf(user), 'login', traits), meta.ip.slice(0, 64)],
  );
  if (rows.length === 0) throw AuthError.badRequest('invalid_credentials', 'Invalid login credentials');
  noteAuditEvent(meta, auditId, actorOf(user), 'login', traits);
  return { user: rows[0], sessionId, refreshToken };
}

/** Records that the session was authenticated by `method` (again: its timestamp moves). */
export async function addAmrClaim(db: Queryable, sessionId: string, method: AuthMethod): Promise<void> {
  await db.query(
    `INSERT INTO auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id) VALUES ($1, now(), now(), $2, $3)
     ON CONFLICT (session_id, authentication_method) DO UPDATE SET updated_at = now()`,
    [sessionId, method, randomUUID()],
  );
}

async function insertRefreshToken(db: Queryable, userId: string, sessionId: string, parent: string | null): Promise<string> {
  const token = newRefreshToken();
  await db.query(
    `INSERT INTO auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
     VALUES ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), $3, $4)`,
    [token, userId, parent, sessionId],
  );
  return token;
}

interface TokenRow {
  id: string;
  token: string;
  revoked: boolean;
  updated_at: Date;
  session_id: string | null;
  user_id: string;
}

export interface GrantResult {
  user: UserRow;
  sessionId: string;
  refreshToken: string;
}

/**
 * The refresh grant in one transaction on `client` (the caller begins and commits; a failure that must still be
 * committed, the revocation of a reused token's family, is returned as `commitThenFail`).
 */
export async function refreshGrant(
  client: Queryable,
  presented: string,
  reuseIntervalSec: number,
): Promise<{ ok: GrantResult } | { commitThenFail: AuthError }> {
  const { rows } = await client.query<TokenRow>(
    `SELECT id, token, revoked, updated_at, session_id, user_id FROM auth.refresh_tokens WHERE token = $1 FOR UPDATE`,
    [presented],
  );
  const token = rows[0];
  if (!token) throw AuthError.badRequest('refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
  if (token.session_id === null) throw AuthError.badRequest('session_not_found', 'Invalid Refresh Token: No Valid Session Found');
  // The session row lock serialises every refresh of the session, whichever of its tokens is presented.
  const session = await client.query<{ id: string; not_after: Date | null }>(
    `SELECT id, not_after FROM auth.sessions WHERE id = $1 FOR UPDATE`,
    [token.session_id],
  );
  if (session.rows.length === 0) throw AuthError.badRequest('session_not_found', 'Invalid Refresh Token: No Valid Session Found');
  const notAfter = session.rows[0].not_after;
  if (notAfter !== null && notAfter.getTime() <= Date.now()) throw AuthError.badRequest('session_expired', 'Invalid Refresh Token: Session Expired');
  const user = await findUserById(client, token.user_id);
  if (!user) throw AuthError.badRequest('refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
  if (isBanned(user)) throw AuthError.badRequest('user_banned', 'Invalid Refresh Token: User Banned');
  const sessionId = token.session_id;
  if (token.revoked) {
    const active = await client.query<{ token: string; parent: string | null }>(
      `SELECT token, parent FROM auth.refresh_tokens WHERE session_id = $1 AND revoked = false ORDER BY id DESC LIMIT 1`,
      [sessionId],
    );
    if (active.rows[0]?.parent === token.token) {
      await touchSession(client, sessionId);
      return { ok: { user, sessionId, refreshToken: active.rows[0].token } };
    }
    if (Date.now() > token.updated_at.getTime() + reuseIntervalSec * 1000) {
      await client.query(`UPDATE auth.refresh_tokens SET revoked = true, updated_at = now() WHERE session_id = $1 AND revoked = false`, [sessionId]);
      return { commitThenFail: AuthError.badRequest('refresh_token_already_used', 'Invalid Refresh Token: Already Used') };
    }
  } else {
    await client.query(`UPDATE auth.refresh_tokens SET revoked = true, updated_at = now() WHERE id = $1`, [token.id]);
  }
  const refreshToken = await insertRefreshToken(client, user.id, sessionId, token.token);
  await touchSession(client, sessionId);
  return { ok: { user, sessionId, refreshToken } };
}

async function touchSession(db: Queryable, sessionId: string): Promise<void> {
  await db.query(`UPDATE auth.sessions SET refreshed_at = (now() AT TIME ZONE 'UTC'), updated_at = now() WHERE id = $1`, [sessionId]);
}

export interface SessionClaims {
  aal: string;
  amr: { method: string; timestamp: number }[];
}

/** The assurance level and authentication methods of a session (null when it no longer exists). */
export async function sessionClaims(db: Queryable, sessionId: string): Promise<SessionClaims | null> {
  const { rows } = await db.query<{ aal: string | null; method: string | null; ts: string | null }>(
    `SELECT s.aal::text AS aal, c.authentication_method AS method, extract(epoch FROM c.updated_at)::bigint::text AS ts
       FROM auth.sessions s LEFT JOIN auth.mfa_amr_claims c ON c.session_id = s.id
      WHERE s.id = $1 ORDER BY c.updated_at DESC`,
    [sessionId],
  );
  if (rows.length === 0) return null;
  const amr = rows.filter((r) => r.method !== null).map((r) => ({ method: r.method as string, timestamp: Number(r.ts) }));
  return { aal: rows[0].aal ?? 'aal1', amr };
}

export async function sessionExists(db: Queryable, sessionId: string): Promise<boolean> {
  const { rows } = await db.query(`SELECT 1 FROM auth.sessions WHERE id = $1`, [sessionId]);
  return rows.length > 0;
}

export type LogoutScope = 'global' | 'local' | 'others';

/** Ends sessions of `userId` (their refresh tokens go with them by cascade); returns how many. */
export async function endSessions(db: Queryable, userId: string, sessionId: string | null, scope: LogoutScope): Promise<number> {
  if (scope === 'local') {
    if (sessionId === null) return 0;
    return (await db.query(`DELETE FROM auth.sessions WHERE id = $1 AND user_id = $2`, [sessionId, userId])).rowCount ?? 0;
  }
  if (scope === 'others') {
    return (await db.query(`DELETE FROM auth.sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2`, [userId, sessionId])).rowCount ?? 0;
  }
  return (await db.query(`DELETE FROM auth.sessions WHERE user_id = $1`, [userId])).rowCount ?? 0;
}

/** An IP the inet column accepts, or null. */
function validIp(ip: string): string | null {
  return /^[0-9a-fA-F:.]+$/.test(ip) && ip.length <= 45 ? ip : null;
}
