import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { parseBinding, type Binding } from '../../src/replication/changes/index.js';
import { ChangesCatalog } from '../../src/replication/changes-catalog.js';
import { ChangesDispatcher, type RowChange } from '../../src/replication/changes-dispatch.js';
import type { ChangesSubscriber } from '../../src/replication/changes-subscribers.js';
import type { OutgoingChange } from '../../src/shared/messages.js';
import type { RelationMessage } from '../../src/replication/pgoutput/index.js';
import { migrateTenantDatabase } from '../../src/tenants/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

// The dispatcher's RLS checks on a migrated database: every viewer of a batch in one call, keys in key order,
// and a viewer whose check fails does not hold back the others.

let db: TestDatabase;
let pool: pg.Pool;
let notes: RelationMessage;
let pairs: RelationMessage;
/** Pool checkouts: one per transaction or one-statement query. */
let checkouts = 0;

async function relationOf(name: string, columns: RelationMessage['columns']): Promise<RelationMessage> {
  const { rows } = await pool.query<{ oid: number }>(`SELECT $1::regclass::oid::int AS oid`, [`public.${name}`]);
  return { tag: 'relation', xid: null, relationId: rows[0]!.oid, namespace: 'public', name, replicaIdentity: 'default', columns };
}

beforeAll(async () => {
  db = await createTestDatabase('changes_visibility');
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  pool.on('acquire', () => void checkouts++);
  await migrateTenantDatabase(pool);
  await pool.query(`
    CREATE TABLE public.notes (id int PRIMARY KEY, owner text NOT NULL);
    ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own ON public.notes FOR SELECT TO authenticated USING (owner = auth.uid()::text);
    -- The key's columns in another order than the table's: keys must be read in key order.
    CREATE TABLE public.pairs (a int, b text, owner text NOT NULL, PRIMARY KEY (b, a));
    ALTER TABLE public.pairs ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own ON public.pairs FOR SELECT TO authenticated USING (owner = auth.jwt() ->> 'sub');
    GRANT SELECT ON public.notes, public.pairs TO authenticated;
  `);
  notes = await relationOf('notes', [
    { flags: 1, isKey: true, name: 'id', typeOid: 23, typeModifier: -1 },
    { flags: 0, isKey: false, name: 'owner', typeOid: 25, typeModifier: -1 },
  ]);
  pairs = await relationOf('pairs', [
    { flags: 1, isKey: true, name: 'a', typeOid: 23, typeModifier: -1 },
    { flags: 1, isKey: true, name: 'b', typeOid: 25, typeModifier: -1 },
    { flags: 0, isKey: false, name: 'owner', typeOid: 25, typeModifier: -1 },
  ]);
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

function insert(relation: RelationMessage, values: string[]): RowChange {
  return { relation, type: 'INSERT', newTuple: values.map((value) => ({ kind: 'text' as const, value })), old: null };
}

/** A subscriber to INSERTs of a table, keeping what it is handed. */
function subscriber(table: string, claims: Record<string, unknown>): ChangesSubscriber & { held: OutgoingChange[] } {
  const parsed = parseBinding({ event: 'INSERT', schema: 'public', table }, 1);
  if (!parsed.ok) throw new Error(parsed.message);
  const held: OutgoingChange[] = [];
  return { held, instance: randomUUID(), topic: 'room', legacy: false, bindings: [parsed.binding as Binding], claims, deliverMany: (items) => void held.push(...items), flush: () => undefined };
}

const records = (sub: { held: OutgoingChange[] }) => sub.held.map((item) => JSON.parse(item.data).record as Record<string, unknown>);

describe('postgres changes visibility', () => {
  it('checks the rows of a batch for all its viewers in one call', async () => {
    const users = Array.from({ length: 20 }, () => randomUUID());
    await pool.query('INSERT INTO public.notes SELECT g, ($1::text[])[1 + g % 20] FROM generate_series(0, 39) g', [users]);
    const subs = users.map((sub) => subscriber('notes', { role: 'authenticated', sub, session_id: randomUUID() }));
    const rows = Array.from({ length: 40 }, (_v, id) => insert(notes, [String(id), users[id % 20]!]));
    const dispatcher = new ChangesDispatcher(new ChangesCatalog(async () => pool), async () => pool, createLogger('silent'));
    // Catalog lookups happen once per relation: a first dispatch gets them out of the way.
    await dispatcher.dispatch([{ changes: rows.slice(0, 1), commitTime: 0n }], subs);
    checkouts = 0;
    await dispatcher.dispatch([{ changes: rows, commitTime: 0n }], subs);
    // One transaction for twenty viewers (no transaction id given: nothing to wait for first).
    expect(checkouts).toBe(1);
    subs.forEach((s, i) => expect(records(s).map((r) => r.id)).toEqual(i === 0 ? [0, 0, 20] : [i, i + 20]));

    // CHANGES_RLS_BATCH=false: one transaction per viewer, the same deliveries.
    const perViewer = new ChangesDispatcher(new ChangesCatalog(async () => pool), async () => pool, createLogger('silent'), null, { rlsBatch: false });
    const again = users.map((sub) => subscriber('notes', { role: 'authenticated', sub, session_id: randomUUID() }));
    await perViewer.dispatch([{ changes: rows.slice(0, 1), commitTime: 0n }], again);
    checkouts = 0;
    await perViewer.dispatch([{ changes: rows, commitTime: 0n }], again);
    expect(checkouts).toBe(20);
    again.forEach((s, i) => expect(records(s).map((r) => r.id)).toEqual(i === 0 ? [0, 0, 20] : [i, i + 20]));
  });

  it('looks rows up by their key columns in key order, not in the order of the table', async () => {
    const alice = randomUUID();
    await pool.query(`INSERT INTO public.pairs VALUES (1, 'one', $1), (2, 'two', 'someone else')`, [alice]);
    const sub = subscriber('pairs', { role: 'authenticated', sub: alice });
    const dispatcher = new ChangesDispatcher(new ChangesCatalog(async () => pool), async () => pool, createLogger('silent'));
    await dispatcher.dispatch([{ changes: [insert(pairs, ['1', 'one', alice]), insert(pairs, ['2', 'two', 'someone else'])], commitTime: 0n }], [sub]);
    expect(records(sub)).toEqual([{ a: 1, b: 'one', owner: alice }]);
  });

  it('delivers to the other viewers when one viewer keeps failing, after trying it again on its own', async () => {
    const alice = randomUUID();
    await pool.query(`INSERT INTO public.notes VALUES (100, $1)`, [alice]);
    const good = subscriber('notes', { role: 'authenticated', sub: alice });
    // Not a uuid: the policy's auth.uid() raises for this viewer alone, every time.
    const broken = subscriber('notes', { role: 'authenticated', sub: 'not-a-uuid' });
    const dispatcher = new ChangesDispatcher(new ChangesCatalog(async () => pool), async () => pool, createLogger('silent'));
    await dispatcher.dispatch([{ changes: [insert(notes, ['100', alice])], commitTime: 0n }], [broken, good]);
    expect(records(good)).toEqual([{ id: 100, owner: alice }]);
    expect(broken.held).toEqual([]);
  }, 15_000);
});
