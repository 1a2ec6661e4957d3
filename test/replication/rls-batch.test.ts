import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkVisibilityBatch, type BatchViewer, type ViewerOutcome } from '../../src/replication/rls-batch.js';
import type { TableIdentity } from '../../src/replication/visibility.js';
import { migrateTenantDatabase } from '../../src/tenants/migrate.js';
import { createMachineTestDatabase, createTestDatabase, type TestDatabase } from '../support/postgres.js';

// The batched RLS check (one call for every viewer) against the plainest possible reference: for each viewer, a
// transaction with its role and claims set as PostgREST sets them, and one `SELECT 1 ... WHERE pk = key` per key.

let db: TestDatabase;
let pool: pg.Pool;
let admin: pg.Client;
const tables: Record<'things' | 'pairs', TableIdentity> = {} as never;

const SUBS = [randomUUID(), randomUUID(), randomUUID()];

const POLICY_EXPRESSIONS = [
  'true',
  'false',
  `owner = auth.jwt() ->> 'sub'`,
  `owner = auth.jwt() ->> 'sub'`,
  // Raises for a sub that is not a uuid: that viewer fails, the others are answered.
  'owner = auth.uid()::text',
  `grp = (auth.jwt() ->> 'grp')::int`,
  `(auth.jwt() ->> 'admin') = 'yes'`,
  'grp % 2 = 0',
  `EXISTS (SELECT 1 FROM public.members m WHERE m.user_id = auth.jwt() ->> 'sub' AND m.grp = %T.grp)`,
  `current_user = 'anon'`,
];
const POLICY_ROLES = ['PUBLIC', 'anon', 'authenticated', 'authenticated', 'service_role'];

const policyArb = fc.record({
  expression: fc.constantFrom(...POLICY_EXPRESSIONS),
  // At least one permissive policy must pass: mostly permissive ones, or little would ever be visible.
  restrictive: fc.constantFrom(false, false, false, true),
  roles: fc.subarray(POLICY_ROLES, { minLength: 1 }).map((roles) => [...new Set(roles)]),
});

/** What each API role may SELECT: the whole table, some columns (maybe not the key), or nothing. */
const grantArb = fc.constantFrom<'table' | 'key and owner' | 'owner only' | 'none'>('table', 'table', 'table', 'key and owner', 'owner only', 'none');

const claimsArb = fc.record(
  {
    // Mostly one role, so that viewers differing only in their claims meet in one call.
    role: fc.constantFrom<unknown>('authenticated', 'authenticated', 'authenticated', 'anon', 'service_role', 'no_such_role', 42),
    sub: fc.constantFrom<unknown>(...SUBS, ...SUBS, 'bob', 7),
    grp: fc.constantFrom<unknown>(0, 1, 2, 'x'),
    admin: fc.constant('yes'),
    session_id: fc.uuid(),
  },
  { requiredKeys: ['role', 'session_id'] },
);

const scenarioArb = fc.record({
  table: fc.constantFrom<'things' | 'pairs'>('things', 'pairs'),
  force: fc.boolean(),
  policies: fc.array(policyArb, { minLength: 1, maxLength: 3 }),
  grants: fc.record({ anon: grantArb, authenticated: grantArb, service_role: grantArb }),
  rows: fc.uniqueArray(fc.record({ id: fc.integer({ min: 0, max: 7 }), owner: fc.constantFrom(...SUBS, 'bob'), grp: fc.integer({ min: 0, max: 2 }) }), {
    selector: (r) => r.id,
    minLength: 3,
    maxLength: 8,
  }),
  members: fc.array(fc.record({ user: fc.constantFrom(...SUBS), grp: fc.integer({ min: 0, max: 2 }) }), { maxLength: 4 }),
  // Mostly keys of rows that exist; some twice (a row changed twice in a batch).
  keys: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 12 }),
  viewers: fc.array(
    fc.record({ claims: claimsArb, subset: fc.option(fc.uniqueArray(fc.nat({ max: 11 }), { maxLength: 8 }), { nil: undefined, freq: 2 }) }),
    { minLength: 1, maxLength: 6 },
  ),
});

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

/** The pairs table keys its rows by (b, a) = (`k<id>`, id). */
function keyOf(table: 'things' | 'pairs', id: number): string[] {
  return table === 'things' ? [String(id)] : [`k${id}`, String(id)];
}

async function setUp(s: Scenario): Promise<void> {
  const t = `public.${s.table}`;
  await admin.query(`TRUNCATE ${t}, public.members`);
  const { rows: policies } = await admin.query<{ polname: string }>('SELECT polname FROM pg_policy WHERE polrelid = $1::regclass', [t]);
  for (const p of policies) await admin.query(`DROP POLICY ${pg.escapeIdentifier(p.polname)} ON ${t}`);
  for (const [i, p] of s.policies.entries()) {
    await admin.query(
      `CREATE POLICY p${i} ON ${t} AS ${p.restrictive ? 'RESTRICTIVE' : 'PERMISSIVE'} FOR SELECT TO ${p.roles.join(', ')} USING (${p.expression.replace('%T', s.table)})`,
    );
  }
  await admin.query(`ALTER TABLE ${t} ${s.force ? 'FORCE' : 'NO FORCE'} ROW LEVEL SECURITY`);
  await admin.query(`REVOKE ALL ON ${t} FROM anon, authenticated, service_role`);
  const keyCols = s.table === 'things' ? 'id' : 'a, b';
  for (const [role, grant] of Object.entries(s.grants)) {
    if (grant === 'table') await admin.query(`GRANT SELECT ON ${t} TO ${role}`);
    if (grant === 'key and owner') await admin.query(`GRANT SELECT (${keyCols}, owner) ON ${t} TO ${role}`);
    if (grant === 'owner only') await admin.query(`GRANT SELECT (owner) ON ${t} TO ${role}`);
  }
  for (const r of s.rows) {
    if (s.table === 'things') await admin.query('INSERT INTO public.things VALUES ($1, $2, $3, $4)', [r.id, r.owner, r.grp, 'x']);
    else await admin.query('INSERT INTO public.pairs VALUES ($1, $2, $3, $4)', [r.id, `k${r.id}`, r.owner, r.grp]);
  }
  for (const m of s.members) await admin.query('INSERT INTO public.members VALUES ($1, $2)', [m.user, m.grp]);
}

type Expected = { failed: true } | { failed: false; columns: string[]; pkReadable: boolean; visible: number[] };

/** The reference: the viewer's role and claims set by hand, then one SELECT per key it asks about. */
async function reference(table: TableIdentity, keys: string[][], claims: Record<string, unknown>, asked: number[]): Promise<Expected> {
  const role = typeof claims.role === 'string' ? claims.role : '';
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows: roleRows } = await client.query(`SELECT 1 FROM pg_roles WHERE rolname = $1 AND pg_has_role(current_user, oid, 'MEMBER')`, [role]);
    if (roleRows.length === 0) return { failed: false, columns: [], pkReadable: false, visible: [] };
    const actAs = (claimsText: string, sub: string) =>
      client.query(
        `SELECT set_config('request.jwt.claims', $1, true), set_config('request.jwt.claim.sub', $2, true),
                set_config('request.jwt.claim.role', $3, true), set_config('role', $3, true)`,
        [claimsText, sub, role],
      );
    // Planned once, generic, before the viewer's claims are set: the planner evaluates a policy's stable functions
    // when it estimates, and an outcome should not hang on estimates (the batched check plans the same way).
    await actAs('{}', '');
    await client.query(`SET LOCAL plan_cache_mode = force_generic_plan`);
    const where = table.primaryKey.map((pk, i) => `${pk.name} = $${i + 1}::${pk.type}`).join(' AND ');
    const lookup = (values: (string | null)[]) => client.query({ name: `reference_${table.name}`, text: `SELECT 1 FROM public.${table.name} WHERE ${where}`, values });
    const { rows: cols } = await client.query<{ attname: string }>(
      `SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND has_column_privilege(attrelid, attnum, 'SELECT') ORDER BY attnum`,
      [table.relationId],
    );
    const columns = cols.map((c) => c.attname);
    const pkReadable = table.primaryKey.every((pk) => columns.includes(pk.name));
    const visible: number[] = [];
    if (pkReadable && asked.length > 0) {
      await lookup(table.primaryKey.map(() => null));
      await actAs(JSON.stringify(claims), typeof claims.sub === 'string' ? claims.sub : '');
      for (const k of asked) {
        await client.query('SAVEPOINT one');
        try {
          const { rowCount } = await lookup(keys[k]!);
          if (rowCount === 1) visible.push(k);
        } catch {
          return { failed: true };
        }
      }
    }
    return { failed: false, columns, pkReadable, visible };
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

function summary(o: ViewerOutcome, asked: number[]): Expected {
  if (!o.ok) return { failed: true };
  return { failed: false, columns: [...o.value.columns], pkReadable: o.value.pkReadable, visible: asked.filter((k) => o.value.visible.has(k)) };
}

/** A fresh migrated database with the tables the scenarios use; the module's state points at it. */
async function openDatabase(create: (prefix: string) => Promise<TestDatabase>): Promise<void> {
  db = await create('rls_batch');
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  await migrateTenantDatabase(pool);
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await admin.query(`
    CREATE TABLE public.things (id int PRIMARY KEY, owner text, grp int, body text);
    -- Key columns declared in the other order than the table's columns.
    CREATE TABLE public.pairs (a int, b text, owner text, grp int, PRIMARY KEY (b, a));
    CREATE TABLE public.members (user_id text, grp int);
    ALTER TABLE public.things ENABLE ROW LEVEL SECURITY;
    ALTER TABLE public.pairs ENABLE ROW LEVEL SECURITY;
    GRANT SELECT ON public.members TO anon, authenticated, service_role;
  `);
  for (const name of ['things', 'pairs'] as const) {
    const { rows } = await admin.query<{ oid: number }>(`SELECT $1::regclass::oid::int AS oid`, [`public.${name}`]);
    tables[name] = {
      relationId: rows[0]!.oid,
      schema: 'public',
      name,
      primaryKey: name === 'things' ? [{ name: 'id', type: 'integer' }] : [{ name: 'b', type: 'text' }, { name: 'a', type: 'integer' }],
    };
  }
}

async function closeDatabase(): Promise<void> {
  await admin?.end();
  await pool?.end();
  await db?.drop();
}

/** The property: every viewer answered as the reference answers it. */
function batchedMatchesReference(numRuns: number): Promise<void> {
  return fc.assert(
    fc.asyncProperty(scenarioArb, async (s) => {
      await setUp(s);
      const table = tables[s.table];
      const keys = s.keys.map((id) => keyOf(s.table, id));
      const viewers: BatchViewer[] = s.viewers.map((v) => ({
        claims: v.claims,
        claimsText: JSON.stringify(v.claims),
        keys: v.subset ? [...new Set(v.subset.filter((k) => k < keys.length))] : undefined,
      }));
      const result = await checkVisibilityBatch(pool, table, keys, viewers, true);
      if (!result.ok) throw new Error(`the batched call failed: ${result.failure.message}`);
      for (const [i, v] of viewers.entries()) {
        const asked = [...(v.keys ?? keys.map((_k, n) => n))].sort((x, y) => x - y);
        const expected = await reference(table, keys, v.claims, asked);
        expect(summary(result.value[i]!, asked), `viewer ${JSON.stringify(v.claims)}`).toEqual(expected);
      }
    }),
    { numRuns },
  );
}

/** A viewer whose own check raises fails alone; the viewers after it (same role, same keys) are still right. */
async function failureStaysWithItsViewer(): Promise<void> {
  await setUp({
    table: 'things',
    force: false,
    policies: [{ expression: 'owner = auth.uid()::text', restrictive: false, roles: ['authenticated'] }],
    grants: { anon: 'table', authenticated: 'table', service_role: 'table' },
    rows: [
      { id: 0, owner: SUBS[0]!, grp: 0 },
      { id: 1, owner: SUBS[1]!, grp: 0 },
      { id: 2, owner: SUBS[1]!, grp: 0 },
    ],
    members: [],
    keys: [0, 1, 2],
    viewers: [],
  });
  const viewer = (claims: Record<string, unknown>, keys: number[]): BatchViewer => ({ claims, claimsText: JSON.stringify(claims), keys });
  const result = await checkVisibilityBatch(pool, tables.things, [['0'], ['1'], ['2']], [
    viewer({ role: 'authenticated', sub: SUBS[0] }, [0]),
    // Not a uuid: auth.uid() raises while this viewer's keys are set.
    viewer({ role: 'authenticated', sub: 'bob' }, [1, 2]),
    viewer({ role: 'authenticated', sub: SUBS[1] }, [1, 2]),
  ], true);
  if (!result.ok) throw new Error(result.failure.message);
  expect(result.value.map((o) => (o.ok ? [...o.value.visible].sort() : o.failure.code))).toEqual([[0], 'RlsPolicyError', [1, 2]]);
}

describe('checkVisibilityBatch on Postgres 18', () => {
  beforeAll(() => openDatabase(createTestDatabase));
  afterAll(closeDatabase);

  it('answers every viewer as a SELECT of each row as that viewer does, over random policies, grants and claims', () => batchedMatchesReference(100), 120_000);

  it('gives a viewer whose check raises its failure, and answers the viewers after it as if it were not there', failureStaysWithItsViewer);

  it('tells which claims the row security of a table can read', async () => {
    await admin.query(`CREATE OR REPLACE FUNCTION public.claims_reader() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'x' $$`);
    const cases: [string, string][] = [
      ['true', 'none'],
      ['grp % 2 = 0 AND owner IS NOT NULL', 'none'],
      [`current_user = 'anon' OR auth.role() = 'authenticated'`, 'none'],
      ['owner = auth.uid()::text', 'sub'],
      ['owner = auth.uid()::text OR grp IN (1, 2)', 'sub'],
      [`owner = auth.jwt() ->> 'sub'`, 'all'],
      [`owner = current_setting('request.jwt.claims', true)`, 'all'],
      [`owner = (SELECT current_setting('request.jwt.claim.sub', true))`, 'all'],
      ['EXISTS (SELECT 1 FROM public.members m WHERE m.grp = things.grp)', 'all'],
      ['random() < 0.5', 'all'],
      ['owner = public.claims_reader()', 'all'],
    ];
    const got: [string, string][] = [];
    for (const [expression] of cases) {
      await setUp({ table: 'things', force: false, policies: [{ expression, restrictive: false, roles: ['authenticated'] }], grants: { anon: 'none', authenticated: 'table', service_role: 'none' }, rows: [], members: [], keys: [], viewers: [] });
      const { rows } = await admin.query<{ reads: string }>(`SELECT realtime.performer_policy_reads('public.things') AS reads`);
      got.push([expression, rows[0]!.reads]);
    }
    expect(got).toEqual(cases);
    // No SELECT policy at all: nothing is visible, whatever the claims.
    await setUp({ table: 'things', force: false, policies: [], grants: { anon: 'none', authenticated: 'table', service_role: 'none' }, rows: [], members: [], keys: [], viewers: [] });
    expect((await admin.query(`SELECT realtime.performer_policy_reads('public.things') AS reads`)).rows[0].reads).toBe('none');
  });

  it('shares no answer between viewers with the same sub once auth.uid() reads another claim', async () => {
    const scenario = {
      table: 'things' as const,
      force: false,
      policies: [{ expression: 'owner = auth.uid()::text', restrictive: false, roles: ['authenticated'] }],
      grants: { anon: 'none' as const, authenticated: 'table' as const, service_role: 'none' as const },
      rows: [{ id: 0, owner: SUBS[1]!, grp: 0 }],
      members: [],
      keys: [0],
      viewers: [],
    };
    await setUp(scenario);
    const { rows } = await admin.query<{ def: string }>(`SELECT pg_get_functiondef('auth.uid()'::regprocedure) AS def`);
    // The sub is the same; the claim this auth.uid() reads is not.
    const viewers = ['', SUBS[1]].map((other) => {
      const claims = { role: 'authenticated', sub: SUBS[0], other_sub: other };
      return { claims, claimsText: JSON.stringify(claims) };
    });
    try {
      await admin.query(`CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS
                           $$ SELECT nullif(current_setting('request.jwt.claims', true)::jsonb ->> 'other_sub', '')::uuid $$`);
      const result = await checkVisibilityBatch(pool, tables.things, [['0']], viewers, true);
      if (!result.ok) throw new Error(result.failure.message);
      expect(result.value.map((o) => o.ok && [...o.value.visible])).toEqual([[], [0]]);
    } finally {
      await admin.query(rows[0]!.def);
    }
  });

  it('may only be run by the role that installed it, and acts only as roles that role belongs to', async () => {
    const engine = `rls_batch_engine_${randomUUID().slice(0, 8)}`;
    const password = randomUUID();
    await admin.query(`CREATE ROLE ${engine} LOGIN PASSWORD '${password}' IN ROLE authenticated`);
    const asEngine = new pg.Pool({ connectionString: Object.assign(new URL(db.url), { username: engine, password }).toString(), max: 1 });
    try {
      await setUp({
        table: 'things',
        force: false,
        policies: [{ expression: 'true', restrictive: false, roles: ['PUBLIC'] }],
        grants: { anon: 'table', authenticated: 'table', service_role: 'table' },
        rows: [{ id: 0, owner: 'bob', grp: 0 }],
        members: [],
        keys: [0],
        viewers: [],
      });
      const viewers: BatchViewer[] = ['authenticated', 'service_role'].map((role) => ({ claims: { role }, claimsText: JSON.stringify({ role }) }));
      // EXECUTE was revoked from PUBLIC: a role granted it only by PUBLIC (an API role, a PostgREST login) cannot.
      const refused = await checkVisibilityBatch(asEngine, tables.things, [['0']], viewers, true);
      expect(refused).toMatchObject({ ok: false, unavailable: true });
      await admin.query(`GRANT EXECUTE ON FUNCTION realtime.performer_visible_keys TO ${engine}`);
      const result = await checkVisibilityBatch(asEngine, tables.things, [['0']], viewers, true);
      if (!result.ok) throw new Error(result.failure.message);
      // service_role is not one of its roles: denied, not answered as service_role.
      expect(result.value.map((o) => o.ok && { visible: [...o.value.visible], pkReadable: o.value.pkReadable })).toEqual([
        { visible: [0], pkReadable: true },
        { visible: [], pkReadable: false },
      ]);
    } finally {
      await asEngine.end();
      await admin.query(`REVOKE ALL ON FUNCTION realtime.performer_visible_keys FROM ${engine}`);
      await admin.query(`DROP ROLE ${engine}`);
    }
  });

  it('without RLS asks only the column privileges and names every key visible', async () => {
    await admin.query('GRANT SELECT ON public.things TO service_role');
    const result = await checkVisibilityBatch(pool, { ...tables.things }, [['1'], ['2']], [{ claims: { role: 'service_role' }, claimsText: '{"role":"service_role"}' }], false);
    expect(result.ok && result.value[0]).toMatchObject({ ok: true, value: { visible: new Set([0, 1]), pkReadable: true } });
  });
});

describe('checkVisibilityBatch on the machine Postgres 15', () => {
  beforeAll(() => openDatabase(createMachineTestDatabase));
  afterAll(closeDatabase);

  it('answers every viewer as a SELECT of each row as that viewer does', () => batchedMatchesReference(40), 120_000);

  it('gives a viewer whose check raises its failure alone', failureStaysWithItsViewer);
});
