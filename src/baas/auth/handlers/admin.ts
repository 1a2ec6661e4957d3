/**
 * The admin API (internal/api/admin.go, audit.go): users listed, created, read, updated and deleted, and the audit
 * trail, for tokens with an admin role only (service_role); anyone else gets 403 not_admin.
 */
import type pg from 'pg';
import { ADMIN_ACTOR, audit, listAudit } from '../audit.js';
import { boolField, field, inTransaction, isUuid, objectField, requireAdmin, type AuthAnswer, type AuthCall } from '../call.js';
import { AuthError } from '../errors.js';
import { hashPassword } from '../passwords.js';
import { findUserByEmail, findUserById, insertUser, updateUser, userJson, validEmail, type UpdatableColumn, type UserRow } from '../users.js';
import { mergeMetadata } from './user.js';
import { checkPassword } from './signup-token.js';

const MAX_PER_PAGE = 1000;

/** page and per_page of a listing (GoTrue's defaults 1 and 50). */
export function pagination(call: AuthCall): { page: number; perPage: number } {
  const number = (name: string, fallback: number): number => {
    const raw = call.query.get(name);
    if (raw === null || raw === '') return fallback;
    if (!/^\d{1,9}$/.test(raw)) throw AuthError.badRequest('validation_failed', `Bad Pagination Parameters: ${name} must be a positive integer`);
    return Number(raw);
  };
  const page = Math.max(1, number('page', 1));
  const perPage = Math.min(MAX_PER_PAGE, Math.max(1, number('per_page', 50)));
  return { page, perPage };
}

/** X-Total-Count and a Link header whose URLs start with `page=` (supabase-js reads the page number from there). */
export function paginationHeaders(path: string, page: number, perPage: number, total: number): [string, string][] {
  const last = Math.max(1, Math.ceil(total / perPage));
  const links: string[] = [];
  if (page < last) links.push(`</auth/v1${path}?page=${page + 1}&per_page=${perPage}>; rel="next"`);
  links.push(`</auth/v1${path}?page=${last}&per_page=${perPage}>; rel="last"`);
  return [['x-total-count', String(total)], ['link', links.join(', ')]];
}

export async function listUsers(call: AuthCall): Promise<AuthAnswer> {
  await requireAdmin(call);
  const { page, perPage } = pagination(call);
  const { rows } = await call.pool.query<{ id: string; total: string }>(
    `SELECT id, count(*) OVER () AS total FROM auth.users WHERE aud = 'authenticated' ORDER BY created_at DESC, id LIMIT $1 OFFSET $2`,
    [perPage, (page - 1) * perPage],
  );
  const total = rows.length > 0 ? Number(rows[0].total) : Number((await call.pool.query<{ n: string }>(`SELECT count(*) AS n FROM auth.users WHERE aud = 'authenticated'`)).rows[0].n);
  const users = [];
  for (const { id } of rows) {
    const user = await findUserById(call.pool, id);
    if (user) users.push(await userJson(call.pool, user));
  }
  return { status: 200, body: { users, aud: 'authenticated' }, headers: paginationHeaders('/admin/users', page, perPage, total) };
}

/** A ban duration as GoTrue takes it: "none" lifts a ban, else a Go duration ("24h", "1h30m", "90s"). */
export function banUntil(duration: string, now = Date.now()): Date | null {
  if (duration === 'none') return null;
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, 'µs': 0.001, ns: 0.000001 };
  const parts = [...duration.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== duration) throw AuthError.validation('invalid format for ban duration: time: invalid duration');
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]], 0);
  return new Date(now + ms);
}

async function adminPasswordHash(call: AuthCall): Promise<string | undefined> {
  const password = field(call, 'password');
  const given = field(call, 'password_hash');
  if (password !== undefined && given !== undefined) throw AuthError.validation('Only a password or a password hash should be provided');
  if (given !== undefined) {
    // An exported Supabase user's bcrypt hash, kept as it is so the user signs in with the same password.
    if (!/^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(given)) throw AuthError.validation('Invalid password hash format');
    return given;
  }
  if (password === undefined) return undefined;
  checkPassword(call, password);
  return hashPassword(password);
}

export async function createUser(call: AuthCall): Promise<AuthAnswer> {
  await requireAdmin(call);
  const email = field(call, 'email')?.toLowerCase();
  const phone = field(call, 'phone');
  const id = field(call, 'id');
  if (phone) throw AuthError.unprocessable('phone_provider_disabled', 'Phone logins are disabled');
  if (email !== undefined && !validEmail(email)) throw AuthError.validation('Unable to validate email address: invalid format');
  if (id !== undefined && !isUuid(id)) throw AuthError.validation('user_id must be an UUID');
  const passwordHash = await adminPasswordHash(call);
  const ban = field(call, 'ban_duration');
  const bannedUntil = ban === undefined ? null : banUntil(ban);
  return inTransaction(call.pool, async (db) => {
    if (email !== undefined && (await findUserByEmail(db, email))) {
      throw AuthError.unprocessable('email_exists', 'A user with this email address has already been registered');
    }
    if (id !== undefined && (await findUserById(db, id))) throw AuthError.unprocessable('user_already_exists', 'User already exists');
    const user = await insertUser(db, {
      id, email: email ?? null, passwordHash: passwordHash ?? null, userMetadata: objectField(call, 'user_metadata') ?? {},
      appMetadata: objectField(call, 'app_metadata') ?? {}, role: field(call, 'role'), emailConfirmed: boolField(call, 'email_confirm') ?? false,
      isAnonymous: false, bannedUntil,
    });
    await audit(db, ADMIN_ACTOR, 'user_signedup', call, { user_id: user.id, user_email: user.email ?? '', user_phone: user.phone ?? '' });
    return { status: 200, body: await userJson(db, user) };
  });
}

async function targetUser(call: AuthCall, db: Pick<pg.ClientBase, 'query'>, forUpdate = false): Promise<UserRow> {
  const id = call.params.id;
  if (!isUuid(id)) throw AuthError.notFound('user_not_found', 'User not found');
  const user = await findUserById(db, id, forUpdate);
  if (!user) throw AuthError.notFound('user_not_found', 'User not found');
  return user;
}

export async function getUserById(call: AuthCall): Promise<AuthAnswer> {
  await requireAdmin(call);
  const user = await targetUser(call, call.pool);
  return { status: 200, body: await userJson(call.pool, user) };
}

export async function updateUserById(call: AuthCall): Promise<AuthAnswer> {
  await requireAdmin(call);
  const email = field(call, 'email')?.toLowerCase();
  if (email !== undefined && !validEmail(email)) throw AuthError.validation('Unable to validate email address: invalid format');
  if (field(call, 'phone')) throw AuthError.unprocessable('phone_provider_disabled', 'Phone logins are disabled');
  const passwordHash = await adminPasswordHash(call);
  const ban = field(call, 'ban_duration');
  const userMetadata = objectField(call, 'user_metadata');
  const appMetadata = objectField(call, 'app_metadata');
  const emailConfirm = boolField(call, 'email_confirm');
  const role = field(call, 'role');
  return inTransaction(call.pool, async (db) => {
    const user = await targetUser(call, db, true);
    const changes: Partial<Record<UpdatableColumn, unknown>> = {};
    if (email !== undefined && email !== user.email) {
      const taken = await findUserByEmail(db, email);
      if (taken && taken.id !== user.id) throw AuthError.unprocessable('email_exists', 'A user with this email address has already been registered');
      changes.email = email;
    }
    if (passwordHash !== undefined) changes.encrypted_password = passwordHash;
    if (userMetadata !== undefined) changes.raw_user_meta_data = mergeMetadata(user.raw_user_meta_data, userMetadata);
    if (appMetadata !== undefined) changes.raw_app_meta_data = mergeMetadata(user.raw_app_meta_data, appMetadata);
    if (emailConfirm !== undefined) changes.email_confirmed_at = emailConfirm ? (user.email_confirmed_at ?? new Date()) : null;
    if (role !== undefined) changes.role = role;
    if (ban !== undefined) changes.banned_until = banUntil(ban);
    let updated = await updateUser(db, user.id, changes);
    if (changes.email !== undefined) {
      await db.query(`UPDATE auth.identities SET identity_data = identity_data || jsonb_build_object('email', $2::text), updated_at = now() WHERE user_id = $1 AND provider = 'email'`, [user.id, email]);
      updated = (await findUserById(db, user.id)) ?? updated;
    }
    // A banned user's sessions end now rather than at their next refresh.
    if (changes.banned_until instanceof Date) await db.query(`DELETE FROM auth.sessions WHERE user_id = $1`, [user.id]);
    await audit(db, ADMIN_ACTOR, 'user_modified', call, { user_id: user.id, user_email: updated.email ?? '', user_phone: updated.phone ?? '' });
    return { status: 200, body: await userJson(db, updated) };
  });
}

export async function deleteUser(call: AuthCall): Promise<AuthAnswer> {
  await requireAdmin(call);
  const soft = boolField(call, 'should_soft_delete') ?? false;
  return inTransaction(call.pool, async (db) => {
    const user = await targetUser(call, db, true);
    if (soft) {
      // As upstream: the row stays (foreign keys keep pointing at it), the person's identifiers do not.
      await db.query(
        `UPDATE auth.users SET deleted_at = now(), email = NULL, phone = NULL, encrypted_password = '', raw_user_meta_data = '{}',
                confirmation_token = '', recovery_token = '', email_change_token_new = '', email_change = '', updated_at = now()
          WHERE id = $1`,
        [user.id],
      );
      await db.query(`DELETE FROM auth.identities WHERE user_id = $1`, [user.id]);
      await db.query(`DELETE FROM auth.sessions WHERE user_id = $1`, [user.id]);
      await db.query(`DELETE FROM auth.mfa_factors WHERE user_id = $1`, [user.id]);
    } else {
      await db.query('SAVEPOINT delete_user');
      try {
        await db.query(`DELETE FROM auth.users WHERE id = $1`, [user.id]);
      } catch (err) {
        // An app table still references the user without ON DELETE CASCADE: a conflict, not a server failure.
        if ((err as { code?: string }).code !== '23503') throw err;
        throw new AuthError(409, 'conflict', 'Database error deleting user: rows of other tables still reference it');
      }
    }
    await audit(db, ADMIN_ACTOR, 'user_deleted', call, { user_id: user.id, user_email: user.email ?? '', user_phone: user.phone ?? '' });
    return { status: 200, body: {} };
  });
}

export async function auditLog(call: AuthCall): Promise<AuthAnswer> {
  await requireAdmin(call);
  const { page, perPage } = pagination(call);
  const query = call.query.get('query');
  const { entries, total } = await listAudit(call.pool, page, perPage, query === null || query === '' ? null : query.slice(0, 200));
  return { status: 200, body: entries, headers: paginationHeaders('/admin/audit', page, perPage, total) };
}
