/**
 * pgoutput text-mode tuples -> JSON text of each column value, as upstream delivers them: the value Postgres'
 * `to_jsonb` gives for the typed value (upstream casts each wal2json value back to its type and calls to_jsonb),
 * with one upstream exception: a `bytea` column is the hex string wal2json printed, without `\x` (§6.2).
 *
 * Values are written as JSON text directly; numbers are never parsed into JS numbers, so int8 and numeric keep
 * every digit. A {@link RowPlan} is built once per relation (per Relation message) and picks each column's
 * renderer up front, keeping the per-row work to string concatenation.
 *
 * Assumes the replication session prints with DateStyle ISO, IntervalStyle postgres, bytea_output hex and
 * extra_float_digits >= 1 (the server defaults). timestamptz is re-rendered in UTC whatever the session zone.
 */
import { pgTimestampToIsoString } from '../pgoutput/time.js';
import type { PgTimestamp, RelationColumn, ReplicaIdentity, TupleData } from '../pgoutput/types.js';
import { timestamptzToJsonText, timestampToJsonText } from './datetime.js';
import { quoteJson } from './json-text.js';
import { parseArrayLiteral, type PgArray } from './pg-array.js';
import { resolveType, type PgTypeInfo, type TypeResolver } from './types.js';

export type ValueRenderer = (text: string) => string;

export interface PlanColumn {
  readonly index: number;
  readonly name: string;
  /** `"name":` ready to concatenate into an object. */
  readonly key: string;
  readonly type: PgTypeInfo;
  /** Part of the replica identity (pgoutput's key flag). */
  readonly isKey: boolean;
  readonly isPrimaryKey: boolean;
  readonly render: ValueRenderer;
}

export interface RowPlan {
  readonly columns: readonly PlanColumn[];
  readonly byName: ReadonlyMap<string, PlanColumn>;
  readonly hasPrimaryKey: boolean;
}

export interface RowPlanOptions {
  types?: TypeResolver;
  /**
   * Primary-key column names. Defaults to the replica identity key columns, which are the primary key only under the
   * default replica identity; required when `replicaIdentity` says otherwise.
   */
  primaryKey?: readonly string[];
  /** The Relation message's replica identity; anything but `default` needs `primaryKey`. */
  replicaIdentity?: ReplicaIdentity;
}

export interface RenderedRow {
  /** JSON text per column in relation order: `null` for SQL NULL, undefined for an unchanged TOAST value. */
  readonly values: ReadonlyArray<string | undefined>;
  /** Indexes of unchanged TOAST columns (absent from `values`). */
  readonly unchanged: readonly number[];
}

export class RenderError extends Error {
  override readonly name = 'RenderError';
}

/** @throws RenderError when the key flags cannot stand for the primary key and none was given. */
export function createRowPlan(columns: readonly RelationColumn[], opts: RowPlanOptions = {}): RowPlan {
  if (!opts.primaryKey && opts.replicaIdentity !== undefined && opts.replicaIdentity !== 'default') {
    // FULL flags every column, USING INDEX the index's, NOTHING none: none of them is the primary key.
    throw new RenderError(`primaryKey is required for replica identity ${opts.replicaIdentity}`);
  }
  const pk = opts.primaryKey ? new Set(opts.primaryKey) : null;
  const out: PlanColumn[] = columns.map((c, index) => {
    const type = resolveType(c.typeOid, opts.types);
    return {
      index,
      name: c.name,
      key: `${quoteJson(c.name)}:`,
      type,
      isKey: c.isKey,
      isPrimaryKey: pk ? pk.has(c.name) : c.isKey,
      render: columnRenderer(type, opts.types),
    };
  });
  return {
    columns: out,
    byName: new Map(out.map((c) => [c.name, c])),
    hasPrimaryKey: out.some((c) => c.isPrimaryKey),
  };
}

/** Renders one tuple. @throws RenderError on binary-format columns or a column count mismatch. */
export function renderTuple(plan: RowPlan, tuple: TupleData): RenderedRow {
  const cols = plan.columns;
  if (tuple.length !== cols.length) {
    throw new RenderError(`tuple has ${tuple.length} column(s), relation has ${cols.length}`);
  }
  const values: Array<string | undefined> = new Array(cols.length);
  let unchanged: number[] | undefined;
  for (let i = 0; i < cols.length; i++) {
    const v = tuple[i]!;
    switch (v.kind) {
      case 'text':
        values[i] = cols[i]!.render(v.value);
        break;
      case 'null':
        values[i] = 'null';
        break;
      case 'unchanged':
        values[i] = undefined;
        (unchanged ??= []).push(i);
        break;
      case 'binary':
        throw new RenderError(`column ${cols[i]!.name} arrived in binary format; stream with binary = false`);
    }
  }
  return { values, unchanged: unchanged ?? EMPTY };
}

const EMPTY: readonly number[] = Object.freeze([]);

/** `[{"name":"id","type":"int4"},...]` for the plan columns accepted by `include`, in attribute order. */
export function columnsJson(plan: RowPlan, include?: (c: PlanColumn) => boolean): string {
  let out = '[';
  for (const c of plan.columns) {
    if (include && !include(c)) continue;
    if (out.length > 1) out += ',';
    out += `{"name":${quoteJson(c.name)},"type":${quoteJson(c.type.name)}}`;
  }
  return `${out}]`;
}

/** Upstream's `commit_timestamp`: UTC, milliseconds, `Z` (`to_char(..., 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`). */
export function formatCommitTimestamp(ts: PgTimestamp): string {
  return pgTimestampToIsoString(ts, 'ms');
}

/** JSON text of one value of the given type, as a column value (bytea without `\x`). */
export function renderValue(type: PgTypeInfo, text: string, types?: TypeResolver): string {
  return columnRenderer(type, types)(text);
}

function columnRenderer(type: PgTypeInfo, types: TypeResolver | undefined): ValueRenderer {
  // Only a column of type bytea itself is wal2json's bare hex (upstream special-cases that type name); arrays and
  // domains over bytea go through to_jsonb, which keeps the `\x`.
  if (type.oid === 17) return (t) => quoteJson(t.startsWith('\\x') ? t.slice(2) : t);
  return renderer(type, types);
}

function renderer(type: PgTypeInfo, types: TypeResolver | undefined): ValueRenderer {
  switch (type.kind) {
    case 'int2':
    case 'int4':
    case 'int8':
    case 'json':
    case 'jsonb':
      return identity;
    case 'float4':
    case 'float8':
      return floatToJson;
    case 'numeric':
      return numericToJson;
    case 'bool':
      return boolToJson;
    case 'uuid':
      // uuid_out prints hex digits and dashes only: nothing to escape.
      return (t) => `"${t}"`;
    case 'timestamptz':
      return timestamptzToJson;
    case 'timestamp':
      return (t) => quoteJson(timestampToJsonText(t));
    case 'array':
      return arrayRenderer(type, types);
    default:
      return quoteJson;
  }
}

const identity: ValueRenderer = (t) => t;

function timestamptzToJson(text: string): string {
  // The UTC session's `2026-01-02 03:04:05+00` straight to its quoted form; anything else the long way.
  if (text.length >= 22 && text.charCodeAt(10) === 0x20 && text.charCodeAt(4) === 0x2d && text.endsWith('+00')) {
    return `"${text.slice(0, 10)}T${text.slice(11)}:00"`;
  }
  return quoteJson(timestamptzToJsonText(text));
}
const boolToJson: ValueRenderer = (t) => (t === 't' ? 'true' : 'false');

function numericToJson(text: string): string {
  // numeric_out never uses exponents; only the specials are not JSON numbers.
  return text === 'NaN' || text === 'Infinity' || text === '-Infinity' ? `"${text}"` : text;
}

/**
 * to_jsonb turns a float into a jsonb numeric by parsing its text with numeric_in, so exponents are expanded and
 * `-0` becomes `0`: `1e+100` -> `1` and 100 zeros, `1.5e-07` -> `0.00000015`.
 */
export function floatToJson(text: string): string {
  if (text === 'NaN' || text === 'Infinity' || text === '-Infinity') return `"${text}"`;
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return quoteJson(text);
  const sign = m[1]!;
  const intDigits = m[2]!;
  const fracDigits = m[3] ?? '';
  const exp = m[4] === undefined ? 0 : Number(m[4]);
  const digits = intDigits + fracDigits;
  const point = intDigits.length + exp;
  let whole: string;
  let frac: string;
  if (point <= 0) {
    whole = '0';
    frac = '0'.repeat(-point) + digits;
  } else if (point >= digits.length) {
    whole = digits + '0'.repeat(point - digits.length);
    frac = '';
  } else {
    whole = digits.slice(0, point);
    frac = digits.slice(point);
  }
  whole = whole.replace(/^0+(?=\d)/, '');
  const body = frac === '' ? whole : `${whole}.${frac}`;
  return sign && /[1-9]/.test(digits) ? `-${body}` : body;
}

function arrayRenderer(type: PgTypeInfo, types: TypeResolver | undefined): ValueRenderer {
  const element = resolveType(type.elementOid, types);
  const renderElement = renderer(element, types);
  const delimiter = type.delimiter;
  const walk = (node: PgArray): string => {
    let out = '[';
    for (let i = 0; i < node.length; i++) {
      if (i > 0) out += ',';
      const el = node[i]!;
      out += el === null ? 'null' : Array.isArray(el) ? walk(el) : renderElement(el);
    }
    return `${out}]`;
  };
  return (text) => walk(parseArrayLiteral(text, delimiter));
}
