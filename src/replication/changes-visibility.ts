import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import type { Observer } from '../observability/metrics.js';
import type { RowPlan } from './changes/index.js';
import type { TableMeta } from './changes-catalog.js';
import type { TupleData } from './pgoutput/index.js';
import { checkVisibilityBatch, type ViewerOutcome } from './rls-batch.js';
import { checkVisibility, untilVisible, type Visibility } from './visibility.js';

/** How long a dispatch waits for its transactions to become visible before checking RLS anyway. */
const VISIBLE_WAIT_MS = 10_000;

/** Waits between attempts of a failed visibility check (about 3 s in all). */
export const RETRY_MS = [50, 150, 400, 800, 1600];

/** Column privileges of tables without RLS change rarely: cached briefly so that those tables cost no query. */
const PRIVILEGE_TTL_MS = 5000;

/** After the batched check turned out to be missing or not runnable, the per-viewer check serves this long. */
const UNAVAILABLE_MS = 60_000;

/** A table of a dispatch as the visibility check needs it. */
export interface AskedTable {
  meta: TableMeta;
  plan: RowPlan;
}

/** A changed row of a dispatch, as far as the visibility check is concerned. */
export interface AskedRow {
  change: { type: string; newTuple: TupleData | null };
  state: AskedTable;
  xid: number;
}

/** The visibility question of one (table, claims) pair in a dispatch: the rows it covers, then the answer. */
export interface Ask {
  state: AskedTable;
  claims: Record<string, unknown>;
  claimsText: string;
  /** Positions (into the dispatch's rows) this viewer asks about, ascending. */
  rows: number[];
  visibility: Visibility | null;
}

export interface VisibilityOptions {
  /** Check all viewers of a table in one call (realtime.performer_visible_keys); false: one transaction each. */
  batch: boolean;
  authorizationMs?: Observer;
}

/**
 * Answers a dispatch's asks: first waits until the batch's transactions are visible to new snapshots (rows are
 * looked up in the table), then, per table, asks Postgres for every viewer at once. A viewer whose check failed,
 * or every viewer when the batched call failed or is unavailable, is asked alone with retries, as before batching.
 */
export class VisibilityResolver {
  private readonly privileges = new Map<string, { at: number; value: Visibility }>();
  private readonly unavailable = new WeakMap<pg.Pool, number>();

  constructor(
    private readonly log: Logger,
    private readonly opts: VisibilityOptions,
  ) {}

  /** A relation changed: what was cached about it goes. */
  forget(relationId: number): void {
    for (const key of [...this.privileges.keys()]) if (key.startsWith(`${relationId}:`)) this.privileges.delete(key);
  }

  async resolve(pool: pg.Pool, rows: readonly AskedRow[], asks: readonly Ask[]): Promise<void> {
    const set = new Set<number>();
    for (const { change, state, xid } of rows) if (state.meta.rlsEnabled && change.type !== 'DELETE' && xid !== 0) set.add(xid);
    const xids = [...set];
    // The batched call waits itself (one round trip less); checks made one viewer at a time wait here first, once.
    let waited: Promise<void> | null = null;
    const visible = () =>
      (waited ??= (async () => {
        if (xids.length > 0 && !(await untilVisible(pool, xids, VISIBLE_WAIT_MS))) this.notYetVisible(xids.length);
      })());
    const batch = this.opts.batch && Date.now() >= (this.unavailable.get(pool) ?? 0);
    if (!batch) await visible();
    const byTable = new Map<AskedTable, Ask[]>();
    for (const ask of asks) {
      let list = byTable.get(ask.state);
      if (!list) byTable.set(ask.state, (list = []));
      list.push(ask);
    }
    await Promise.all([...byTable].map(([state, list]) => this.resolveTable(pool, rows, state, list, batch ? xids : null, visible)));
  }

  private notYetVisible(xids: number): void {
    this.log.warn({ error_code: 'ChangesNotYetVisible', xids }, 'committed transactions still invisible to new snapshots (synchronous standby not answering?); checking RLS anyway');
  }

  /** batchXids: check every viewer in one call, which first waits for these transactions; null: one at a time. */
  private async resolveTable(pool: pg.Pool, rows: readonly AskedRow[], state: AskedTable, asks: Ask[], batchXids: number[] | null, whenVisible: () => Promise<void>): Promise<void> {
    const meta = state.meta;
    let pending = asks;
    if (!meta.rlsEnabled) {
      // Without RLS only the column privileges matter, and they depend on the role alone.
      pending = asks.filter((ask) => {
        const cached = this.privileges.get(privilegeKey(meta.relationId, ask.claims));
        if (!cached || Date.now() - cached.at >= PRIVILEGE_TTL_MS) return true;
        ask.visibility = cached.value;
        return false;
      });
      if (pending.length === 0) return;
    }
    // The rows any viewer asks about (a DELETE cannot be checked: the row is gone), their keys in key order.
    const positions: number[] = [];
    const keyIndex = new Map<number, number>();
    const asked = new Set<number>();
    if (meta.rlsEnabled) {
      for (const ask of pending) for (const i of ask.rows) asked.add(i);
      for (const i of [...asked].sort((a, b) => a - b)) {
        if (rows[i]!.change.type === 'DELETE' || !rows[i]!.change.newTuple) continue;
        keyIndex.set(i, positions.length);
        positions.push(i);
      }
    }
    const keys = positions.map((i) => keyOf(rows[i]!));
    // The keys an ask's rows have (indexes into keys); undefined when it asks about every row any viewer asks about.
    const ownKeys = (ask: Ask): number[] | undefined => {
      if (ask.rows.length === asked.size) return undefined;
      const own: number[] = [];
      for (const i of ask.rows) {
        const k = keyIndex.get(i);
        if (k !== undefined) own.push(k);
      }
      return own;
    };
    let outcomes: (ViewerOutcome | null)[] = pending.map(() => null);
    if (batchXids) {
      const viewers = pending.map((ask) => ({ claims: ask.claims, claimsText: ask.claimsText, keys: ownKeys(ask) }));
      const result = await checkVisibilityBatch(pool, meta, keys, viewers, meta.rlsEnabled, {
        latencyMs: this.opts.authorizationMs,
        xids: batchXids,
        visibleWaitMs: VISIBLE_WAIT_MS,
      });
      if (result.ok) {
        outcomes = result.value;
        if (result.late) this.notYetVisible(batchXids.length);
      } else {
        if (result.unavailable) this.unavailable.set(pool, Date.now() + UNAVAILABLE_MS);
        this.log.warn(
          { error_code: result.failure.code, reason: result.failure.message, table: meta.name, viewers: pending.length },
          'batched postgres changes visibility check failed; checking each viewer on its own',
        );
      }
    }
    await Promise.all(
      pending.map(async (ask, n) => {
        let outcome = outcomes[n]!;
        // Asked alone (and again, while it fails) before the viewer's rows are given up: nothing is confirmed while
        // this waits, and the stream holds back behind it.
        if (!outcome?.ok) {
          await whenVisible();
          const own = ownKeys(ask) ?? keys.map((_k, i) => i);
          outcome = await this.checkAlone(pool, meta, own.map((k) => keys[k]!), ask, outcome?.failure);
          if (outcome.ok) outcome = { ok: true, value: { ...outcome.value, visible: new Set([...outcome.value.visible].map((k) => own[k]!)) } };
        }
        if (!outcome.ok) {
          this.log.error(
            { error_code: outcome.failure.code, reason: outcome.failure.message, table: meta.name, rows: ask.rows.length },
            'postgres changes visibility check kept failing; these rows are not delivered to this viewer',
          );
          return;
        }
        // Key indexes back to row positions of the dispatch.
        const visible = new Set<number>();
        for (const k of outcome.value.visible) if (positions[k] !== undefined) visible.add(positions[k]!);
        const value: Visibility = { ...outcome.value, visible };
        if (!meta.rlsEnabled) this.privileges.set(privilegeKey(meta.relationId, ask.claims), { at: Date.now(), value });
        ask.visibility = value;
      }),
    );
  }

  /** One viewer in its own transaction, tried again while it fails; `failed`: why the batched check did not answer. */
  private async checkAlone(pool: pg.Pool, meta: TableMeta, keys: (string | null)[][], ask: Ask, failed?: { code: string; message: string }): Promise<ViewerOutcome> {
    const check = () => checkVisibility(pool, meta, keys, { claims: ask.claims }, meta.rlsEnabled, { latencyMs: this.opts.authorizationMs });
    if (failed) this.log.warn({ error_code: failed.code, reason: failed.message, table: meta.name }, 'postgres changes visibility check failed for one viewer; retrying');
    let result = await check();
    for (let attempt = 0; !result.ok && attempt < RETRY_MS.length; attempt++) {
      this.log.warn({ error_code: result.failure.code, reason: result.failure.message, table: meta.name, attempt }, 'postgres changes visibility check failed; retrying');
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS[attempt]));
      result = await check();
    }
    return result;
  }
}

/** Column privileges follow the role: the `role` claim, as actAs takes it. */
function privilegeKey(relationId: number, claims: Record<string, unknown>): string {
  return `${relationId}:${typeof claims.role === 'string' ? claims.role : ''}`;
}

/** The row's primary key values as text, in key order (the order of `meta.primaryKey`). */
function keyOf(row: AskedRow): (string | null)[] {
  const tuple = row.change.newTuple!;
  return row.state.meta.primaryKey.map((pk) => {
    const col = row.state.plan.byName.get(pk.name);
    const value = col ? tuple[col.index] : undefined;
    return value && value.kind === 'text' ? value.value : null;
  });
}
