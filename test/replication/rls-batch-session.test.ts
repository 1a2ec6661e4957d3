import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkVisibilityBatch, type BatchViewer } from '../../src/replication/rls-batch.js';
import type { TableIdentity } from '../../src/replication/visibility.js';
import { migrateTenantDatabase } from '../../src/tenants/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

// realtime.performer_visible_keys keeps what it learnt in its session across calls (tenant migration 22): the
// prepared lookups, and which claims a table's policies read. Calls on one connection (a pool of one) must still
// answer as the table and its policies are at the time of each call.

let db: TestDatabase;
let pool: pg.Pool;
let admin: pg.Client;

const ALICE = randomUUID();
const BOB = randomUUID();

beforeAll(async () => {
  db = await createTestDatabase('rls_session');
  pool = new pg.Pool({ connectionString: db.url, max: 1 });
  await migrateTenantDatabase(pool);
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
});

afterAll(async () => {
  await admin?.end();
  await pool?.end();
  await db?.drop();
});

async function table(name: string, rows: [number, string][]): Promise<TableIdentity> {
  await admin.query(`
    CREATE TABLE public.${name} (id int PRIMARY KEY, owner text);
    ALTER TABLE public.${name} ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own ON public.${name} FOR SELECT TO authenticated USING (owner = auth.uid()::text);
    GRANT SELECT ON public.${name} TO authenticated;
  `);
  for (const [id, owner] of rows) await admin.query(`INSERT INTO public.${name} VALUES ($1, $2)`, [id, owner]);
  const { rows: oid } = await admin.query<{ oid: number }>('SELECT $1::regclass::oid::int AS oid', [`public.${name}`]);
  return { relationId: oid[0]!.oid, schema: 'public', name, primaryKey: [{ name: 'id', type: 'integer' }] };
}

function viewer(claims: Record<string, unknown>): BatchViewer {
  return { claims: { role: 'authenticated', ...claims }, claimsText: JSON.stringify({ role: 'authenticated', ...claims }) };
}

/** Each viewer's visible key indexes, or its failure code. */
async function visible(t: TableIdentity, keys: string[][], viewers: BatchViewer[]): Promise<(number[] | string)[]> {
  const result = await checkVisibilityBatch(pool, t, keys, viewers, true);
  if (!result.ok) throw new Error(result.failure.message);
  return result.value.map((o) => (o.ok ? [...o.value.visible].sort() : o.failure.code));
}

describe('realtime.performer_visible_keys across calls of one session', () => {
  it('reads the policies again once they or auth.uid() changed, and stops sharing answers by sub', async () => {
    const t = await table('session_policies', [
      [1, ALICE],
      [2, BOB],
    ]);
    const keys = [['1'], ['2']];
    // Same role and sub; other_sub differs.
    const viewers = [viewer({ sub: ALICE, other_sub: ALICE }), viewer({ sub: ALICE, other_sub: BOB })];
    // The policy reads the sub only: both viewers share one answer, and the session remembers that reading.
    expect(await visible(t, keys, viewers)).toEqual([[0], [0]]);
    await admin.query(`ALTER POLICY own ON public.session_policies USING (owner = auth.jwt() ->> 'other_sub')`);
    expect(await visible(t, keys, viewers)).toEqual([[0], [1]]);
    await admin.query('ALTER POLICY own ON public.session_policies USING (owner = auth.uid()::text)');
    expect(await visible(t, keys, viewers)).toEqual([[0], [0]]);
    const { rows } = await admin.query<{ def: string }>(`SELECT pg_get_functiondef('auth.uid()'::regprocedure) AS def`);
    try {
      await admin.query(`CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS
                           $$ SELECT nullif(current_setting('request.jwt.claims', true)::jsonb ->> 'other_sub', '')::uuid $$`);
      expect(await visible(t, keys, viewers)).toEqual([[0], [1]]);
    } finally {
      await admin.query(rows[0]!.def);
    }
    expect(await visible(t, keys, viewers)).toEqual([[0], [0]]);
  });

  it('looks rows up in the table a relation id names now, after renames and key type changes', async () => {
    const first = await table('session_moved', [[1, ALICE]]);
    const alice = [viewer({ sub: ALICE })];
    expect(await visible(first, [['1']], alice)).toEqual([[0]]);
    // Another table takes the name; the first lives on under another.
    await admin.query('ALTER TABLE public.session_moved RENAME TO session_moved_away');
    const second = await table('session_moved', [[1, BOB]]);
    expect(await visible(second, [['1']], alice)).toEqual([[]]);
    expect(await visible({ ...first, name: 'session_moved_away' }, [['1']], alice)).toEqual([[0]]);
    // The key column's type changes under the same names.
    await admin.query('ALTER TABLE public.session_moved ALTER COLUMN id TYPE text');
    await admin.query(`INSERT INTO public.session_moved VALUES ('x1', $1)`, [ALICE]);
    expect(await visible({ ...second, primaryKey: [{ name: 'id', type: 'text' }] }, [['1'], ['x1']], alice)).toEqual([[1]]);
  });
});
