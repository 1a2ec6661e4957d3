/** GET/PUT /user and POST /logout for the signed-in user (internal/api/user.go, logout.go). */
import { actorOf, audit } from '../audit.js';
import { field, inTransaction, objectField, requireUser, type AuthAnswer, type AuthCall } from '../call.js';
import { AuthError } from '../errors.js';
import { hashPassword } from '../passwords.js';
import { endSessions, type LogoutScope } from '../sessions.js';
import { findUserByEmail, findUserById, updateUser, userJson, validEmail } from '../users.js';
import { sendLinkMail } from './mail-links.js';
import { checkPassword } from './signup-token.js';

export async function getUser(call: AuthCall): Promise<AuthAnswer> {
  const { user } = await requireUser(call);
  return { status: 200, body: await userJson(call.pool, user) };
}

/** Metadata update as upstream: keys merge into the stored map, a key set to null is removed. */
export function mergeMetadata(stored: Record<string, unknown> | null, changes: Record<string, unknown>): Record<string, unknown> {
  const out = { ...(stored ?? {}) };
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) delete out[key];
    else out[key] = value;
  }
  return out;
}

export async function putUser(call: AuthCall): Promise<AuthAnswer> {
  const { user } = await requireUser(call);
  if (call.body.app_metadata !== undefined && call.body.app_metadata !== null) {
    throw AuthError.forbidden('not_admin', 'Updating app_metadata requires admin privileges');
  }
  const data = objectField(call, 'data');
  const password = field(call, 'password');
  const email = field(call, 'email');
  if (field(call, 'phone')) throw AuthError.unprocessable('phone_provider_disabled', 'Phone logins are disabled');
  if (password !== undefined) checkPassword(call, password);
  if (email !== undefined && !validEmail(email)) throw AuthError.validation('Unable to validate email address: invalid format');
  const passwordHash = password === undefined ? undefined : await hashPassword(password);
  return inTransaction(call.pool, async (db) => {
    let updated = (await findUserById(db, user.id, true)) ?? user;
    if (data !== undefined) {
      updated = await updateUser(db, updated.id, { raw_user_meta_data: mergeMetadata(updated.raw_user_meta_data, data) });
    }
    if (passwordHash !== undefined) {
      updated = await updateUser(db, updated.id, { encrypted_password: passwordHash });
      await audit(db, actorOf(updated), 'user_updated_password', call);
    }
    const address = email?.toLowerCase();
    if (address !== undefined && address !== updated.email) {
      const taken = await findUserByEmail(db, address);
      if (taken && taken.id !== updated.id) throw AuthError.unprocessable('email_exists', 'A user with this email address has already been registered');
      if (call.config.autoconfirm || updated.is_anonymous) {
        // An anonymous user adding an e-mail becomes a permanent one once it is confirmed (upstream: on verify).
        updated = await updateUser(db, updated.id, { email: address, email_confirmed_at: call.config.autoconfirm ? new Date() : null, is_anonymous: call.config.autoconfirm ? false : updated.is_anonymous });
        await db.query(
          `INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
           VALUES ($1::text, $1::uuid, $2, 'email', now(), now(), now())
           ON CONFLICT (provider_id, provider) DO UPDATE SET identity_data = EXCLUDED.identity_data, updated_at = now()`,
          [updated.id, { sub: updated.id, email: address, email_verified: call.config.autoconfirm, phone_verified: false }],
        );
        if (updated.raw_app_meta_data?.provider === undefined) {
          updated = await updateUser(db, updated.id, { raw_app_meta_data: { ...(updated.raw_app_meta_data ?? {}), provider: 'email', providers: ['email'] } });
        }
      }
      if (!call.config.autoconfirm) {
        updated = await updateUser(db, updated.id, { email_change: address });
        updated = await sendLinkMail(call, db, updated, 'email_change', address);
      }
    }
    await audit(db, actorOf(updated), 'user_modified', call);
    return { status: 200, body: await userJson(db, updated) };
  });
}

const SCOPES = new Set<LogoutScope>(['global', 'local', 'others']);

export async function logout(call: AuthCall): Promise<AuthAnswer> {
  const scope = call.query.get('scope') ?? 'global';
  if (!SCOPES.has(scope as LogoutScope)) throw AuthError.validation(`Unsupported logout scope "${scope}"`);
  const { user, sessionId } = await requireUser(call);
  await inTransaction(call.pool, async (db) => {
    await endSessions(db, user.id, sessionId, scope as LogoutScope);
    await audit(db, actorOf(user), 'logout', call, { scope });
  });
  return { status: 204 };
}
