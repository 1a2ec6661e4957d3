import pg from 'pg';
import { BEGIN_WITH_TIMEOUT, classify, inRolledBackTransaction, sqlState, type RlsFailure, type RlsOptions } from '../db/rls.js';
import type { TableIdentity, Visibility } from './visibility.js';

/**
 * Postgres Changes visibility for many viewers in one round trip: realtime.performer_visible_keys (tenant migration
 * 10) switches to each viewer's role and claims inside Postgres and answers which of a batch's rows it may SELECT,
 * where checkVisibility needs a transaction per viewer. Same settings as actAs, same answers (a property test
 * compares them with a plain SELECT as each user).
 */

/** One viewer of a table: its claims (role = `claims.role`) and, optionally, the only keys it asks about. */
export interface BatchViewer {
  claims: Record<string, unknown>;
  /** JSON of the claims, exactly what request.jwt.claims is set to. */
  claimsText: string;
  /** Indexes into the keys this viewer asks about; all of them when absent. */
  keys?: readonly number[];
}

export type ViewerOutcome = { ok: true; value: Visibility } | { ok: false; failure: RlsFailure };

export type BatchOutcome =
  /** late: the transactions were still invisible to new snapshots after `visibleWaitMs`; checked anyway. */
  | { ok: true; value: ViewerOutcome[]; late?: boolean }
  /** The whole call failed (timeout, connection); `unavailable`: the function is missing or may not be run. */
  | { ok: false; failure: RlsFailure; unavailable: boolean };

export interface BatchOptions extends Pick<RlsOptions, 'latencyMs'> {
  /**
   * Transactions (pgoutput's 32-bit xids) that must be visible to new snapshots before rows are looked up: the call
   * answers "not yet" and is made again (waiting 1, 2, 4 … 50 ms) for at most `visibleWaitMs` (default 10 s).
   */
  xids?: readonly number[];
  visibleWaitMs?: number;
}

/** Key lookups (viewers times keys) per call: bounds a call's time; more viewers go to parallel calls. */
const WORK_PER_CALL = 200_000;


const DENIED: Visibility = Object.freeze({ visible: new Set<number>(), columns: new Set<string>(), pkReadable: false }) as Visibility;

/**
 * What each viewer may see of a batch of changed rows of one table, looked up in its current state by primary key.
 * `keys` are the rows' primary key values as text (pgoutput's), in `table.primaryKey` order; without RLS (or
 * without a primary key) only the column privileges are asked. A viewer whose own check raised gets its failure;
 * the others their answer.
 */
export async function checkVisibilityBatch(
  pool: pg.Pool,
  table: TableIdentity,
  keys: readonly (readonly (string | null)[])[],
  viewers: readonly BatchViewer[],
  rlsEnabled: boolean,
  opts: BatchOptions = {},
): Promise<BatchOutcome> {
  const out: ViewerOutcome[] = new Array(viewers.length);
  const lookup = rlsEnabled && table.primaryKey.length > 0 && keys.length > 0;
  // A viewer without a role is denied without asking, as actAs denies it.
  const asked: number[] = [];
  viewers.forEach((v, i) => {
    if (roleOf(v.claims) === '') out[i] = { ok: true, value: DENIED };
    else asked.push(i);
  });
  // Sorted by role (the prepared lookup is planned once per run of equal roles), then by sub (viewers that may
  // share a lookup stay together).
  const order = new Map(asked.map((i) => [i, `${roleOf(viewers[i]!.claims)}\u0000${JSON.stringify(viewers[i]!.claims.sub) ?? ''}`]));
  asked.sort((a, b) => compare(order.get(a)!, order.get(b)!) || a - b);
  // One call, unless the work is large (a big batch for many viewers): then parallel calls of bounded work. (Splitting
  // a small batch's viewers over two connections made the steady-rate latency worse in the bench.)
  const calls: number[][] = [];
  let work = Infinity;
  for (const i of asked) {
    const cost = lookup ? Math.max(1, viewers[i]!.keys?.length ?? keys.length) : 1;
    if (work + cost > WORK_PER_CALL) calls.push([]), (work = 0);
    calls[calls.length - 1]!.push(i);
    work += cost;
  }
  const results = await Promise.all(calls.map((chunk) => visibleCall(pool, table, lookup ? keys : [], chunk.map((i) => viewers[i]!), keys.length, rlsEnabled, opts)));
  let late = false;
  for (let c = 0; c < calls.length; c++) {
    const r = results[c]!;
    if (!r.ok) return r;
    late ||= r.late === true;
    calls[c]!.forEach((viewerIndex, k) => (out[viewerIndex] = r.value[k]!));
  }
  return { ok: true, value: out, late };
}

/** A call made again while its transactions are not visible yet; past the wait, made without waiting for them. */
async function visibleCall(
  pool: pg.Pool,
  table: TableIdentity,
  keys: readonly (readonly (string | null)[])[],
  viewers: readonly BatchViewer[],
  keyCount: number,
  rlsEnabled: boolean,
  opts: BatchOptions,
): Promise<BatchOutcome> {
  const xids = keys.length > 0 ? (opts.xids ?? []) : [];
  const deadline = Date.now() + (opts.visibleWaitMs ?? 10_000);
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    const result = await call(pool, table, keys, viewers, keyCount, rlsEnabled, xids, opts);
    if (result !== NOT_VISIBLE) return result;
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const anyway = await call(pool, table, keys, viewers, keyCount, rlsEnabled, [], opts);
  if (anyway === NOT_VISIBLE) throw new Error('realtime.performer_visible_keys: unexpected answer');
  return anyway.ok ? { ...anyway, late: true } : anyway;
}

const NOT_VISIBLE = Symbol('not visible yet');

/** Arrays come as their text: viewers of one role have the same columns, and viewers of one group the same keys. */
interface Row {
  viewer: number;
  columns: string | null;
  keys_found: string | null;
  error_state: string | null;
  error_message: string | null;
}

/** node-postgres' parser of text[] (type 1009), as it would have parsed these columns. */
const parseTextArray = pg.types.getTypeParser(1009 as Parameters<typeof pg.types.getTypeParser>[0]) as (text: string) => string[];

async function call(
  pool: pg.Pool,
  table: TableIdentity,
  keys: readonly (readonly (string | null)[])[],
  viewers: readonly BatchViewer[],
  keyCount: number,
  rlsEnabled: boolean,
  xids: readonly number[],
  opts: BatchOptions,
): Promise<BatchOutcome | typeof NOT_VISIBLE> {
  const lookup = keys.length > 0;
  const everyKey = (): Set<number> => new Set(Array.from({ length: keyCount }, (_k, i) => i));
  let unavailable = false;
  const result = await inRolledBackTransaction(
    pool,
    async (client) => {
      try {
        return (
          await client.query<Row>(
            `SELECT viewer, columns::text, keys_found::text, error_state, error_message
               FROM realtime.performer_visible_keys($1::oid::regclass, $2, $3, $4, $5, $6, $7, $8)`,
            [
            table.relationId,
            lookup ? table.primaryKey.map((pk) => pk.name) : [],
            keys,
            viewers.map((v) => roleOf(v.claims)),
            viewers.map((v) => v.claimsText),
            viewers.map((v) => subOf(v.claims)),
            viewers.map((v) => (lookup && v.keys ? `{${v.keys.map((k) => k + 1).join(',')}}` : null)),
            xids,
          ])
        ).rows;
      } catch (err) {
        // Not migrated yet (no function, no schema), or run by a role the function was not granted to.
        unavailable = ['42883', '42501', '3F000'].includes(sqlState(err) ?? '');
        throw err;
      }
    },
    { latencyMs: opts.latencyMs, begin: BEGIN_WITH_TIMEOUT },
  );
  if (!result.ok) return { ok: false, failure: result.failure, unavailable };
  if (result.value[0]?.viewer === -2) return NOT_VISIBLE;
  // The first row (with keys) lists every key as Postgres writes it; a viewer's row lists those it can see.
  const positions = new Map<string, number[]>();
  const rows = result.value;
  let at = 0;
  if (lookup) {
    const header = rows[at++];
    const all = header?.keys_found ? parseTextArray(header.keys_found) : null;
    if (header?.viewer !== -1 || all?.length !== keys.length) throw new Error('realtime.performer_visible_keys: unexpected answer');
    all.forEach((text, i) => {
      const list = positions.get(text);
      if (list) list.push(i);
      else positions.set(text, [i]);
    });
  }
  // Viewers with the same answer (a role's columns, a group's keys) share one value: one parse, and the dispatcher
  // builds a row's payload once per columns set.
  const answers = new Map<string, Visibility>();
  const columnSets = new Map<string, Set<string>>();
  const out: ViewerOutcome[] = [];
  for (let v = 0; v < viewers.length; v++) {
    const row = rows[at + v];
    if (row?.viewer !== v) throw new Error('realtime.performer_visible_keys: unexpected answer');
    if (row.error_state !== null) {
      out.push({ ok: false, failure: classify(Object.assign(new Error(row.error_message ?? ''), { code: row.error_state })) });
      continue;
    }
    if (row.columns === null) {
      out.push({ ok: true, value: DENIED });
      continue;
    }
    const answerKey = `${row.columns}\u0000${row.keys_found ?? ''}`;
    let value = answers.get(answerKey);
    if (!value) {
      let columns = columnSets.get(row.columns);
      if (!columns) columnSets.set(row.columns, (columns = new Set(parseTextArray(row.columns))));
      const pkReadable = table.primaryKey.every((pk) => columns.has(pk.name));
      let visible: Set<number>;
      if (!pkReadable) visible = new Set();
      else if (!rlsEnabled || !lookup) visible = everyKey();
      else {
        visible = new Set();
        for (const text of row.keys_found === null ? [] : parseTextArray(row.keys_found)) for (const i of positions.get(text) ?? []) visible.add(i);
      }
      answers.set(answerKey, (value = { visible, columns, pkReadable }));
    }
    out.push({ ok: true, value });
  }
  return { ok: true, value: out };
}

/** The role actAs would take: the `role` claim. */
function roleOf(claims: Record<string, unknown>): string {
  return typeof claims.role === 'string' ? claims.role : '';
}

function subOf(claims: Record<string, unknown>): string {
  return typeof claims.sub === 'string' ? claims.sub : '';
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
