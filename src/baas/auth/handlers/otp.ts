/**
 * E-mail links and codes: POST /recover, POST /otp and /magiclink, POST and GET /verify, POST /admin/generate_link
 * (internal/api/recover.go, otp.go, magic_link.go, verify.go, mail.go). A code or link is good for a day, once.
 */
import type pg from 'pg';
import { ADMIN_ACTOR, actorOf, audit } from '../audit.js';
import { boolField, field, inTransaction, limit, objectField, requireAdmin, type AuthAnswer, type AuthCall } from '../call.js';
import { AuthError } from '../errors.js';
import { sessionAnswer } from '../issue.js';
import type { MailKind } from '../mailer.js';
import { hashPassword } from '../passwords.js';
import { createSession, type AuthMethod } from '../sessions.js';
import { findUserByEmail, findUserById, insertUser, updateUser, userJson, validEmail, type UserRow } from '../users.js';
import { issueLink, redirectTarget, sendLinkMail, tokenHash } from './mail-links.js';
import { issueAuthCode, PKCE_PREFIX } from './pkce.js';
import { checkPassword, meta } from './signup-token.js';

const OTP_LIFETIME_MS = 86_400_000;

function requiredEmail(call: AuthCall): string {
  const email = field(call, 'email');
  if (!email) throw AuthError.validation('An email address is required');
  if (!validEmail(email)) throw AuthError.validation('Unable to validate email address: invalid format');
  return email.toLowerCase();
}

export async function recover(call: AuthCall): Promise<AuthAnswer> {
  limit(call, call.limits.otp);
  const email = requiredEmail(call);
  await inTransaction(call.pool, async (db) => {
    const user = await findUserByEmail(db, email);
    // Unknown addresses get the same answer: recovery must not reveal who has an account.
    if (user) await sendLinkMail(call, db, user, 'recovery');
  });
  return { status: 200, body: {} };
}

export async function otp(call: AuthCall): Promise<AuthAnswer> {
  limit(call, call.limits.otp);
  if (field(call, 'phone')) throw AuthError.badRequest('sms_send_failed', 'Unable to get SMS provider');
  const email = requiredEmail(call);
  const createUser = boolField(call, 'create_user') ?? true;
  const data = objectField(call, 'data') ?? {};
  await inTransaction(call.pool, async (db) => {
    let user = await findUserByEmail(db, email);
    if (!user) {
      if (!createUser) throw AuthError.unprocessable('otp_disabled', 'Signups not allowed for otp');
      user = await insertUser(db, { email, passwordHash: null, userMetadata: data, appMetadata: {}, emailConfirmed: false, isAnonymous: false });
      await audit(db, actorOf(user), 'user_signedup', call, { provider: 'email' });
      await sendLinkMail(call, db, user, 'confirmation');
    } else {
      await sendLinkMail(call, db, user, user.email_confirmed_at === null ? 'confirmation' : 'magiclink');
    }
  });
  return { status: 200, body: {} };
}

/** POST /resend: the sign-up confirmation or the e-mail change code again (no answer tells whether it was sent). */
export async function resend(call: AuthCall): Promise<AuthAnswer> {
  limit(call, call.limits.otp);
  const type = field(call, 'type');
  if (type === 'sms' || type === 'phone_change') throw AuthError.badRequest('sms_send_failed', 'Unable to get SMS provider');
  if (type !== 'signup' && type !== 'email_change') throw AuthError.validation('Missing one of these types: signup, email_change, sms, phone_change');
  const email = requiredEmail(call);
  await inTransaction(call.pool, async (db) => {
    const user = await findUserByEmail(db, email);
    if (type === 'signup' && user && user.email_confirmed_at === null) await sendLinkMail(call, db, user, 'confirmation');
    if (type === 'email_change') {
      const { rows } = await db.query<{ id: string }>(`SELECT id FROM auth.users WHERE lower(email_change) = lower($1) LIMIT 1`, [email]);
      const changing = rows.length > 0 ? await findUserById(db, rows[0].id) : null;
      if (changing) await sendLinkMail(call, db, changing, 'email_change', email);
    }
  });
  return { status: 200, body: {} };
}

/** POST /invite (admin): a user invited by e-mail, who sets a password after following the link. */
export async function invite(call: AuthCall): Promise<AuthAnswer> {
  await requireAdmin(call);
  const email = requiredEmail(call);
  const data = objectField(call, 'data') ?? {};
  return inTransaction(call.pool, async (db) => {
    let user = await findUserByEmail(db, email);
    if (user && user.email_confirmed_at !== null) throw AuthError.unprocessable('email_exists', 'A user with this email address has already been registered');
    user ??= await insertUser(db, { email, passwordHash: null, userMetadata: data, appMetadata: {}, emailConfirmed: false, isAnonymous: false });
    user = await sendLinkMail(call, db, user, 'invite');
    await audit(db, ADMIN_ACTOR, 'user_invited', call, { user_id: user.id, user_email: email });
    return { status: 200, body: await userJson(db, user) };
  });
}

const VERIFY_KINDS: Record<string, { column: string; sentAt: keyof UserRow; method: AuthMethod }> = {
  signup: { column: 'confirmation_token', sentAt: 'confirmation_sent_at', method: 'email/signup' },
  invite: { column: 'confirmation_token', sentAt: 'invited_at', method: 'invite' },
  magiclink: { column: 'recovery_token', sentAt: 'recovery_sent_at', method: 'magiclink' },
  recovery: { column: 'recovery_token', sentAt: 'recovery_sent_at', method: 'recovery' },
  email_change: { column: 'email_change_token_new', sentAt: 'email_change_sent_at', method: 'email_change' },
};

const EXPIRED = () => AuthError.forbidden('otp_expired', 'Token has expired or is invalid');

/** The user a code or link is for, its token consumed; 403 otp_expired when none matches or it is too old. */
async function consume(db: Pick<pg.ClientBase, 'query'>, type: string, hashed: string): Promise<{ user: UserRow; method: AuthMethod }> {
  // `email` verifies whichever e-mail code was sent last: sign-up confirmation or magic link.
  const kinds = type === 'email' ? ['signup', 'magiclink'] : [type];
  for (const kind of kinds) {
    const spec = VERIFY_KINDS[kind];
    if (!spec) throw AuthError.validation('Verify requires a verification type');
    // A code typed in hashes without the PKCE prefix its stored token may carry.
    const { rows } = await db.query<{ id: string }>(`SELECT id FROM auth.users WHERE ${spec.column} = $1 OR ${spec.column} = 'pkce_' || $1 FOR UPDATE`, [hashed]);
    if (rows.length === 0) continue;
    const user = (await findUserById(db, rows[0].id)) as UserRow;
    const sent = user[spec.sentAt] as Date | null;
    if (sent === null || sent.getTime() + OTP_LIFETIME_MS < Date.now()) throw EXPIRED();
    await db.query(`UPDATE auth.users SET ${spec.column} = '' WHERE id = $1`, [user.id]);
    await db.query(`DELETE FROM auth.one_time_tokens WHERE user_id = $1 AND (token_hash = $2 OR token_hash = 'pkce_' || $2)`, [user.id, hashed]);
    let verified = user;
    if (kind === 'email_change' && user.email_change) {
      verified = await updateUser(db, user.id, { email: user.email_change, email_change: '', email_confirmed_at: new Date(), is_anonymous: false });
      await db.query(`UPDATE auth.identities SET identity_data = identity_data || jsonb_build_object('email', $2::text, 'email_verified', true) WHERE user_id = $1 AND provider = 'email'`, [user.id, verified.email]);
    } else if (user.email_confirmed_at === null) {
      verified = await updateUser(db, user.id, { email_confirmed_at: new Date() });
      await db.query(`UPDATE auth.identities SET identity_data = identity_data || '{"email_verified": true}' WHERE user_id = $1 AND provider = 'email'`, [user.id]);
    }
    return { user: verified, method: spec.method };
  }
  throw EXPIRED();
}

/** `typedCode`: a code typed in (POST) signs in as `otp`, as upstream; a clicked link by its own kind. */
async function verifyAndSignIn(call: AuthCall, type: string, hashed: string, typedCode: boolean): Promise<Record<string, unknown>> {
  return inTransaction(call.pool, async (db) => {
    const consumed = await consume(db, type, hashed);
    const user = consumed.user;
    const method: AuthMethod = typedCode ? 'otp' : consumed.method;
    const signedIn = await updateUser(db, user.id, { last_sign_in_at: new Date() });
    const session = await createSession(db, signedIn, method, meta(call));
    await audit(db, actorOf(signedIn), 'login', call, { provider: 'email', method });
    return sessionAnswer(call, db, signedIn, session.sessionId, session.refreshToken);
  });
}

export async function verifyPost(call: AuthCall): Promise<AuthAnswer> {
  limit(call, call.limits.verify);
  const type = field(call, 'type');
  if (!type) throw AuthError.validation('Verify requires a verification type');
  const given = field(call, 'token_hash') ?? (() => {
    const email = field(call, 'email');
    const token = field(call, 'token');
    if (!email || !token) throw AuthError.validation('Verify requires either a token or a token hash');
    return tokenHash(email.toLowerCase(), token);
  })();
  return { status: 200, body: await verifyAndSignIn(call, type, given, true) };
}

/** The link of an e-mail: redirects to redirect_to with the session (or the error) in the fragment, as upstream. */
export async function verifyGet(call: AuthCall): Promise<AuthAnswer> {
  const target = redirectTarget(call);
  const type = call.query.get('type') ?? '';
  const token = call.query.get('token') ?? '';
  try {
    limit(call, call.limits.verify);
    if (!type || !token) throw AuthError.validation('Verify requires a verification type');
    if (token.startsWith(PKCE_PREFIX)) {
      const code = await inTransaction(call.pool, async (db) => {
        const { user, method } = await consume(db, type, token);
        return issueAuthCode(db, user.id, method);
      });
      return { redirect: withQuery(target, { code }) };
    }
    const session = await verifyAndSignIn(call, type, token, false);
    const fragment = new URLSearchParams({
      access_token: String(session.access_token), expires_at: String(session.expires_at), expires_in: String(session.expires_in),
      refresh_token: String(session.refresh_token), token_type: 'bearer', type,
    });
    return { redirect: `${target}#${fragment}` };
  } catch (err) {
    if (!(err instanceof AuthError)) throw err;
    const error = {
      error: err.status === 429 ? 'too_many_requests' : 'access_denied', error_code: err.code,
      error_description: err.code === 'otp_expired' ? 'Email link is invalid or has expired' : err.message,
    };
    // PKCE clients read the error from the query, implicit ones from the fragment.
    if (token.startsWith(PKCE_PREFIX)) return { redirect: withQuery(target, error) };
    return { redirect: `${target}#${new URLSearchParams(error)}` };
  }
}

function withQuery(target: string, params: Record<string, string>): string {
  const url = new URL(target);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}

const LINK_TYPES: Record<string, MailKind> = { signup: 'confirmation', invite: 'invite', magiclink: 'magiclink', recovery: 'recovery', email_change_new: 'email_change', email_change_current: 'email_change' };

export async function generateLink(call: AuthCall): Promise<AuthAnswer> {
  await requireAdmin(call);
  const type = field(call, 'type') ?? '';
  const kind = LINK_TYPES[type];
  if (!kind) throw AuthError.validation('Invalid email action link type requested');
  const email = requiredEmail(call);
  const password = field(call, 'password');
  if (type === 'signup' && !password) throw AuthError.validation('Signup requires a valid password');
  if (password !== undefined) checkPassword(call, password);
  const passwordHash = password === undefined ? null : await hashPassword(password);
  const newEmail = field(call, 'new_email')?.toLowerCase();
  return inTransaction(call.pool, async (db) => {
    let user = await findUserByEmail(db, email);
    if (type === 'signup' || type === 'invite') {
      if (user && user.email_confirmed_at !== null) throw AuthError.unprocessable('email_exists', 'A user with this email address has already been registered');
      user ??= await insertUser(db, { email, passwordHash, userMetadata: objectField(call, 'data') ?? {}, appMetadata: {}, emailConfirmed: false, isAnonymous: false });
    }
    if (!user) throw AuthError.notFound('user_not_found', 'User with this email not found');
    let address = email;
    if (kind === 'email_change') {
      if (!newEmail || !validEmail(newEmail)) throw AuthError.validation('The new email address provided is invalid');
      user = await updateUser(db, user.id, { email_change: newEmail });
      address = newEmail;
    }
    const issued = await issueLink(call, db, user, kind, address);
    await audit(db, ADMIN_ACTOR, 'generate_link', call, { user_id: user.id, type });
    const fresh = (await findUserById(db, user.id)) as UserRow;
    return {
      status: 200,
      body: { ...(await userJson(db, fresh)), action_link: issued.link, email_otp: issued.otp, hashed_token: issued.hashedToken, verification_type: issued.type, redirect_to: issued.redirectTo },
    };
  });
}

