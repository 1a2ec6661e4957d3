import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import type { Observer } from '../observability/metrics.js';
import {
  bindingAcceptsAction,
  bindingMatchesTable,
  buildPreparedChangeData,
  compileFilters,
  createRowPlan,
  formatCommitTimestamp,
  renderTuple,
  type Binding,
  type Change,
  type ChangeType,
  type CompiledFilters,
  type PreparedView,
  type RenderedRow,
  type RowPlan,
  prepareView,
} from './changes/index.js';
import type { ChangesCatalog, TableMeta } from './changes-catalog.js';
import type { OutgoingChange } from '../shared/messages.js';
import type { ChangesSubscriber } from './changes-subscribers.js';
import type { Lsn, OldTuple, PgTimestamp, RelationMessage, TupleData } from './pgoutput/index.js';
import { RETRY_MS, VisibilityResolver, type Ask } from './changes-visibility.js';
import type { Visibility } from './visibility.js';

/** What a dispatch handed out: deliveries per subscriber, the targets with queued events, and how many events were queued. */
export interface Dispatched {
  deliveries: number;
  touched: ChangesSubscriber[];
  queued: number;
}

const NOTHING: Dispatched = Object.freeze({ deliveries: 0, touched: [], queued: 0 }) as never;

/** A dispatch whose changes are matched and whose visibility is known: ready to be handed out. */
export interface PreparedDispatch {
  readonly planned: readonly Planned[];
}

/** What the dispatcher measures: each changed row's payload once, and each visibility check. */
export interface ChangesMetrics {
  payloadBytes: Observer;
  authorizationMs: Observer;
}

/** The changes of one committed transaction. */
export interface CommittedChanges {
  changes: readonly RowChange[];
  commitTime: PgTimestamp;
  /** The transaction's id (pgoutput's 32-bit xid); 0 when unknown. */
  xid?: number;
  /** Where its commit record is (known once streamed): carried by its events, so a subscriber can say what it got. */
  commitLsn?: Lsn;
}

/** A committed transaction waiting for dispatch: where its commit record is, and the position that confirms it. */
export type PendingCommit = CommittedChanges & { commitLsn: Lsn; ackLsn: Lsn | null };

/** One row change of a committed transaction, as pgoutput delivered it. */
export interface RowChange {
  relation: RelationMessage;
  type: ChangeType;
  newTuple: TupleData | null;
  old: OldTuple | null;
}

interface RelationState {
  meta: TableMeta;
  plan: RowPlan;
  filters: WeakMap<Binding, CompiledFilters | null>;
}

interface Match {
  subscriber: ChangesSubscriber;
  ids: number[];
  select: readonly string[] | null;
  ask: Ask;
}

/**
 * Turns committed transactions into postgres_changes events: matches each change against the subscribers'
 * bindings and filters, asks RLS which rows each viewer may see (per table, all distinct claims in one call),
 * renders the row once, builds each distinct payload once, and hands it to the subscribers in commit order.
 */
export class ChangesDispatcher {
  private readonly relations = new Map<number, RelationState>();
  private readonly visibility: VisibilityResolver;

  constructor(
    private readonly catalog: ChangesCatalog,
    private readonly pool: () => Promise<pg.Pool>,
    private readonly log: Logger,
    private readonly metrics: ChangesMetrics | null = null,
    /** rlsBatch: every viewer of a table checked in one call (default); false: one transaction per viewer. */
    opts: { rlsBatch?: boolean } = {},
  ) {
    this.visibility = new VisibilityResolver(log, { batch: opts.rlsBatch ?? true, authorizationMs: metrics?.authorizationMs });
  }

  /** A Relation message: the table's shape or settings may have changed. */
  relationChanged(relation: RelationMessage): void {
    this.relations.delete(relation.relationId);
    this.catalog.invalidate(relation.relationId);
    this.visibility.forget(relation.relationId);
  }

  /**
   * Hands each subscriber its events of a batch of committed transactions, in commit order (queued: the caller
   * flushes `touched`); returns how many deliveries were made. Visibility is asked for the whole batch: per table,
   * one call for every distinct claims set (see changes-visibility.ts).
   */
  async dispatch(txns: readonly CommittedChanges[], subscribers: readonly ChangesSubscriber[]): Promise<Dispatched> {
    const prepared = await this.prepare(txns, subscribers);
    return prepared ? this.handOut(prepared) : NOTHING;
  }

  /**
   * The first half of a dispatch: matches the changes and asks for their visibility (tried again on failure, as a
   * whole: nothing was handed out yet). Null when nobody gets anything. Several may be under way at once; each is
   * handed out with {@link handOut}, in commit order.
   */
  async prepare(txns: readonly CommittedChanges[], subscribers: readonly ChangesSubscriber[]): Promise<PreparedDispatch | null> {
    if (subscribers.length === 0 || txns.length === 0) return null;
    // A failure before the hand-out (the tenant's pool unavailable, a catalog query on a lost connection) has
    // delivered nothing, so the whole batch is tried again; the stream holds back meanwhile.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.prepareOnce(txns, subscribers);
      } catch (err) {
        if (attempt >= RETRY_MS.length) throw err;
        this.log.warn({ err, error_code: 'UnableToDispatchChanges', attempt }, 'dispatching changes failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS[attempt]));
      }
    }
  }

  private async prepareOnce(txns: readonly CommittedChanges[], subscribers: readonly ChangesSubscriber[]): Promise<PreparedDispatch | null> {
    const planned: Planned[] = [];
    const asks = new Map<RelationState, Map<string, Ask>>();
    const fixed = new Map<RelationState, Map<ChangeType, FixedMatches>>();
    for (const txn of txns) {
      if (txn.changes.length === 0) continue;
      const commitTimestamp = formatCommitTimestamp(txn.commitTime);
      for (const change of txn.changes) {
        // Known relations are looked up without an await: one microtask per row adds up over a backlog.
        const state = this.relations.get(change.relation.relationId) ?? (await this.relationState(change.relation));
        if (!state) continue;
        const matches = this.match(change, state, subscribers, asks, fixed);
        if (matches.length > 0) planned.push({ change, state, matches, commitTimestamp, xid: txn.xid ?? 0, commitLsn: txn.commitLsn });
      }
    }
    if (planned.length === 0) return null;
    await this.resolveVisibility(planned, asks);
    return { planned };
  }

  /** The second half: builds each distinct payload once and queues the events, per subscriber in commit order. */
  handOut({ planned }: PreparedDispatch): Dispatched {
    let deliveries = 0;
    const payloadBytes = this.metrics?.payloadBytes;
    // Frames are collected per subscriber and handed over together: one socket write per subscriber and transaction.
    const outbox = new Map<ChangesSubscriber, OutgoingChange[]>();
    for (let rowIndex = 0; rowIndex < planned.length; rowIndex++) {
      const { change, state, matches, commitTimestamp, commitLsn } = planned[rowIndex]!;
      const record = change.newTuple ? renderTuple(state.plan, change.newTuple) : undefined;
      const oldRow = change.old ? { kind: change.old.kind, row: renderTuple(state.plan, change.old.tuple) } : null;
      const full: Change = {
        type: change.type,
        schema: state.meta.schema,
        table: state.meta.name,
        commitTimestamp,
        plan: state.plan,
        record: record as RenderedRow | undefined,
        old: oldRow,
        rlsEnabled: state.meta.rlsEnabled,
      };
      // Built once per distinct view of the row (viewers whose column privileges are the same share one), and each
      // payload once per distinct ids list of that view.
      const byView = matches.length > 1 ? new Map<PreparedView, { data: string; payloads: Map<string, OutgoingChange> }>() : null;
      let sized = false;
      for (const m of matches) {
        const vis = m.ask.visibility;
        if (!vis) continue;
        // DELETE cannot be checked against RLS (the row is gone): upstream delivers it with the key only.
        if (change.type !== 'DELETE' && state.meta.rlsEnabled && vis.pkReadable && !vis.visible.has(rowIndex)) continue;
        const idsJson = m.subscriber.legacy ? null : idsText(m.ids);
        let item: OutgoingChange;
        if (byView === null) {
          // One subscriber for this row (the common case): nothing to share.
          item = { type: change.type, data: buildPreparedChangeData(full, preparedView(m, vis)), idsJson, commitLsn };
        } else {
          const prepared = preparedView(m, vis);
          let view = byView.get(prepared);
          if (!view) byView.set(prepared, (view = { data: buildPreparedChangeData(full, prepared), payloads: new Map() }));
          const idsKey = idsJson ?? 'legacy';
          let shared = view.payloads.get(idsKey);
          if (!shared) view.payloads.set(idsKey, (shared = { type: change.type, data: view.data, idsJson, commitLsn }));
          item = shared;
        }
        if (payloadBytes && !sized) {
          sized = true;
          payloadBytes.observe(Buffer.byteLength(item.data));
        }
        let queue = outbox.get(m.subscriber);
        if (!queue) outbox.set(m.subscriber, (queue = []));
        queue.push(item);
        deliveries += m.subscriber.weight ?? 1;
      }
    }
    let queued = 0;
    for (const [subscriber, items] of outbox) {
      subscriber.deliverMany(items);
      queued += items.length;
    }
    return { deliveries, touched: [...outbox.keys()], queued };
  }

  private async relationState(relation: RelationMessage): Promise<RelationState | null> {
    const known = this.relations.get(relation.relationId);
    if (known) return known;
    const meta = await this.catalog.table(relation.relationId);
    if (!meta) return null;
    await this.catalog.ensureTypes(relation.columns.map((c) => c.typeOid));
    const plan = createRowPlan(relation.columns, {
      types: this.catalog.resolveType,
      primaryKey: meta.primaryKey.map((c) => c.name),
      replicaIdentity: relation.replicaIdentity,
    });
    const state: RelationState = { meta, plan, filters: new WeakMap() };
    this.relations.set(relation.relationId, state);
    return state;
  }

  /**
   * The subscribers a change goes to. Whether a subscriber without filters on the table matches depends only on the
   * table and the action: those matches are worked out once per batch and shared by every such row (with many
   * viewers under RLS, one object per row and viewer was most of the dispatcher's garbage).
   */
  private match(
    change: RowChange,
    state: RelationState,
    subscribers: readonly ChangesSubscriber[],
    asks: Map<RelationState, Map<string, Ask>>,
    fixed: Map<RelationState, Map<ChangeType, FixedMatches>>,
  ): Match[] {
    let byType = fixed.get(state);
    if (!byType) fixed.set(state, (byType = new Map()));
    let known = byType.get(change.type);
    if (!known) {
      known = { matches: [], filtered: [] };
      for (const subscriber of subscribers) {
        if (this.hasFilters(subscriber, state, change.type)) known.filtered.push(subscriber);
        else {
          const m = this.matchOne(change, state, subscriber, asks);
          if (m) known.matches.push(m);
        }
      }
      byType.set(change.type, known);
    }
    if (known.filtered.length === 0) return known.matches;
    const out = known.matches.slice();
    for (const subscriber of known.filtered) {
      const m = this.matchOne(change, state, subscriber, asks);
      if (m) out.push(m);
    }
    return out;
  }

  /** Whether one of the subscriber's bindings for this table and action has filters (its match depends on the row). */
  private hasFilters(subscriber: ChangesSubscriber, state: RelationState, type: ChangeType): boolean {
    const { schema, name } = state.meta;
    return subscriber.bindings.some((b) => b.filters.length > 0 && bindingMatchesTable(b, schema, name) && bindingAcceptsAction(b, type));
  }

  private matchOne(change: RowChange, state: RelationState, subscriber: ChangesSubscriber, asks: Map<RelationState, Map<string, Ask>>): Match | null {
    const { schema, name } = state.meta;
    const tuple = change.type === 'DELETE' ? (change.old?.tuple ?? null) : change.newTuple;
    {
      let ids: number[] | null = null;
      let select: readonly string[] | null | undefined;
      for (const binding of subscriber.bindings) {
        if (!bindingMatchesTable(binding, schema, name) || !bindingAcceptsAction(binding, change.type)) continue;
        if (binding.filters.length > 0) {
          const compiled = this.filtersFor(binding, change.relation, state);
          if (!compiled || tuple === null || !compiled.matchesTuple(tuple)) continue;
        }
        (ids ??= []).push(binding.id);
        // Several matching bindings with different column selections: the widest wins.
        select = select === undefined ? binding.select : select === null || binding.select === null ? null : [...new Set([...select, ...binding.select])];
      }
      return ids ? { subscriber, ids: ids.reverse(), select: select ?? null, ask: askFor(asks, state, subscriber.claims) } : null;
    }
  }

  private filtersFor(binding: Binding, relation: RelationMessage, state: RelationState): CompiledFilters | null {
    let compiled = state.filters.get(binding);
    if (compiled === undefined) {
      const result = compileFilters(binding.filters, relation.columns, { types: this.catalog.resolveType });
      compiled = result.ok ? result.filters : null;
      state.filters.set(binding, compiled);
    }
    return compiled;
  }

  /** One visibility question per (table, viewer claims) for the whole batch; the answer lands on the ask. */
  private async resolveVisibility(planned: Planned[], asks: Map<RelationState, Map<string, Ask>>): Promise<void> {
    planned.forEach(({ matches }, rowIndex) => {
      for (const m of matches) if (m.ask.rows[m.ask.rows.length - 1] !== rowIndex) m.ask.rows.push(rowIndex);
    });
    const all: Ask[] = [];
    for (const byClaims of asks.values()) for (const ask of byClaims.values()) all.push(ask);
    await this.visibility.resolve(await this.pool(), planned, all);
  }
}

/**
 * What a match's viewer sees of its table: built once per (row plan, column privileges, select). Viewers of one
 * role get the same `columns` set from a visibility check, so they share a view, and a row's payload for that view is
 * built once for all of them.
 */
const views = new WeakMap<RowPlan, WeakMap<ReadonlySet<string>, Map<string, PreparedView>>>();
function preparedView(m: Match, vis: Visibility): PreparedView {
  const plan = m.ask.state.plan;
  let byColumns = views.get(plan);
  if (!byColumns) views.set(plan, (byColumns = new WeakMap()));
  let bySelect = byColumns.get(vis.columns);
  if (!bySelect) byColumns.set(vis.columns, (bySelect = new Map()));
  const key = m.select ? m.select.join('\u0000') : '*';
  let view = bySelect.get(key);
  if (!view) bySelect.set(key, (view = prepareView(plan, { select: m.select, selectable: (c) => vis.columns.has(c) })));
  return view;
}

/** `[1,2]`; the single-id list of the common one-binding channel is cached. */
const singleIds = new Map<number, string>();
function idsText(ids: readonly number[]): string {
  if (ids.length !== 1) return `[${ids.join(',')}]`;
  let text = singleIds.get(ids[0]!);
  if (text === undefined) {
    if (singleIds.size > 10_000) singleIds.clear();
    singleIds.set(ids[0]!, (text = `[${ids[0]}]`));
  }
  return text;
}

/** A batch's matches of one table and action: the subscribers without filters, and those matched row by row. */
interface FixedMatches {
  matches: Match[];
  filtered: ChangesSubscriber[];
}

interface Planned {
  commitLsn: Lsn | undefined;
  change: RowChange;
  state: RelationState;
  matches: Match[];
  xid: number;
  commitTimestamp: string;
}

// Claims objects are replaced, never mutated, when a token is refreshed: their text can be cached by identity.
const claimsTexts = new WeakMap<object, string>();

export function claimsText(claims: Record<string, unknown>): string {
  let text = claimsTexts.get(claims);
  if (text === undefined) claimsTexts.set(claims, (text = JSON.stringify(claims)));
  return text;
}

/** Subscribers with equal claims (distinct objects, same content) share one ask per table. */
function askFor(asks: Map<RelationState, Map<string, Ask>>, state: RelationState, claims: Record<string, unknown>): Ask {
  let byClaims = asks.get(state);
  if (!byClaims) asks.set(state, (byClaims = new Map()));
  const text = claimsText(claims);
  let ask = byClaims.get(text);
  if (!ask) byClaims.set(text, (ask = { state, claims, claimsText: text, rows: [], visibility: null }));
  return ask;
}
