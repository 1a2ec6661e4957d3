/**
 * The `postgres_changes` payload (§6.2) as JSON text. The `data` object depends only on the change and on the
 * subscriber's view of it (its column privileges and `select`), so the caller builds it once per distinct view
 * and wraps it once per distinct `ids` list with {@link changePayloadParts}; legacy (§6.8) subscribers get the
 * bare data object.
 *
 * The record rules follow upstream's apply_rls: columns the role cannot SELECT are left out everywhere; with a
 * `select`, only selected and primary-key columns remain; unchanged TOAST values are filled from a full old image;
 * DELETE on a table with RLS enabled keeps only the primary key in `old_record`; INSERT/UPDATE on a table without a
 * primary key, or whose primary key the role cannot read, become the 400/401 error shapes; a change larger than
 * `maxRecordBytes` keeps only fields whose jsonb text is at most 64 bytes and carries the 413 error.
 *
 * Key order follows the spec's example (schema, table, commit_timestamp, type, columns, record, old_record,
 * errors) and record keys follow attribute order. Upstream's order differs (its encoder sorts keys) and clients
 * do not depend on it.
 */
import { jsonbTextLength, quoteJson, utf8Length } from './json-text.js';
import { columnsJson, type PlanColumn, type RenderedRow, type RowPlan } from './render.js';

export type ChangeType = 'INSERT' | 'UPDATE' | 'DELETE';

/** Default `poll_max_record_bytes` upstream (1 MiB). */
export const DEFAULT_MAX_RECORD_BYTES = 1_048_576;
/** Largest jsonb text of a field kept under the 413 fallback. */
export const OVERSIZE_FIELD_BYTES = 64;

export const ERROR_413 = 'Error 413: Payload Too Large';
export const ERROR_400 = 'Error 400: Bad Request, no primary key';
export const ERROR_401 = 'Error 401: Unauthorized';

export interface Change {
  type: ChangeType;
  schema: string;
  table: string;
  /** Already formatted (see formatCommitTimestamp). */
  commitTimestamp: string;
  plan: RowPlan;
  /** New image: INSERT and UPDATE. */
  record?: RenderedRow;
  /**
   * Old image as pgoutput sent it (UPDATE, DELETE): `key` = identity columns only (the others arrive as nulls),
   * `full` = REPLICA IDENTITY FULL. For an UPDATE that did not change the key pgoutput sends none: pass null and
   * the identity columns are taken from the new image, as wal2json's `identity` does.
   */
  old?: { kind: 'key' | 'full'; row: RenderedRow } | null;
  /** Row level security enabled on the table. */
  rlsEnabled?: boolean;
  /** Size of the change for the 413 check; defaults to {@link estimateRecordBytes}. */
  recordBytes?: number;
}

export interface SubscriberView {
  /** The binding's `select` (null/undefined = every column). */
  select?: readonly string[] | null;
  /** has_column_privilege(role, table, column, 'SELECT'); absent = every column readable. */
  selectable?: (column: string) => boolean;
  maxRecordBytes?: number;
}

/** Which error shape, if any, an INSERT/UPDATE takes for this view (DELETE never errors). */
export function changeError(change: Change, view: SubscriberView = {}): '400' | '401' | null {
  if (change.type === 'DELETE') return null;
  return writeError(change.plan, view.selectable);
}

function writeError(plan: RowPlan, selectable: ((column: string) => boolean) | undefined): '400' | '401' | null {
  if (!plan.hasPrimaryKey) return '400';
  if (selectable && plan.columns.some((c) => c.isPrimaryKey && !selectable(c.name))) return '401';
  return null;
}

/**
 * A subscriber view resolved against one row plan: the columns it shows and their `columns` JSON. It depends on
 * the table, the viewer's column privileges and `select`, not on the row, so a dispatch builds it once and reuses
 * it for every row of the table that viewer gets.
 */
export interface PreparedView {
  readonly plan: RowPlan;
  /** Columns the viewer may see, in attribute order. */
  readonly shown: readonly PlanColumn[];
  readonly columnsJson: string;
  /** The error shape an INSERT or UPDATE takes for this viewer. */
  readonly writeError: '400' | '401' | null;
  readonly maxRecordBytes: number;
}

export function prepareView(plan: RowPlan, view: SubscriberView = {}): PreparedView {
  const selectable = view.selectable;
  const select = view.select ? new Set(view.select) : null;
  const shown = plan.columns.filter((c) => (!selectable || selectable(c.name)) && (select === null || select.has(c.name) || c.isPrimaryKey));
  return {
    plan,
    shown,
    columnsJson: shown.length === plan.columns.length ? allColumnsJson(plan) : columnsJson(plan, (c) => shown.includes(c)),
    writeError: writeError(plan, selectable),
    maxRecordBytes: view.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES,
  };
}

/** The `data` object of §6.2 as JSON text. */
export function buildChangeData(change: Change, view: SubscriberView = {}): string {
  return buildPreparedChangeData(change, prepareView(change.plan, view));
}

/** {@link buildChangeData} for a view prepared for `change.plan`. */
export function buildPreparedChangeData(change: Change, view: PreparedView): string {
  const head = headOf(change);
  const type = `"type":"${change.type}"`;
  const error = change.type === 'DELETE' ? null : view.writeError;
  if (error !== null) {
    const old = change.type === 'UPDATE' ? ',"old_record":{}' : '';
    const message = error === '400' ? ERROR_400 : ERROR_401;
    return `${head}null,${type},"columns":[],"record":{}${old},"errors":[${quoteJson(message)}]}`;
  }

  const limit = view.maxRecordBytes;
  const tooLarge = change.recordBytes !== undefined ? change.recordBytes > limit : exceedsLimit(change, limit);
  // Pieces joined once: a flat string, where a chain of concatenations would leave a rope of dozens of nodes
  // that every socket write (UTF-8 conversion) first has to flatten.
  const parts = [head, quotedTimestamp(change.commitTimestamp), ',', type, ',"columns":', view.columnsJson];
  if (change.type !== 'DELETE') {
    parts.push(',"record":');
    newRecord(parts, change, view.shown, tooLarge);
  }
  if (change.type !== 'INSERT') {
    parts.push(',"old_record":');
    oldRecord(parts, change, view.shown, tooLarge);
  }
  parts.push(',"errors":', tooLarge ? `[${quoteJson(ERROR_413)}]` : 'null', '}');
  return parts.join('');
}

// Every change of a relation starts the same way, and every change of a transaction has the same timestamp.
const heads = new WeakMap<RowPlan, { schema: string; table: string; head: string }>();
function headOf(change: Change): string {
  const known = heads.get(change.plan);
  if (known && known.schema === change.schema && known.table === change.table) return known.head;
  const head = `{"schema":${quoteJson(change.schema)},"table":${quoteJson(change.table)},"commit_timestamp":`;
  heads.set(change.plan, { schema: change.schema, table: change.table, head });
  return head;
}

let lastTimestamp = '';
let lastQuotedTimestamp = '""';
function quotedTimestamp(timestamp: string): string {
  if (timestamp !== lastTimestamp) {
    lastTimestamp = timestamp;
    lastQuotedTimestamp = quoteJson(timestamp);
  }
  return lastQuotedTimestamp;
}

// The unrestricted column list is the same for every change of a relation; build it once per plan.
const allColumns = new WeakMap<RowPlan, string>();
function allColumnsJson(plan: RowPlan): string {
  let json = allColumns.get(plan);
  if (json === undefined) allColumns.set(plan, (json = columnsJson(plan)));
  return json;
}

/**
 * The pieces of the new-API event payload `{"ids":[...],"data":...}` around a data object from
 * {@link buildChangeData}, for a caller that joins them into a larger frame in one go.
 */
export function changePayloadParts(idsJson: string, data: string): string[] {
  return ['{"ids":', idsJson, ',"data":', data, '}'];
}

// Under 413 upstream keeps a field only when octet_length(value::text) <= 64, and that is NULL (so dropped) for
// SQL NULLs and for values filled in from the old image.
const fitsOversize = (value: string): boolean => value !== 'null' && jsonbTextLength(value) <= OVERSIZE_FIELD_BYTES;

function newRecord(parts: string[], change: Change, shown: readonly PlanColumn[], tooLarge: boolean): void {
  const row = change.record;
  if (!row) return void parts.push('{}');
  let sep = '{';
  for (const c of shown) {
    let value = row.values[c.index];
    let filled = false;
    if (value === undefined) {
      value = change.old?.kind === 'full' ? change.old.row.values[c.index] : undefined;
      if (value === undefined) continue;
      filled = true;
    }
    if (tooLarge && (filled || !fitsOversize(value))) continue;
    parts.push(sep, c.key, value);
    sep = ',';
  }
  parts.push(sep === '{' ? '{}' : '}');
}

function oldRecord(parts: string[], change: Change, shown: readonly PlanColumn[], tooLarge: boolean): void {
  const pkOnly = change.type === 'DELETE' && change.rlsEnabled === true;
  let sep = '{';
  for (const c of shown) {
    if (pkOnly && !c.isPrimaryKey) continue;
    const value = oldValue(change, c);
    if (value === undefined || (tooLarge && !fitsOversize(value))) continue;
    parts.push(sep, c.key, value);
    sep = ',';
  }
  parts.push(sep === '{' ? '{}' : '}');
}

function oldValue(change: Change, c: PlanColumn): string | undefined {
  const old = change.old;
  if (old?.kind === 'full') return old.row.values[c.index];
  if (!c.isKey) return undefined;
  if (old) return old.row.values[c.index];
  return change.type === 'UPDATE' ? change.record?.values[c.index] : undefined;
}

// Cheap upper bound first (3 UTF-8 bytes per UTF-16 unit); count exactly only when it could be over the limit.
function exceedsLimit(change: Change, limit: number): boolean {
  let bound = 120 + 3 * (change.schema.length + change.table.length);
  for (const row of [change.record, change.old?.row]) {
    if (!row) continue;
    for (const c of change.plan.columns) {
      const v = row.values[c.index];
      if (v !== undefined) bound += 48 + 3 * (c.name.length + v.length) + c.type.sqlName.length;
    }
  }
  return bound > limit && estimateRecordBytes(change) > limit;
}

/**
 * Approximates the size of the wal2json record upstream measures (`octet_length(wal::text)`): its fixed keys plus,
 * per column of each image, the name, type, oid and value. Only the 1 MiB threshold matters, not exactness.
 */
export function estimateRecordBytes(change: Change): number {
  let n = 120 + utf8Length(change.schema) + utf8Length(change.table);
  const add = (row: RenderedRow | undefined): void => {
    if (!row) return;
    for (const c of change.plan.columns) {
      const v = row.values[c.index];
      if (v === undefined) continue;
      n += 48 + utf8Length(c.name) + c.type.sqlName.length + utf8Length(v);
    }
  };
  add(change.record);
  add(change.old?.row);
  return n;
}
