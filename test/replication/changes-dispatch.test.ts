import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { parseBinding, type Binding } from '../../src/replication/changes/index.js';
import { ChangesCatalog } from '../../src/replication/changes-catalog.js';
import { ChangesDispatcher, type RowChange } from '../../src/replication/changes-dispatch.js';
import type { OutgoingChange } from '../../src/shared/messages.js';
import type { ChangesSubscriber } from '../../src/replication/changes-subscribers.js';
import type { RelationMessage } from '../../src/replication/pgoutput/index.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

let db: TestDatabase;
let pool: pg.Pool;
let relation: RelationMessage;

beforeAll(async () => {
  db = await createTestDatabase('dispatch');
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  await pool.query(`
    DO $$ BEGIN CREATE ROLE anon NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
    CREATE TABLE public.things (id int PRIMARY KEY, body text);
    GRANT SELECT ON public.things TO anon;
  `);
  const { rows } = await pool.query<{ oid: number }>(`SELECT 'public.things'::regclass::oid AS oid`);
  relation = {
    tag: 'relation',
    xid: null,
    relationId: rows[0]!.oid,
    namespace: 'public',
    name: 'things',
    replicaIdentity: 'default',
    columns: [
      { flags: 1, isKey: true, name: 'id', typeOid: 23, typeModifier: -1 },
      { flags: 0, isKey: false, name: 'body', typeOid: 25, typeModifier: -1 },
    ],
  };
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

function insertOf(id: number, body: string): RowChange {
  return { relation, type: 'INSERT', newTuple: [{ kind: 'text', value: String(id) }, { kind: 'text', value: body }], old: null };
}

/** A subscriber that keeps what it is handed. */
function subscriber(): ChangesSubscriber & { held: OutgoingChange[] } {
  const parsed = parseBinding({ event: 'INSERT', schema: 'public', table: 'things' }, 7);
  if (!parsed.ok) throw new Error(parsed.message);
  const held: OutgoingChange[] = [];
  return {
    held,
    instance: 'i1',
    topic: 'room',
    legacy: false,
    bindings: [parsed.binding as Binding],
    claims: { role: 'anon' },
    deliverMany: (items) => void held.push(...items),
    flush: () => undefined,
  };
}

describe('ChangesDispatcher', () => {
  it('tries a batch again while the tenant database is briefly unavailable, and delivers it once', async () => {
    let refusals = 2;
    // What a tenant runtime's database() does during its reconnect backoff: reject, then hand out the pool.
    const database = async () => {
      if (refusals > 0) {
        refusals -= 1;
        throw new Error('tenant database recently failed to connect');
      }
      return pool;
    };
    const dispatcher = new ChangesDispatcher(new ChangesCatalog(database), database, createLogger('silent'));
    const sub = subscriber();
    const out = await dispatcher.dispatch([{ changes: [insertOf(1, 'one'), insertOf(2, 'two')], commitTime: 0n }], [sub]);
    expect(refusals).toBe(0);
    expect(out.deliveries).toBe(2);
    expect(sub.held.map((item) => JSON.parse(item.data).record)).toEqual([{ id: 1, body: 'one' }, { id: 2, body: 'two' }]);
    expect(sub.held[0]!.idsJson).toBe('[7]');
  });

  it('gives a batch up with an error once the database stays away', async () => {
    const database = async (): Promise<pg.Pool> => {
      throw new Error('tenant database recently failed to connect');
    };
    const dispatcher = new ChangesDispatcher(new ChangesCatalog(database), database, createLogger('silent'));
    const sub = subscriber();
    await expect(dispatcher.dispatch([{ changes: [insertOf(3, 'three')], commitTime: 0n }], [sub])).rejects.toThrow('recently failed');
    expect(sub.held).toEqual([]);
  }, 15_000);
});
