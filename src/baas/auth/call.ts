/**
 * What a handler of the auth module is given (one request, already through the gate and the API key check) and the
 * checks GoTrue makes on the bearer token of user and admin endpoints (spec baas-api.md §2.3).
 */
import type pg from 'pg';
import type { Claims, JwtFailure } from '../../auth/jwt.js';
import { bearerToken } from '../../auth/jwt.js';
import type { AuthConfig } from '../../config/auth.js';
import type { ModuleEvent } from '../../http/module-events.js';
import type { TenantRuntime } from '../../tenants/tenant.js';
import { AuthError } from './errors.js';
import type { Mail, Mailer } from './mailer.js';
import type { UnsentMails } from './unsent-mails.js';
import type { EmailFrequency, RateLimiter } from './rate-limit.js';
import { sessionExists } from './sessions.js';
import type { TokenKeys } from './tokens.js';
import { findUserById, type UserRow } from './users.js';

export interface AuthLimits {
  token: RateLimiter;
  otp: RateLimiter;
  verify: RateLimiter;
  anonymous: RateLimiter;
  mfa: RateLimiter;
  email: EmailFrequency;
}

export interface AuthServices {
  config: AuthConfig;
  keys: TokenKeys;
  limits: AuthLimits;
  mailer: Mailer;
  /** Mails not sent for want of SMTP, readable through the management API (unsent-mails.ts). */
  unsent: UnsentMails;
}

export interface AuthCall extends AuthServices {
  tenant: TenantRuntime;
  pool: pg.Pool;
  method: string;
  /** The path below /auth/v1, e.g. `/admin/users/<id>`. */
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: Record<string, string>;
  body: Record<string, unknown>;
  ip: string;
  /** `<scheme>://<host>` the request came to: the issuer and the links of e-mails start with it. */
  baseUrl: string;
  /** Events of the audit rows this request wrote (audit.ts), emitted by module.ts once they committed. */
  events: ModuleEvent[];
  /** Mails this request would have sent without SMTP, kept in `unsent` once the request succeeded. */
  unsentMails: Mail[];
}

export type AuthAnswer = { status: number; body?: unknown; headers?: [string, string][] } | { redirect: string };

export const ADMIN_ROLES = new Set(['service_role', 'supabase_admin']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/** The verified claims of the request's bearer token (401 without one, 403 bad_jwt when it does not verify). */
export async function bearerClaims(call: AuthCall): Promise<{ token: string; claims: Claims }> {
  const token = bearerToken(call.headers.authorization);
  if (!token) throw new AuthError(401, 'no_authorization', 'This endpoint requires a valid Bearer token');
  const result = await call.keys.verifierFor(call.tenant).verifyCleaned(token, { requireRoleAndExp: false });
  if (!result.ok) throw AuthError.forbidden('bad_jwt', `invalid JWT: unable to parse or verify signature, ${jwtReason(result.error)}`);
  return { token, claims: result.claims };
}

function jwtReason(error: JwtFailure): string {
  switch (error.kind) {
    case 'expired':
      return 'token has invalid claims: token is expired';
    case 'signature':
      return 'token signature is invalid: signature is invalid';
    case 'malformed':
      return 'token is malformed: could not JSON decode header';
    default:
      return 'token is unverifiable: error while executing keyfunc';
  }
}

export interface UserContext {
  user: UserRow;
  claims: Claims;
  sessionId: string | null;
}

/** The signed-in user of the request: its token verified, its user and session still there. */
export async function requireUser(call: AuthCall): Promise<UserContext> {
  const { claims } = await bearerClaims(call);
  if (!isUuid(claims.sub)) throw AuthError.forbidden('bad_jwt', 'invalid claim: missing sub claim');
  const user = await findUserById(call.pool, claims.sub);
  if (!user) throw AuthError.forbidden('user_not_found', 'User from sub claim in JWT does not exist');
  const sessionId = typeof claims.session_id === 'string' && claims.session_id !== '' ? claims.session_id : null;
  if (sessionId !== null && !(isUuid(sessionId) && (await sessionExists(call.pool, sessionId)))) {
    throw AuthError.forbidden('session_not_found', 'Session from session_id claim in JWT does not exist');
  }
  return { user, claims, sessionId };
}

/** Admin endpoints: a token whose role is an admin role (service_role). */
export async function requireAdmin(call: AuthCall): Promise<Claims> {
  const { claims } = await bearerClaims(call);
  if (typeof claims.role !== 'string' || !ADMIN_ROLES.has(claims.role)) throw AuthError.notAdmin();
  return claims;
}

/** A string field of the body: undefined when absent or null, 400 when of another type. */
export function field(call: AuthCall, name: string): string | undefined {
  const value = call.body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw AuthError.badRequest('bad_json', `Could not read field "${name}": expected a string`);
  return value;
}

/** An object field of the body (metadata): undefined when absent or null. */
export function objectField(call: AuthCall, name: string): Record<string, unknown> | undefined {
  const value = call.body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw AuthError.badRequest('bad_json', `Could not read field "${name}": expected an object`);
  return value as Record<string, unknown>;
}

export function boolField(call: AuthCall, name: string): boolean | undefined {
  const value = call.body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw AuthError.badRequest('bad_json', `Could not read field "${name}": expected a boolean`);
  return value;
}

/** Runs `work` in one transaction on a pooled client. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    }
  } finally {
    client.release(broken);
  }
}

/** Takes one request of `limiter`'s budget for the caller's IP, 429 when spent. */
export function limit(call: AuthCall, limiter: RateLimiter): void {
  if (!limiter.take(`${call.tenant.settings.externalId}|${call.ip}`)) throw AuthError.rateLimited();
}
