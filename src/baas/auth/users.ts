/**
 * Users and identities in `auth.users` / `auth.identities` (Supabase's columns), and the user object GoTrue answers
 * with (internal/models/user.go: null times omitted, `email`/`phone` as "" when null, identities and factors nested).
 * Every value reaches SQL as a parameter.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface UserRow {
  id: string;
  aud: string | null;
  role: string | null;
  email: string | null;
  encrypted_password: string | null;
  email_confirmed_at: Date | null;
  invited_at: Date | null;
  phone: string | null;
  phone_confirmed_at: Date | null;
  confirmation_sent_at: Date | null;
  confirmed_at: Date | null;
  recovery_sent_at: Date | null;
  email_change: string | null;
  email_change_sent_at: Date | null;
  phone_change: string | null;
  phone_change_sent_at: Date | null;
  reauthentication_sent_at: Date | null;
  last_sign_in_at: Date | null;
  raw_app_meta_data: Record<string, unknown> | null;
  raw_user_meta_data: Record<string, unknown> | null;
  created_at: Date | null;
  updated_at: Date | null;
  banned_until: Date | null;
  deleted_at: Date | null;
  is_anonymous: boolean;
  is_sso_user: boolean;
}

export const USER_COLUMNS = `id, aud, role, email, encrypted_password, email_confirmed_at, invited_at, phone, phone_confirmed_at,
  confirmation_sent_at, confirmed_at, recovery_sent_at, email_change, email_change_sent_at, phone_change, phone_change_sent_at,
  reauthentication_sent_at, last_sign_in_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at, banned_until,
  deleted_at, is_anonymous, is_sso_user`;

export const AUDIENCE = 'authenticated';

export async function findUserById(db: Queryable, id: string, forUpdate = false): Promise<UserRow | null> {
  const { rows } = await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM auth.users WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] ?? null;
}

/** The account of an e-mail address, as GoTrue looks it up: case-insensitive, SSO accounts aside. */
export async function findUserByEmail(db: Queryable, email: string): Promise<UserRow | null> {
  const { rows } = await db.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM auth.users WHERE lower(email) = lower($1) AND aud = $2 AND is_sso_user = false LIMIT 1`,
    [email, AUDIENCE],
  );
  return rows[0] ?? null;
}

export interface NewUser {
  id?: string;
  email: string | null;
  phone?: string | null;
  passwordHash: string | null;
  userMetadata: Record<string, unknown>;
  appMetadata: Record<string, unknown>;
  role?: string;
  emailConfirmed: boolean;
  phoneConfirmed?: boolean;
  isAnonymous: boolean;
  bannedUntil?: Date | null;
}

/** Inserts a user and, when it has an e-mail, its `email` identity (provider_id = the user id, as upstream). */
export async function insertUser(db: Queryable, user: NewUser): Promise<UserRow> {
  const id = user.id ?? randomUUID();
  const provider = user.email !== null ? 'email' : user.phone ? 'phone' : null;
  const appMetadata = provider === null ? { ...user.appMetadata } : { provider, providers: [provider], ...user.appMetadata };
  const userMetadata = provider === null ? user.userMetadata : { ...user.userMetadata };
  const { rows } = await db.query<UserRow>(
    `INSERT INTO auth.users (instance_id, id, aud, role, email, phone, encrypted_password, email_confirmed_at, phone_confirmed_at,
        raw_app_meta_data, raw_user_meta_data, is_anonymous, banned_until, created_at, updated_at,
        confirmation_token, recovery_token, email_change_token_new, email_change)
     VALUES ('00000000-0000-0000-0000-000000000000', $1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END, CASE WHEN $8 THEN now() END,
        $9, $10, $11, $12, now(), now(), '', '', '', '')
     RETURNING ${USER_COLUMNS}`,
    [id, AUDIENCE, user.role ?? 'authenticated', user.email, user.phone ?? null, user.passwordHash ?? '', user.emailConfirmed,
      user.phoneConfirmed ?? false, appMetadata, userMetadata, user.isAnonymous, user.bannedUntil ?? null],
  );
  if (user.email !== null) {
    const identityData = { sub: id, email: user.email, email_verified: user.emailConfirmed, phone_verified: false };
    await db.query(
      `INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
       VALUES ($1::text, $1::uuid, $2, 'email', now(), now(), now())`,
      [id, identityData],
    );
  }
  return rows[0];
}

/** Sets the given columns (names from this module only, values as parameters); returns the updated row. */
export async function updateUser(db: Queryable, id: string, changes: Partial<Record<UpdatableColumn, unknown>>): Promise<UserRow> {
  const entries = Object.entries(changes).filter(([, v]) => v !== undefined);
  const sets = entries.map(([column], i) => `${column} = $${i + 2}`);
  const { rows } = await db.query<UserRow>(
    `UPDATE auth.users SET ${[...sets, 'updated_at = now()'].join(', ')} WHERE id = $1 RETURNING ${USER_COLUMNS}`,
    [id, ...entries.map(([, v]) => v)],
  );
  return rows[0];
}

/** Columns updateUser may set (timestamps as Date or null). */
export type UpdatableColumn =
  | 'email' | 'phone' | 'encrypted_password' | 'raw_user_meta_data' | 'raw_app_meta_data' | 'role' | 'banned_until'
  | 'email_confirmed_at' | 'last_sign_in_at' | 'confirmation_sent_at' | 'recovery_sent_at' | 'is_anonymous' | 'deleted_at'
  | 'email_change' | 'email_change_token_new';

interface IdentityRow {
  id: string;
  provider_id: string;
  user_id: string;
  identity_data: Record<string, unknown> | null;
  provider: string;
  last_sign_in_at: Date | null;
  created_at: Date | null;
  updated_at: Date | null;
  email: string | null;
}

interface FactorRow {
  id: string;
  friendly_name: string | null;
  factor_type: string;
  status: string;
  created_at: Date;
  updated_at: Date;
  phone: string | null;
  last_challenged_at: Date | null;
}

/** The user object of the API for a row, with its identities and factors read alongside. */
export async function userJson(db: Queryable, user: UserRow): Promise<Record<string, unknown>> {
  const [identities, factors] = await Promise.all([
    db.query<IdentityRow>(
      `SELECT id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, email
         FROM auth.identities WHERE user_id = $1 ORDER BY created_at, id`,
      [user.id],
    ),
    db.query<FactorRow>(
      `SELECT id, friendly_name, factor_type::text AS factor_type, status::text AS status, created_at, updated_at, phone, last_challenged_at
         FROM auth.mfa_factors WHERE user_id = $1 ORDER BY created_at, id`,
      [user.id],
    ),
  ]);
  return renderUser(user, identities.rows, factors.rows);
}

export function renderUser(user: UserRow, identities: IdentityRow[], factors: FactorRow[]): Record<string, unknown> {
  const out: Record<string, unknown> = { id: user.id, aud: user.aud ?? '', role: user.role ?? '', email: user.email ?? '' };
  time(out, 'email_confirmed_at', user.email_confirmed_at);
  time(out, 'invited_at', user.invited_at);
  out.phone = user.phone ?? '';
  time(out, 'phone_confirmed_at', user.phone_confirmed_at);
  time(out, 'confirmation_sent_at', user.confirmation_sent_at);
  time(out, 'confirmed_at', user.confirmed_at);
  time(out, 'recovery_sent_at', user.recovery_sent_at);
  if (user.email_change) out.new_email = user.email_change;
  time(out, 'email_change_sent_at', user.email_change_sent_at);
  if (user.phone_change) out.new_phone = user.phone_change;
  time(out, 'phone_change_sent_at', user.phone_change_sent_at);
  time(out, 'reauthentication_sent_at', user.reauthentication_sent_at);
  time(out, 'last_sign_in_at', user.last_sign_in_at);
  out.app_metadata = user.raw_app_meta_data ?? {};
  out.user_metadata = user.raw_user_meta_data ?? {};
  if (factors.length > 0) {
    out.factors = factors.map((f) => ({
      id: f.id, created_at: iso(f.created_at), updated_at: iso(f.updated_at), status: f.status,
      ...(f.friendly_name ? { friendly_name: f.friendly_name } : {}), factor_type: f.factor_type, phone: f.phone ?? '',
      last_challenged_at: f.last_challenged_at === null ? null : iso(f.last_challenged_at),
    }));
  }
  out.identities = identities.map((i) => {
    const identity: Record<string, unknown> = { identity_id: i.id, id: i.provider_id, user_id: i.user_id };
    if (i.identity_data) identity.identity_data = i.identity_data;
    identity.provider = i.provider;
    time(identity, 'last_sign_in_at', i.last_sign_in_at);
    identity.created_at = iso(i.created_at);
    identity.updated_at = iso(i.updated_at);
    if (i.email) identity.email = i.email;
    return identity;
  });
  out.created_at = iso(user.created_at);
  out.updated_at = iso(user.updated_at);
  time(out, 'banned_until', user.banned_until);
  time(out, 'deleted_at', user.deleted_at);
  out.is_anonymous = user.is_anonymous;
  return out;
}

function time(out: Record<string, unknown>, key: string, value: Date | null): void {
  if (value !== null) out[key] = iso(value);
}

/** Go's zero time for a NULL that upstream types as a plain time.Time. */
function iso(value: Date | null): string {
  return value === null ? '0001-01-01T00:00:00Z' : value.toISOString();
}

export function isBanned(user: UserRow, now = Date.now()): boolean {
  return user.banned_until !== null && user.banned_until.getTime() > now;
}

/** GoTrue's e-mail check: something@something, bounded like the column. */
export function validEmail(email: string): boolean {
  return email.length <= 255 && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email);
}
