/**
 * POST /signup (e-mail + password, anonymous) and POST /token (grant_type password, refresh_token, pkce), with
 * GoTrue's validation order, codes and messages (internal/api/signup.go, token.go, anonymous.go).
 */
import { actorOf, audit } from '../audit.js';
import { field, inTransaction, limit, objectField, type AuthAnswer, type AuthCall } from '../call.js';
import { AuthError, OAuthError } from '../errors.js';
import { sessionAnswer } from '../issue.js';
import { sendLinkMail } from './mail-links.js';
import { pkceGrant } from './pkce.js';
import { hashPassword, spendVerification, verifyPassword } from '../passwords.js';
import { createSession, refreshGrant, signIn, type RequestMeta } from '../sessions.js';
import { findUserByEmail, insertUser, isBanned, updateUser, userJson, validEmail } from '../users.js';

export function checkPassword(call: AuthCall, password: string): void {
  if (password.length < call.config.minPasswordLength) throw AuthError.weakPassword(call.config.minPasswordLength);
  // bcrypt reads at most 72 bytes: GoTrue refuses longer passwords rather than ignore their tail.
  if (Buffer.byteLength(password) > 72) throw AuthError.validation('Password cannot be longer than 72 characters');
}

export async function signup(call: AuthCall): Promise<AuthAnswer> {
  const email = field(call, 'email');
  const phone = field(call, 'phone');
  const password = field(call, 'password');
  const data = objectField(call, 'data') ?? {};
  if (!email && !phone) return anonymousSignup(call, data);
  limit(call, call.limits.otp);
  if (email && phone) throw AuthError.validation('Only an email address or phone number should be provided on signup.');
  if (phone) throw AuthError.unprocessable('phone_provider_disabled', 'Phone signups are disabled');
  if (!password) throw AuthError.validation('Signup requires a valid password');
  if (!validEmail(email as string)) throw AuthError.validation('Unable to validate email address: invalid format');
  checkPassword(call, password);
  const address = (email as string).toLowerCase();
  const passwordHash = await hashPassword(password);
  return inTransaction(call.pool, async (db) => {
    const existing = await findUserByEmail(db, address);
    if (existing && (existing.email_confirmed_at !== null || call.config.autoconfirm)) {
      if (call.config.autoconfirm) throw AuthError.unprocessable('user_already_exists', 'User already registered');
      // With confirmation on, upstream answers a look-alike user so sign-up does not reveal who has an account.
      await audit(db, actorOf(existing), 'user_repeated_signup', call, { provider: 'email' });
      return { status: 200, body: { id: crypto.randomUUID(), aud: 'authenticated', role: '', email: address, phone: '', confirmation_sent_at: new Date().toISOString(), app_metadata: { provider: 'email', providers: ['email'] }, user_metadata: data, identities: [], created_at: new Date().toISOString(), updated_at: new Date().toISOString(), is_anonymous: false } };
    }
    let user = existing
      ? await updateUser(db, existing.id, { encrypted_password: passwordHash, raw_user_meta_data: { ...(existing.raw_user_meta_data ?? {}), ...data } })
      : await insertUser(db, { email: address, passwordHash, userMetadata: data, appMetadata: {}, emailConfirmed: call.config.autoconfirm, isAnonymous: false });
    if (!existing) await audit(db, actorOf(user), 'user_signedup', call, { provider: 'email' });
    if (!call.config.autoconfirm) {
      user = await sendLinkMail(call, db, user, 'confirmation');
      return { status: 200, body: await userJson(db, user) };
    }
    user = await updateUser(db, user.id, { last_sign_in_at: new Date() });
    const session = await createSession(db, user, 'password', meta(call));
    await audit(db, actorOf(user), 'login', call, { provider: 'email' });
    return { status: 200, body: await sessionAnswer(call, db, user, session.sessionId, session.refreshToken) };
  });
}

async function anonymousSignup(call: AuthCall, data: Record<string, unknown>): Promise<AuthAnswer> {
  if (!call.config.anonymousSignIns) throw AuthError.unprocessable('anonymous_provider_disabled', 'Anonymous sign-ins are disabled');
  limit(call, call.limits.anonymous);
  return inTransaction(call.pool, async (db) => {
    let user = await insertUser(db, { email: null, passwordHash: null, userMetadata: data, appMetadata: {}, emailConfirmed: false, isAnonymous: true });
    user = await updateUser(db, user.id, { last_sign_in_at: new Date() });
    await audit(db, actorOf(user), 'user_signedup', call, { provider: 'anonymous' });
    const session = await createSession(db, user, 'anonymous', meta(call));
    return { status: 200, body: await sessionAnswer(call, db, user, session.sessionId, session.refreshToken) };
  });
}

export function meta(call: AuthCall): RequestMeta {
  return { ip: call.ip, userAgent: call.headers['user-agent'] ?? '', events: call.events };
}

export async function token(call: AuthCall): Promise<AuthAnswer> {
  const grant = call.query.get('grant_type') ?? '';
  limit(call, call.limits.token);
  switch (grant) {
    case 'password':
      return passwordGrant(call);
    case 'refresh_token':
      return refreshTokenGrant(call);
    case 'pkce':
      return pkceGrant(call);
    default:
      throw AuthError.badRequest('invalid_credentials', 'unsupported_grant_type');
  }
}

const INVALID_LOGIN = 'Invalid login credentials';

async function passwordGrant(call: AuthCall): Promise<AuthAnswer> {
  const email = field(call, 'email');
  const phone = field(call, 'phone');
  const password = field(call, 'password') ?? '';
  if (email && phone) throw AuthError.validation('Only an email address or phone number should be provided on login.');
  if (phone) throw AuthError.unprocessable('phone_provider_disabled', 'Phone logins are disabled');
  if (!email) throw AuthError.validation('missing email or phone');
  const user = await findUserByEmail(call.pool, email);
  if (!user || user.deleted_at !== null) {
    await spendVerification(password);
    throw AuthError.badRequest('invalid_credentials', INVALID_LOGIN);
  }
  if (isBanned(user)) throw AuthError.badRequest('user_banned', 'User is banned');
  if (!(await verifyPassword(password, user.encrypted_password))) {
    throw AuthError.badRequest('invalid_credentials', INVALID_LOGIN);
  }
  if (user.email_confirmed_at === null && !call.config.autoconfirm) throw AuthError.badRequest('email_not_confirmed', 'Email not confirmed');
  const session = await signIn(call.pool, user, 'password', meta(call), { provider: 'email' });
  const amr = [{ method: 'password', timestamp: Math.floor(Date.now() / 1000) }];
  return { status: 200, body: await sessionAnswer(call, call.pool, session.user, session.sessionId, session.refreshToken, { aal: 'aal1', amr }) };
}

async function refreshTokenGrant(call: AuthCall): Promise<AuthAnswer> {
  const presented = field(call, 'refresh_token');
  if (!presented) throw new OAuthError('invalid_request', 'refresh_token required');
  let failure: AuthError | null = null;
  const answer = await inTransaction(call.pool, async (db) => {
    const result = await refreshGrant(db, presented, call.config.refreshTokenReuseInterval);
    if ('commitThenFail' in result) {
      failure = result.commitThenFail;
      return null;
    }
    const { user, sessionId, refreshToken } = result.ok;
    await audit(db, actorOf(user), 'token_refreshed', call);
    const body = await sessionAnswer(call, db, user, sessionId, refreshToken);
    return { status: 200, body, headers: [['sb-auth-user-id', user.id], ['sb-auth-session-id', sessionId]] as [string, string][] };
  });
  if (failure !== null || answer === null) throw failure ?? AuthError.badRequest('refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
  return answer;
}
