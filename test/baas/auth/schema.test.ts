/** Tenant migrations 12-15: the `auth` schema with Supabase's columns, its grants, and auth.email(). */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateTenantDatabase } from '../../../src/tenants/migrate.js';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.js';
import { DUMP_EMAIL, DUMP_USER_ID, SUPABASE_AUTH_DUMP } from './supabase-dump.js';

let db: TestDatabase;
let pool: pg.Pool;
beforeAll(async () => {
  db = await createTestDatabase('authschema');
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  await migrateTenantDatabase(pool);
}, 60_000);
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

async function columns(table: string): Promise<Record<string, string>> {
  const { rows } = await pool.query<{ column_name: string; type: string }>(
    `SELECT column_name, format_type(a.atttypid, a.atttypmod) AS type
       FROM information_schema.columns c JOIN pg_attribute a ON a.attrelid = format('auth.%I', c.table_name)::regclass AND a.attname = c.column_name
      WHERE table_schema = 'auth' AND table_name = $1`,
    [table],
  );
  return Object.fromEntries(rows.map((r) => [r.column_name, r.type]));
}

/** Runs `sql` as `role` with `claims` set as PostgREST sets them; rolled back. */
async function asRole<T extends pg.QueryResultRow>(role: string, claims: object, sql: string): Promise<T[]> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true)`, [role, JSON.stringify(claims)]);
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

describe('auth.users', () => {
  it('has the columns and types of a Supabase project', async () => {
    expect(await columns('users')).toMatchObject({
      instance_id: 'uuid', id: 'uuid', aud: 'character varying(255)', role: 'character varying(255)',
      email: 'character varying(255)', encrypted_password: 'character varying(255)', email_confirmed_at: 'timestamp with time zone',
      invited_at: 'timestamp with time zone', confirmation_token: 'character varying(255)', recovery_token: 'character varying(255)',
      email_change_token_new: 'character varying(255)', email_change: 'character varying(255)', raw_app_meta_data: 'jsonb',
      raw_user_meta_data: 'jsonb', is_super_admin: 'boolean', phone: 'text', phone_change: 'text',
      phone_change_token: 'character varying(255)', confirmed_at: 'timestamp with time zone',
      email_change_token_current: 'character varying(255)', email_change_confirm_status: 'smallint',
      banned_until: 'timestamp with time zone', reauthentication_token: 'character varying(255)', is_sso_user: 'boolean',
      deleted_at: 'timestamp with time zone', is_anonymous: 'boolean',
    });
    const { rows } = await pool.query(`SELECT indexname FROM pg_indexes WHERE schemaname = 'auth' AND tablename = 'users' ORDER BY 1`);
    expect(rows.map((r) => r.indexname)).toEqual(expect.arrayContaining([
      'users_pkey', 'users_email_partial_key', 'users_instance_id_email_idx', 'users_instance_id_idx', 'users_is_anonymous_idx',
      'confirmation_token_idx', 'recovery_token_idx', 'email_change_token_current_idx', 'email_change_token_new_idx',
      'reauthentication_token_idx', 'users_phone_key',
    ]));
  });

  it('confirmed_at is generated; e-mails unique except for SSO users; numeric OTP tokens may repeat', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`INSERT INTO auth.users (id, email, email_confirmed_at, confirmation_token) VALUES (gen_random_uuid(), 'x@y.z', '2024-01-02', '123456'), (gen_random_uuid(), 'x2@y.z', null, '123456')`);
      const { rows } = await client.query(`SELECT confirmed_at FROM auth.users WHERE email = 'x@y.z'`);
      expect(rows[0].confirmed_at).toEqual(new Date('2024-01-02'));
      await client.query(`INSERT INTO auth.users (id, email, is_sso_user) VALUES (gen_random_uuid(), 'x@y.z', true)`);
      await expect(client.query(`INSERT INTO auth.users (id, email) VALUES (gen_random_uuid(), 'x@y.z')`)).rejects.toMatchObject({ code: '23505' });
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('apps reference it by foreign key; the API roles cannot read it', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`CREATE TABLE public.profiles (id uuid PRIMARY KEY REFERENCES auth.users ON DELETE CASCADE, name text)`);
      const { rows } = await client.query(`INSERT INTO auth.users (id, email) VALUES (gen_random_uuid(), 'p@q.r') RETURNING id`);
      await client.query(`INSERT INTO public.profiles VALUES ($1, 'p')`, [rows[0].id]);
      await client.query('SAVEPOINT s');
      await expect(client.query(`INSERT INTO public.profiles VALUES (gen_random_uuid(), 'nobody')`)).rejects.toMatchObject({ code: '23503' });
      await client.query('ROLLBACK TO SAVEPOINT s');
      // As a signed-in user (who cannot read auth.users): the FK check runs as the owner.
      const { rows: second } = await client.query(`INSERT INTO auth.users (id, email) VALUES (gen_random_uuid(), 'p2@q.r') RETURNING id`);
      await client.query(`GRANT ALL ON public.profiles TO authenticated; SET LOCAL ROLE authenticated`);
      await client.query(`INSERT INTO public.profiles VALUES ($1, 'p2')`, [second[0].id]);
      await expect(client.query(`INSERT INTO public.profiles VALUES (gen_random_uuid(), 'nobody')`)).rejects.toMatchObject({ code: '23503' });
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    for (const role of ['anon', 'authenticated']) {
      await expect(asRole(role, {}, 'SELECT id FROM auth.users')).rejects.toMatchObject({ code: '42501' });
    }
  });

  it('auth.email() reads the email claim, auth.uid() and auth.jwt() keep working', async () => {
    const claims = { sub: '00000000-0000-0000-0000-00000000000e', email: 'e@mail.test', role: 'authenticated' };
    const [row] = await asRole<{ email: string; uid: string; jwt: unknown }>('authenticated', claims, 'SELECT auth.email() AS email, auth.uid() AS uid, auth.jwt() AS jwt');
    expect(row).toEqual({ email: 'e@mail.test', uid: claims.sub, jwt: claims });
    const [none] = await asRole<{ email: string | null }>('anon', {}, 'SELECT auth.email() AS email');
    expect(none.email).toBeNull();
  });
});

describe('migrating a database that already has a Supabase auth schema', () => {
  it('keeps existing tables and helper functions as they are', async () => {
    const other = await createTestDatabase('authexisting');
    const p = new pg.Pool({ connectionString: other.url, max: 2 });
    try {
      await p.query(`CREATE SCHEMA auth; CREATE TABLE auth.users (id uuid PRIMARY KEY, email varchar(255), marker text);
        CREATE FUNCTION auth.email() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'kept'::text $$;`);
      await migrateTenantDatabase(p);
      const { rows } = await p.query(`SELECT auth.email() AS email, to_regclass('auth.users') IS NOT NULL AS t,
        EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'auth' AND table_name = 'users' AND column_name = 'marker') AS marker`);
      expect(rows[0]).toEqual({ email: 'kept', t: true, marker: true });
    } finally {
      await p.end();
      await other.drop();
    }
  });
});

describe('auth tables of migrations 13-14', () => {
  it('have the columns and types of a Supabase project', async () => {
    expect(await columns('identities')).toMatchObject({ provider_id: 'text', user_id: 'uuid', identity_data: 'jsonb', provider: 'text', email: 'text', id: 'uuid' });
    expect(await columns('sessions')).toMatchObject({ id: 'uuid', user_id: 'uuid', factor_id: 'uuid', aal: 'auth.aal_level', not_after: 'timestamp with time zone', refreshed_at: 'timestamp without time zone', ip: 'inet', tag: 'text', refresh_token_counter: 'bigint' });
    expect(await columns('refresh_tokens')).toMatchObject({ id: 'bigint', token: 'character varying(255)', user_id: 'character varying(255)', revoked: 'boolean', parent: 'character varying(255)', session_id: 'uuid' });
    expect(await columns('audit_log_entries')).toMatchObject({ instance_id: 'uuid', id: 'uuid', payload: 'json', ip_address: 'character varying(64)' });
    expect(await columns('mfa_factors')).toMatchObject({ factor_type: 'auth.factor_type', status: 'auth.factor_status', secret: 'text', last_challenged_at: 'timestamp with time zone' });
    expect(await columns('mfa_challenges')).toMatchObject({ factor_id: 'uuid', ip_address: 'inet', otp_code: 'text', verified_at: 'timestamp with time zone' });
    expect(await columns('mfa_amr_claims')).toMatchObject({ session_id: 'uuid', authentication_method: 'text', id: 'uuid' });
    expect(await columns('one_time_tokens')).toMatchObject({ token_type: 'auth.one_time_token_type', token_hash: 'text', relates_to: 'text', created_at: 'timestamp without time zone' });
    expect(await columns('schema_migrations')).toEqual({ version: 'character varying(255)' });
    for (const role of ['anon', 'authenticated']) {
      for (const table of ['sessions', 'refresh_tokens', 'identities', 'audit_log_entries', 'mfa_factors', 'one_time_tokens']) {
        await expect(asRole(role, {}, `SELECT 1 FROM auth.${table}`), `${role} on ${table}`).rejects.toMatchObject({ code: '42501' });
      }
    }
  });

  it('a data-only dump of a Supabase auth schema restores, and deleting the user cascades', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(SUPABASE_AUTH_DUMP);
      const { rows } = await client.query(`SELECT u.email, u.confirmed_at IS NOT NULL AS confirmed, i.email AS identity_email, s.aal, r.token
        FROM auth.users u JOIN auth.identities i ON i.user_id = u.id JOIN auth.sessions s ON s.user_id = u.id JOIN auth.refresh_tokens r ON r.session_id = s.id`);
      expect(rows).toEqual([{ email: DUMP_EMAIL, confirmed: true, identity_email: DUMP_EMAIL, aal: 'aal1', token: 'dumpedrefreshtk1' }]);
      await client.query(`DELETE FROM auth.users WHERE id = $1`, [DUMP_USER_ID]);
      const left = await client.query(`SELECT (SELECT count(*) FROM auth.sessions) + (SELECT count(*) FROM auth.refresh_tokens) + (SELECT count(*) FROM auth.identities) + (SELECT count(*) FROM auth.one_time_tokens) + (SELECT count(*) FROM auth.mfa_amr_claims) AS n`);
      expect(Number(left.rows[0].n)).toBe(0);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});
