import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropOldMessagePartitions, ensureMessagePartitions, migrateTenantDatabase } from '../../src/tenants/migrate.js';
import { tenantMigrations } from '../../src/tenants/migrations/index.js';
import { createMachineTestDatabase, createTestDatabase, type TestDatabase } from '../support/postgres.js';

const allVersions = tenantMigrations.map((migration) => migration.version);

/** Catalog state every migrated tenant database must have, on any supported Postgres version. */
async function expectMigratedSchema(pool: pg.Pool): Promise<void> {
  const roles = await pool.query<{ rolname: string; rolcanlogin: boolean; rolbypassrls: boolean }>(
    `SELECT rolname, rolcanlogin, rolbypassrls FROM pg_roles
      WHERE rolname IN ('anon', 'authenticated', 'service_role', 'supabase_realtime_admin') ORDER BY rolname`,
  );
  expect(roles.rows.map((row) => row.rolname)).toEqual(['anon', 'authenticated', 'service_role', 'supabase_realtime_admin']);
  expect(roles.rows.find((row) => row.rolname === 'service_role')?.rolbypassrls).toBe(true);

  const functions = [
    'auth.uid()',
    'auth.role()',
    'auth.jwt()',
    'realtime.topic()',
    'realtime.send(jsonb, text, text, boolean)',
    'realtime.send_binary(bytea, text, text, boolean)',
    'realtime.broadcast_changes(text, text, text, text, text, record, record, text)',
    'realtime.create_messages_partitions(date, date)',
    'realtime.drop_old_messages_partitions(integer)',
    'realtime.performer_visible_keys(regclass, text[], text[], text[], text[], text[], text[], bigint[])',
  ];
  const found = await pool.query<{ signature: string; present: boolean }>(
    'SELECT s AS signature, to_regprocedure(s) IS NOT NULL AS present FROM unnest($1::text[]) AS s',
    [functions],
  );
  expect(found.rows.filter((row) => !row.present).map((row) => row.signature)).toEqual([]);

  const table = await pool.query<{ relkind: string; relrowsecurity: boolean; owner: string }>(
    `SELECT c.relkind, c.relrowsecurity, pg_get_userbyid(c.relowner) AS owner
       FROM pg_class c WHERE c.oid = 'realtime.messages'::regclass`,
  );
  expect(table.rows[0]).toEqual({ relkind: 'p', relrowsecurity: true, owner: 'supabase_realtime_admin' });
  // Whoever runs it acts as any role its login role belongs to: only the migrating role may.
  const visibleKeys = await pool.query<{ role: string }>(
    `SELECT r AS role FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) AS r
      WHERE has_function_privilege(r, 'realtime.performer_visible_keys(regclass, text[], text[], text[], text[], text[], text[], bigint[])', 'EXECUTE')`,
  );
  expect(visibleKeys.rows).toEqual([]);
  for (const role of ['anon', 'authenticated', 'service_role']) {
    const privileges = await pool.query<{ ok: boolean }>(
      `SELECT has_table_privilege($1, 'realtime.messages', 'SELECT, INSERT, UPDATE') AND
              has_schema_privilege($1, 'realtime', 'USAGE') AND has_schema_privilege($1, 'auth', 'USAGE') AS ok`,
      [role],
    );
    expect(privileges.rows[0].ok).toBe(true);
  }

  // Supabase's default privileges: what the migrating role creates in public is granted to the API roles.
  const defaults = await pool.query<{ kind: string; grantees: string[] }>(
    `SELECT d.defaclobjtype::text AS kind, array_agg(DISTINCT a.grantee::regrole::text ORDER BY a.grantee::regrole::text) AS grantees
       FROM pg_default_acl d, aclexplode(d.defaclacl) a
      WHERE d.defaclrole = current_user::regrole AND d.defaclnamespace = 'public'::regnamespace
      GROUP BY 1 ORDER BY 1`,
  );
  const apiRoles = ['anon', 'authenticated', 'service_role'];
  expect(defaults.rows).toEqual([
    { kind: 'S', grantees: apiRoles },
    { kind: 'f', grantees: apiRoles },
    { kind: 'r', grantees: apiRoles },
  ]);

  const partitions = await pool.query<{ name: string; present: boolean }>(
    `SELECT 'messages_' || to_char(d, 'YYYY_MM_DD') AS name,
            to_regclass('realtime.messages_' || to_char(d, 'YYYY_MM_DD')) IS NOT NULL AS present
       FROM generate_series((now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 3, interval '1 day') AS d`,
  );
  expect(partitions.rows).toHaveLength(5);
  expect(partitions.rows.every((row) => row.present)).toBe(true);

  const publications = await pool.query<{ pubname: string; pubviaroot: boolean; tables: string[] }>(
    `SELECT p.pubname, p.pubviaroot,
            coalesce((SELECT array_agg(t.schemaname || '.' || t.tablename) FROM pg_publication_tables t
                       WHERE t.pubname = p.pubname), '{}') AS tables
       FROM pg_publication p
      WHERE p.pubname IN ('supabase_realtime', 'supabase_realtime_messages_publication') ORDER BY p.pubname`,
  );
  expect(publications.rows).toEqual([
    { pubname: 'supabase_realtime', pubviaroot: false, tables: [] },
    { pubname: 'supabase_realtime_messages_publication', pubviaroot: true, tables: ['realtime.messages'] },
  ]);

  const subscription = await pool.query(`SELECT to_regclass('realtime.subscription') IS NOT NULL AS present`);
  expect(subscription.rows[0].present).toBe(true);

  const versions = await pool.query<{ version: string }>('SELECT version FROM realtime.schema_migrations ORDER BY 1');
  expect(versions.rows.map((row) => Number(row.version))).toEqual(allVersions);
}

/** Runs fn on one connection and returns the WARNING notices it raised. */
async function collectWarnings(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<void>): Promise<string[]> {
  const client = await pool.connect();
  const warnings: string[] = [];
  const onNotice = (notice: { severity?: string; message?: string }): void => {
    if (notice.severity === 'WARNING') warnings.push(notice.message ?? '');
  };
  client.on('notice', onNotice);
  try {
    await fn(client);
  } finally {
    client.off('notice', onNotice);
    client.release();
  }
  return warnings;
}

describe('migrateTenantDatabase on Postgres 18', () => {
  let db: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase('migrate');
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it('creates every object on a fresh database, then applies nothing the second time', async () => {
    const logged: string[] = [];
    expect(await migrateTenantDatabase(pool, (message) => logged.push(message))).toEqual({ applied: allVersions });
    expect(logged.length).toBeGreaterThan(0);
    await expectMigratedSchema(pool);
    expect(await migrateTenantDatabase(pool)).toEqual({ applied: [] });
  });

  it('serialises concurrent migrators of the same fresh database', async () => {
    const other = await createTestDatabase('migrate_concurrent');
    const clients = [new pg.Client(other.url), new pg.Client(other.url)];
    try {
      await Promise.all(clients.map((client) => client.connect()));
      const results = await Promise.all(clients.map((client) => migrateTenantDatabase(client)));
      expect([...results[0].applied, ...results[1].applied].sort((a, b) => a - b)).toEqual(allVersions);
      const { rows } = await clients[0].query('SELECT version, count(*)::int AS n FROM realtime.schema_migrations GROUP BY 1');
      expect(rows).toHaveLength(allVersions.length);
      expect(rows.every((row) => row.n === 1)).toBe(true);
    } finally {
      await Promise.all(clients.map((client) => client.end()));
      await other.drop();
    }
  });

  it('keeps objects a Supabase-like database already has', async () => {
    const other = await createTestDatabase('migrate_existing');
    const client = new pg.Client(other.url);
    try {
      await client.connect();
      await client.query(`
        CREATE SCHEMA auth;
        CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql AS $$ SELECT '00000000-0000-0000-0000-000000000001'::uuid $$;
        CREATE TABLE public.notes (id int PRIMARY KEY);
        CREATE PUBLICATION supabase_realtime FOR TABLE public.notes;
        CREATE SCHEMA realtime;
        CREATE TABLE realtime.schema_migrations (version bigint PRIMARY KEY, inserted_at timestamp(0));
        INSERT INTO realtime.schema_migrations VALUES (20211116024918, now());
      `);
      expect(await migrateTenantDatabase(client)).toEqual({ applied: allVersions });
      const { rows } = await client.query(`
        SELECT auth.uid()::text AS uid,
               (SELECT array_agg(tablename::text) FROM pg_publication_tables WHERE pubname = 'supabase_realtime') AS tables,
               (SELECT count(*)::int FROM realtime.schema_migrations) AS versions`);
      expect(rows[0]).toEqual({ uid: '00000000-0000-0000-0000-000000000001', tables: ['notes'], versions: allVersions.length + 1 });
    } finally {
      await client.end();
      await other.drop();
    }
  });

  it('gives the API roles Supabase privileges in public: on new objects, and once on existing ones nobody granted', async () => {
    const other = await createTestDatabase('migrate_grants');
    const client = new pg.Client(other.url);
    const privileges = async (role: string) =>
      (
        await client.query<Record<string, boolean>>(
          `SELECT has_table_privilege($1, 'public.untouched', 'SELECT, INSERT, UPDATE, DELETE') AS untouched,
                  has_table_privilege($1, 'public.chosen', 'SELECT') AS chosen,
                  has_sequence_privilege($1, 'public.counter', 'USAGE') AS counter,
                  has_table_privilege($1, 'public.later', 'SELECT, INSERT, UPDATE, DELETE') AS later,
                  has_sequence_privilege($1, 'public.later_id_seq', 'USAGE, SELECT, UPDATE') AS later_seq,
                  has_function_privilege($1, 'public.later_fn()', 'EXECUTE') AS later_fn`,
          [role],
        )
      ).rows[0];
    try {
      await client.connect();
      await client.query(`
        CREATE TABLE public.untouched (id int PRIMARY KEY);
        CREATE SEQUENCE public.counter;
        -- A privilege set by hand: the migration must not widen it.
        CREATE TABLE public.chosen (id int PRIMARY KEY);
        GRANT SELECT ON public.chosen TO service_role;
      `);
      await migrateTenantDatabase(client);
      await client.query(`
        CREATE TABLE public.later (id bigserial PRIMARY KEY, body text);
        CREATE FUNCTION public.later_fn() RETURNS int LANGUAGE sql AS 'SELECT 1';
        REVOKE EXECUTE ON FUNCTION public.later_fn() FROM PUBLIC;
      `);
      for (const role of ['anon', 'authenticated']) {
        expect({ role, ...(await privileges(role)) }).toEqual({
          role,
          untouched: true,
          chosen: false,
          counter: true,
          later: true,
          later_seq: true,
          later_fn: true,
        });
      }
      expect(await privileges('service_role')).toMatchObject({ untouched: true, chosen: true, later: true, later_fn: true });
    } finally {
      await client.end();
      await other.drop();
    }
  });

  it('realtime.send inserts a broadcast row whose payload carries the row id', async () => {
    await pool.query(`SELECT realtime.send('{"body":"hi"}'::jsonb, 'shout', 'send:1', false)`);
    await pool.query(`SELECT realtime.send('{"id":"mine"}'::jsonb, 'shout', 'send:2')`);
    const { rows } = await pool.query(
      `SELECT id::text, topic, extension, event, payload, private FROM realtime.messages
        WHERE topic IN ('send:1', 'send:2') ORDER BY topic`,
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ topic: 'send:1', extension: 'broadcast', event: 'shout', private: false });
    expect(rows[0].payload).toEqual({ body: 'hi', id: rows[0].id });
    expect(rows[1]).toMatchObject({ private: true, payload: { id: 'mine' } });
  });

  it('realtime.send turns failures into a WarnSendingBroadcastMessage warning', async () => {
    const warnings = await collectWarnings(pool, async (client) => {
      await client.query(`SELECT realtime.send('{}'::jsonb, 'ev', NULL)`);
      // No RLS policy allows anon to insert: the insert fails inside send.
      await client.query('BEGIN');
      await client.query('SET LOCAL ROLE anon');
      await client.query(`SELECT realtime.send('{}'::jsonb, 'ev', 'denied:1')`);
      await client.query('COMMIT');
    });
    expect(warnings).toHaveLength(2);
    expect(warnings.every((warning) => warning.startsWith('WarnSendingBroadcastMessage:'))).toBe(true);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM realtime.messages WHERE topic = 'denied:1'`);
    expect(rows[0].n).toBe(0);
  });

  it('realtime.send_binary stores a binary payload and realtime.topic() reads the setting', async () => {
    const client = await pool.connect();
    try {
      await client.query(`SELECT realtime.send_binary('\\x0102'::bytea, 'bin', 'binary:1')`);
      // send sets realtime.topic transaction-locally only.
      expect((await client.query('SELECT realtime.topic() AS t')).rows[0].t).toBeNull();
      const { rows } = await client.query(
        `SELECT payload, binary_payload, private FROM realtime.messages WHERE topic = 'binary:1'`,
      );
      expect(rows).toEqual([{ payload: null, binary_payload: Buffer.from([1, 2]), private: true }]);
      await client.query('BEGIN');
      await client.query(`SELECT set_config('realtime.topic', 'room:7', true)`);
      expect((await client.query('SELECT realtime.topic() AS t')).rows[0].t).toBe('room:7');
      await client.query(`SELECT set_config('realtime.topic', '', true)`);
      expect((await client.query('SELECT realtime.topic() AS t')).rows[0].t).toBeNull();
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });

  it('accepts authorization probe rows without payload but rejects rows with both payloads', async () => {
    await pool.query(`INSERT INTO realtime.messages (topic, extension) VALUES ('probe:1', 'presence')`);
    await expect(
      pool.query(`INSERT INTO realtime.messages (topic, extension, payload, binary_payload) VALUES ('x', 'broadcast', '{}', '\\x00')`),
    ).rejects.toMatchObject({ code: '23514' });
  });

  it('realtime.broadcast_changes from row triggers records old_record/record/operation/table/schema', async () => {
    await pool.query(`
      CREATE TABLE public.todos (id int PRIMARY KEY, title text);
      CREATE FUNCTION public.todos_broadcast() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
      BEGIN
        PERFORM realtime.broadcast_changes('todos:' || coalesce(NEW.id, OLD.id), TG_OP, TG_OP,
                                           TG_TABLE_NAME, TG_TABLE_SCHEMA, NEW, OLD);
        RETURN NULL;
      END $$;
      CREATE TRIGGER todos_broadcast AFTER INSERT OR UPDATE OR DELETE ON public.todos
        FOR EACH ROW EXECUTE FUNCTION public.todos_broadcast();
    `);
    await pool.query(`INSERT INTO public.todos VALUES (1, 'a')`);
    await pool.query(`UPDATE public.todos SET title = 'b' WHERE id = 1`);
    await pool.query(`DELETE FROM public.todos WHERE id = 1`);
    const { rows } = await pool.query(
      `SELECT id::text, event, private, payload FROM realtime.messages WHERE topic = 'todos:1' ORDER BY inserted_at`,
    );
    expect(rows.map((row) => [row.event, row.private])).toEqual([
      ['INSERT', true],
      ['UPDATE', true],
      ['DELETE', true],
    ]);
    const base = { table: 'todos', schema: 'public' };
    expect(rows[0].payload).toEqual({ ...base, id: rows[0].id, operation: 'INSERT', record: { id: 1, title: 'a' }, old_record: null });
    expect(rows[1].payload).toEqual({
      ...base,
      id: rows[1].id,
      operation: 'UPDATE',
      record: { id: 1, title: 'b' },
      old_record: { id: 1, title: 'a' },
    });
    expect(rows[2].payload).toEqual({ ...base, id: rows[2].id, operation: 'DELETE', record: null, old_record: { id: 1, title: 'b' } });
    await expect(
      pool.query(`SELECT realtime.broadcast_changes('t', 'e', 'INSERT', 'x', 'public', NULL, NULL, 'STATEMENT')`),
    ).rejects.toThrow(/row level/);
  });

  it('auth.uid(), auth.role() and auth.jwt() read the request claims', async () => {
    const empty = await pool.query('SELECT auth.uid() AS uid, auth.role() AS role, auth.jwt() AS jwt');
    expect(empty.rows[0]).toEqual({ uid: null, role: null, jwt: null });
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const sub = '6f1c5a2e-3b4d-4c5e-8f90-0a1b2c3d4e5f';
      await client.query(`SELECT set_config('request.jwt.claims', $1, true)`, [JSON.stringify({ sub, role: 'authenticated' })]);
      const { rows } = await client.query('SELECT auth.uid()::text AS uid, auth.role() AS role, auth.jwt() AS jwt');
      expect(rows[0]).toEqual({ uid: sub, role: 'authenticated', jwt: { sub, role: 'authenticated' } });
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });

  it('maintains daily partitions', async () => {
    expect(await ensureMessagePartitions(pool)).toBe(0);
    const target = `messages_${(await pool.query(`SELECT to_char((now() AT TIME ZONE 'UTC')::date + 3, 'YYYY_MM_DD') AS d`)).rows[0].d}`;
    await pool.query(`DROP TABLE realtime.${target}`);
    expect(await ensureMessagePartitions(pool)).toBe(1);
    await pool.query(
      `SELECT realtime.create_messages_partitions((now() AT TIME ZONE 'UTC')::date - 10, (now() AT TIME ZONE 'UTC')::date - 8)`,
    );
    expect(await dropOldMessagePartitions(pool, 72)).toBe(3);
    await expectMigratedSchema(pool);
  });

  it('publishes partition inserts as realtime.messages through pgoutput', async () => {
    const slot = `migrate_test_${Date.now()}`;
    await pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    await pool.query(`SELECT realtime.send('{"n":1}'::jsonb, 'e', 'published:1', false)`);
    const { rows } = await pool.query<{ data: Buffer }>(
      `SELECT data FROM pg_logical_slot_get_binary_changes($1, NULL, NULL,
         'proto_version', '1', 'publication_names', 'supabase_realtime_messages_publication')`,
      [slot],
    );
    const relation = rows.map((row) => row.data).find((data) => data[0] === 'R'.charCodeAt(0));
    expect(relation?.includes(Buffer.from('realtime\0messages\0'))).toBe(true);
    expect(rows.some((row) => row.data[0] === 'I'.charCodeAt(0))).toBe(true);
    // Left in place on purpose: TestDatabase.drop() must cope with leftover slots.
  });
});

describe('migrateTenantDatabase on the machine Postgres 15', () => {
  let db: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createMachineTestDatabase('migrate_pg15');
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it('migrates a fresh database and is idempotent', async () => {
    expect(await migrateTenantDatabase(pool)).toEqual({ applied: allVersions });
    await expectMigratedSchema(pool);
    expect(await migrateTenantDatabase(pool)).toEqual({ applied: [] });
    await pool.query(`SELECT realtime.send('{"a":1}'::jsonb, 'e', 'pg15:1')`);
    const { rows } = await pool.query(`SELECT payload FROM realtime.messages WHERE topic = 'pg15:1'`);
    expect(rows[0].payload).toMatchObject({ a: 1, id: expect.any(String) });
  });
});
