/**
 * Database triggers from the replication stream, as Supabase's database webhooks: while a tenant runs and one of
 * its functions has a `database` trigger, a persistent logical slot reads the changes of the triggered tables
 * (publication `performer_functions`, its table list kept equal to the triggers'), and each committed row change
 * becomes an event `INSERT`/`UPDATE`/`DELETE` on `schema.table` with `record` / `old_record`. Its id is the commit's
 * WAL position and the row's place in the transaction, so a change read again after a restart is recognised and
 * not delivered twice; the slot position is confirmed only once the transaction's events are recorded.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { formatLsn } from '../../../replication/pgoutput/lsn.js';
import type { RelationMessage, TupleData } from '../../../replication/pgoutput/types.js';
import { ReplicationStream } from '../../../replication/stream.js';
import type { ChildSpec, RunningChild } from '../../../tenants/supervisor.js';
import type { TenantRuntime } from '../../../tenants/tenant.js';
import type { FunctionEvent, TriggerEngine } from './engine.js';

const PUBLICATION = 'performer_functions';
const SYNC_MS = 1000;

/** `performer_fn_<database oid>_<hash of the tenant>`: one slot per tenant and database, within 63 characters. */
export function functionsSlotName(tenantId: string, databaseOid: string): string {
  return `performer_fn_${databaseOid}_${createHash('sha256').update(tenantId).digest('hex').slice(0, 16)}`;
}

interface RowChange {
  type: 'INSERT' | 'UPDATE' | 'DELETE';
  relation: RelationMessage;
  record: Record<string, unknown> | null;
  old: Record<string, unknown> | null;
}

export function databaseTriggerChild(tenant: TenantRuntime, engine: TriggerEngine): ChildSpec {
  return {
    name: 'database-triggers',
    start: async (): Promise<RunningChild> => {
      let stream: ReplicationStream | null = null;
      let current = '';
      let stopped = false;
      /** A slot left behind (the walsender lets go of it a moment after the stream stops): dropped on a later sync. */
      let slotToDrop: string | null = null;
      let syncing: Promise<void> = Promise.resolve();
      let exit!: (reason: unknown) => void;
      const exited = new Promise<unknown>((resolve) => (exit = resolve));
      const tenantId = tenant.settings.externalId;

      const sync = async () => {
        const tables = engine.databaseTables(tenantId);
        const key = tables.join(',');
        if (stopped) return;
        if (key === current) {
          if (slotToDrop !== null && key === '') await dropSlot(await tenant.database(), slotToDrop).then((gone) => gone && (slotToDrop = null));
          return;
        }
        if (stream) slotToDrop = stream.slot;
        await stream?.stop();
        stream = null;
        current = key;
        const pool = await tenant.database();
        const { rows: db } = await pool.query<{ oid: string }>('SELECT oid::text FROM pg_database WHERE datname = current_database()');
        const slot = functionsSlotName(tenantId, db[0].oid);
        if (tables.length === 0) {
          // No database trigger left: the slot would only pin WAL.
          slotToDrop = slot;
          if (await dropSlot(pool, slot)) slotToDrop = null;
          return;
        }
        slotToDrop = null;
        const { rows: existing } = await pool.query<{ name: string }>(
          'SELECT quote_ident(n.nspname) || \'.\' || quote_ident(c.relname) AS name FROM unnest($1::text[]) AS t(name) JOIN pg_class c ON c.oid = to_regclass(t.name) JOIN pg_namespace n ON n.oid = c.relnamespace',
          [tables.map((t) => t.split('.').map((part) => pg.escapeIdentifier(part)).join('.'))],
        );
        const list = existing.map((r) => r.name).join(', ');
        const { rowCount } = await pool.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [PUBLICATION]);
        // Identifiers came back from quote_ident of tables that exist; nothing else reaches this statement.
        if (!rowCount) await pool.query(`CREATE PUBLICATION ${PUBLICATION}${list ? ` FOR TABLE ${list}` : ''}`);
        else if (list) await pool.query(`ALTER PUBLICATION ${PUBLICATION} SET TABLE ${list}`);
        const next = new ReplicationStream({
          connection: tenant.settings.databaseUrl,
          publications: [PUBLICATION],
          slot,
          temporary: false,
          log: tenant.log,
          applicationName: 'performer function triggers',
          handler: transactionHandler(() => next, async (events) => {
            // One after the other: the deliveries are recorded, and so come due, in commit order.
            for (const event of events) await engine.emit(tenantId, event);
          }),
        });
        stream = next;
        next.start();
      };
      const schedule = () => {
        syncing = syncing.then(sync).catch((err: unknown) => {
          current = '';
          tenant.log.warn({ err, error_code: 'FunctionDatabaseTriggersFailed' }, 'database triggers could not start');
        });
      };
      const timer = setInterval(schedule, SYNC_MS);
      const unsubscribe = engine.onChange(schedule);
      schedule();
      return {
        exited,
        stop: async () => {
          stopped = true;
          clearInterval(timer);
          unsubscribe();
          await syncing;
          await stream?.stop();
          exit(null);
        },
      };
    },
  };
}

/** Drops the slot unless a stream still holds it; true once it is gone. */
async function dropSlot(pool: pg.Pool, slot: string): Promise<boolean> {
  await pool.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [slot]);
  const { rowCount } = await pool.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return !rowCount;
}

/** Collects a transaction's row changes and hands them over at its commit, then confirms the commit position. */
function transactionHandler(stream: () => ReplicationStream, emit: (events: FunctionEvent[]) => Promise<void>) {
  let changes: RowChange[] = [];
  return async (event: { message: { tag: string }; ackLsn: bigint | null }): Promise<void> => {
    const m = event.message as { tag: string; relationId?: number; new?: TupleData; old?: { tuple: TupleData } | null };
    if (m.tag === 'begin') changes = [];
    else if (m.tag === 'insert' || m.tag === 'update' || m.tag === 'delete') {
      const relation = stream().relations.require(m.relationId as number);
      changes.push({
        type: m.tag === 'insert' ? 'INSERT' : m.tag === 'update' ? 'UPDATE' : 'DELETE',
        relation,
        record: m.new ? rowOf(relation, m.new) : null,
        old: m.old ? rowOf(relation, m.old.tuple) : null,
      });
    } else if (m.tag === 'commit' && event.ackLsn !== null) {
      const at = formatLsn(event.ackLsn);
      const events = changes.map((c, i): FunctionEvent => {
        const schema = c.relation.namespace || 'pg_catalog';
        return { kind: 'database', type: c.type, id: `${at}:${i}`, scope: `${schema}.${c.relation.name}`, schema, table: c.relation.name, record: c.record, old_record: c.old };
      });
      changes = [];
      if (events.length > 0) await emit(events);
      stream().ack(event.ackLsn);
    }
  };
}

/** A row as JSON, the common types as JSON types and the rest as Postgres prints them. */
function rowOf(relation: RelationMessage, tuple: TupleData): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  tuple.forEach((column, i) => {
    const def = relation.columns[i];
    if (!def || column.kind === 'unchanged') return;
    if (column.kind === 'null') return void (row[def.name] = null);
    const text = column.kind === 'text' ? column.value : column.value.toString('utf8');
    row[def.name] = typed(def.typeOid, text);
  });
  return row;
}

function typed(oid: number, text: string): unknown {
  switch (oid) {
    case 16:
      return text === 't';
    case 21:
    case 23:
    case 700:
    case 701:
      return Number(text);
    case 114:
    case 3802:
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    default:
      return text;
  }
}
