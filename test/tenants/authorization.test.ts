import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRead, checkWrite, joinRefusal, restRefusal, type ReadCheck } from '../../src/tenants/authorization.js';
import { migrateTenantDatabase } from '../../src/tenants/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

let db: TestDatabase;
let pool: pg.Pool;
const userId = randomUUID();

const authed = (topic: string, extra: Partial<ReadCheck> = {}): ReadCheck => ({
  topic,
  claims: { role: 'authenticated', sub: userId, exp: 2_000_000_000 },
  ...extra,
});

beforeAll(async () => {
  db = await createTestDatabase('authz');
  pool = new pg.Pool({ connectionString: db.url, max: 10 });
  await migrateTenantDatabase(pool);
  await pool.query(`
    CREATE FUNCTION public.explode() RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'policy exploded'; END $$;

    CREATE POLICY room1_read ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() = 'room:1' AND extension IN ('broadcast', 'presence'));
    CREATE POLICY room1_write ON realtime.messages FOR INSERT TO authenticated
      WITH CHECK (realtime.topic() = 'room:1' AND extension = 'broadcast');
    CREATE POLICY own_read ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() = 'user:' || auth.uid()::text);
    CREATE POLICY readonly_read ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() = 'readonly');
    CREATE POLICY presence_only ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() = 'lobby' AND extension = 'presence');
    CREATE POLICY header_read ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() = 'vip'
             AND current_setting('request.headers', true)::jsonb ->> 'x-pass' = 'letmein'
             AND auth.role() = 'authenticated'
             AND current_user = 'authenticated');
    CREATE POLICY raising ON realtime.messages FOR SELECT TO authenticated
      USING (CASE WHEN realtime.topic() = 'boom' THEN public.explode() ELSE false END);
    CREATE POLICY raising_write ON realtime.messages FOR INSERT TO authenticated
      WITH CHECK (CASE WHEN realtime.topic() = 'boom' THEN public.explode() ELSE false END);
    CREATE POLICY slow ON realtime.messages FOR SELECT TO authenticated
      USING (CASE WHEN realtime.topic() = 'slow' THEN pg_sleep(1) IS NOT NULL ELSE false END);
  `);
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('read authorization', () => {
  it('grants by role and realtime.topic()', async () => {
    expect(await checkRead(pool, authed('room:1', { extensions: ['broadcast', 'presence'] }))).toEqual({ ok: true, broadcast: true, presence: true });
    expect(await checkRead(pool, authed('room:2', { extensions: ['broadcast', 'presence'] }))).toEqual({ ok: true, broadcast: false, presence: false });
    // Extensions not asked about are false.
    expect(await checkRead(pool, authed('room:1'))).toEqual({ ok: true, broadcast: true, presence: false });
    // anon has no policy; service_role bypasses RLS.
    expect(await checkRead(pool, { topic: 'room:1', claims: { role: 'anon' } })).toEqual({ ok: true, broadcast: false, presence: false });
    expect(await checkRead(pool, { topic: 'anything', claims: { role: 'service_role' } })).toEqual({ ok: true, broadcast: true, presence: false });
  });

  it('grants by auth.uid() from the sub claim', async () => {
    expect(await checkRead(pool, authed(`user:${userId}`))).toMatchObject({ ok: true, broadcast: true });
    expect(await checkRead(pool, authed(`user:${randomUUID()}`))).toMatchObject({ ok: true, broadcast: false });
  });

  it('checks presence separately', async () => {
    expect(await checkRead(pool, authed('lobby', { extensions: ['broadcast', 'presence'] }))).toEqual({ ok: true, broadcast: false, presence: true });
  });

  it('exposes headers through request.headers and runs as the role', async () => {
    expect(await checkRead(pool, authed('vip', { headers: { 'x-pass': 'letmein' } }))).toMatchObject({ broadcast: true });
    expect(await checkRead(pool, authed('vip', { headers: { 'x-pass': 'nope' } }))).toMatchObject({ broadcast: false });
    expect(await checkRead(pool, authed('vip'))).toMatchObject({ broadcast: false });
  });

  it('treats a raising policy as an RlsPolicyError that joins report as unauthorized', async () => {
    const result = await checkRead(pool, authed('boom'));
    expect(result).toMatchObject({ ok: false, failure: { code: 'RlsPolicyError' } });
    if (result.ok) throw new Error('unreachable');
    expect(result.failure.message).toContain('policy exploded');
    expect(joinRefusal(result.failure, 'boom')).toBe('Unauthorized: You do not have permissions to read from this Channel topic: boom');
  });

  it('reports a statement timeout as QueryCanceled with the postgres message', async () => {
    const result = await checkRead(pool, authed('slow'), { statementTimeoutMs: 100 });
    expect(result).toMatchObject({ ok: false, failure: { code: 'QueryCanceled' } });
    if (result.ok) throw new Error('unreachable');
    expect(joinRefusal(result.failure, 'slow')).toBe('QueryCanceled: canceling statement due to statement timeout');
  });

  it('refuses roles that do not exist or cannot be assumed, without SQL injection', async () => {
    for (const role of ['nobody', 'authenticated"; DROP TABLE realtime.messages; --', '', 'pg_read_server_files"']) {
      expect(await checkRead(pool, { topic: 'room:1', claims: { role } })).toEqual({ ok: true, broadcast: false, presence: false });
    }
    expect(await checkRead(pool, { topic: "room:1'; --", claims: { role: 'authenticated' } })).toMatchObject({ ok: true, broadcast: false });
    // The sub arrives as data: auth.uid() in a policy fails to cast it, which is a policy error, not injection.
    const odd = await checkRead(pool, { topic: 'user:x', claims: { role: 'authenticated', sub: "x'); DROP TABLE realtime.messages; --" } });
    expect(odd).toMatchObject({ ok: false, failure: { code: 'RlsPolicyError', message: expect.stringContaining('uuid') } });
    const left = await pool.query('SELECT count(*)::int AS n FROM realtime.messages');
    expect(left.rows[0].n).toBe(0);
  });

  it('leaves no rows and no settings behind', async () => {
    await checkRead(pool, authed('room:1', { extensions: ['broadcast', 'presence'] }));
    await checkWrite(pool, { ...authed('room:1'), extension: 'broadcast' });
    expect((await pool.query('SELECT count(*)::int AS n FROM realtime.messages')).rows[0].n).toBe(0);
    const settings = await pool.query(`SELECT current_user AS u, coalesce(current_setting('realtime.topic', true), '') AS t`);
    expect(settings.rows[0]).toEqual({ u: expect.not.stringMatching(/^authenticated$/), t: '' });
  });
});

describe('write authorization', () => {
  it('allows inserts that pass WITH CHECK and denies the rest', async () => {
    expect(await checkWrite(pool, { ...authed('room:1'), extension: 'broadcast' })).toEqual({ ok: true, allowed: true });
    expect(await checkWrite(pool, { ...authed('room:1'), extension: 'presence' })).toEqual({ ok: true, allowed: false });
    expect(await checkWrite(pool, { ...authed('room:2'), extension: 'broadcast' })).toEqual({ ok: true, allowed: false });
    expect(await checkWrite(pool, { topic: 'room:1', claims: { role: 'anon' }, extension: 'broadcast' })).toEqual({ ok: true, allowed: false });
    expect(await checkWrite(pool, { topic: 'x', claims: { role: 'service_role' }, extension: 'broadcast' })).toEqual({ ok: true, allowed: true });
  });

  it('read-only policies give read but not write', async () => {
    expect(await checkRead(pool, authed('readonly'))).toMatchObject({ ok: true, broadcast: true });
    expect(await checkWrite(pool, { ...authed('readonly'), extension: 'broadcast' })).toEqual({ ok: true, allowed: false });
  });

  it('maps a raising write policy to a REST 422', async () => {
    const result = await checkWrite(pool, { ...authed('boom'), extension: 'broadcast' });
    expect(result).toMatchObject({ ok: false, failure: { code: 'RlsPolicyError' } });
    if (result.ok) throw new Error('unreachable');
    expect(restRefusal(result.failure)).toEqual({ status: 422, message: 'RLS policy error' });
  });
});

describe('failures and load', () => {
  it('runs 500 concurrent checks on a pool of 10 without errors', async () => {
    const busy = new pg.Pool({ connectionString: db.url, max: 10, connectionTimeoutMillis: 30_000 });
    try {
      const started = Date.now();
      const results = await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          i % 2 === 0 ? checkRead(busy, authed('room:1', { extensions: ['broadcast', 'presence'] })) : checkWrite(busy, { ...authed('room:1'), extension: 'broadcast' }),
        ),
      );
      expect(results.filter((r) => !r.ok)).toEqual([]);
      expect(results.every((r) => r.ok && ('allowed' in r ? r.allowed : r.broadcast && r.presence))).toBe(true);
      expect(busy.totalCount).toBeLessThanOrEqual(10);
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await busy.end();
    }
  });

  it('reports pool exhaustion as IncreaseConnectionPool and then short-circuits', async () => {
    const tiny = new pg.Pool({ connectionString: db.url, max: 2, connectionTimeoutMillis: 100 });
    const held = [await tiny.connect(), await tiny.connect()];
    try {
      for (let i = 0; i < 2; i++) {
        const result = await checkRead(tiny, authed('room:1'));
        expect(result).toMatchObject({ ok: false, failure: { code: 'IncreaseConnectionPool' } });
      }
      for (const client of held.splice(0)) client.release();
      // The pool is free again, but two timeouts (the pool size) within the window open the breaker.
      const started = Date.now();
      const result = await checkRead(tiny, authed('room:1'));
      expect(result).toMatchObject({ ok: false, failure: { code: 'IncreaseConnectionPool' } });
      expect(Date.now() - started).toBeLessThan(50);
      if (!result.ok) expect(joinRefusal(result.failure, 'room:1')).toBe('IncreaseConnectionPool: Please increase your connection pool size');
      // A short window lets checks through again.
      expect(await checkRead(tiny, authed('room:1'), { breakerWindowMs: 0 })).toMatchObject({ ok: true, broadcast: true });
    } finally {
      for (const client of held) client.release();
      await tiny.end();
    }
  });

  it('reports an unreachable database as UnableToConnect', async () => {
    const dead = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none', max: 1, connectionTimeoutMillis: 2000 });
    try {
      const result = await checkRead(dead, authed('room:1'));
      expect(result).toMatchObject({ ok: false, failure: { code: 'UnableToConnect' } });
      if (!result.ok) expect(joinRefusal(result.failure, 'room:1')).toBe('Realtime was unable to connect to the project database');
      expect(await checkWrite(dead, { ...authed('room:1'), extension: 'broadcast' })).toMatchObject({ ok: false, failure: { code: 'UnableToConnect' } });
    } finally {
      await dead.end();
    }
  });

  it('reports a missing partition as MissingPartition', async () => {
    const other = await createTestDatabase('authz_nopart');
    const p = new pg.Pool({ connectionString: other.url, max: 2 });
    // Dropping the database terminates backends that may still be closing: expected, not a test failure.
    p.on('error', () => undefined);
    try {
      await migrateTenantDatabase(p);
      await p.query(`DO $$ BEGIN EXECUTE format('DROP TABLE realtime.%I', 'messages_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM_DD')); END $$`);
      const read = await checkRead(p, authed('room:1'));
      expect(read).toMatchObject({ ok: false, failure: { code: 'MissingPartition' } });
      if (!read.ok) expect(joinRefusal(read.failure, 'room:1')).toBe('MissingPartition: Realtime was unable to find the expected messages partition');
      const write = await checkWrite(p, { topic: 'x', claims: { role: 'service_role' }, extension: 'broadcast' });
      expect(write).toMatchObject({ ok: false, failure: { code: 'MissingPartition' } });
      if (!write.ok) expect(restRefusal(write.failure)).toEqual({ status: 422, message: 'Missing messages partition' });
    } finally {
      await p.end();
      await other.drop();
    }
  });
});
