/**
 * Checking a binding's filters against the table (what upstream's subscription trigger rejects, with its error
 * texts) and evaluating them against row images with Postgres semantics: each condition casts the literal to the
 * column's type and applies the operator; the row is visible only when every condition is TRUE, so a NULL result
 * (comparison with NULL) or a column missing from the image (unchanged TOAST) hides it. `not.` negates the result
 * (NULL stays NULL); for `is` and `isdistinct` that is exactly `IS NOT` / `IS NOT DISTINCT FROM`.
 *
 * Beyond upstream's trigger, operators Postgres could not apply at WAL time (where upstream's poller would fail)
 * are rejected up front: `=`-based operators on json, `in` on array columns, ILIKE on bytea, a LIKE pattern ending
 * in the escape character; ordering operators on types we cannot order (inet, ranges, geometric, user types
 * without enum labels) are rejected as unsupported.
 *
 * Filters run on the event loop for every changed row, so patterns are evaluated in time linear in the value: LIKE
 * by a bitset automaton (like.ts), regexes by RE2 (regex.ts). Patterns are bounded in length, regexes in compiled
 * size, and the regex constructs RE2 cannot run (back references, lookahead) are refused at subscription.
 */
import type { TupleData } from '../pgoutput/types.js';
import type { Filter, FilterOp } from './filter.js';
import { compileLike as compileLikePattern, type LikeMatcher } from './like.js';
import { characterLength, MAX_PATTERN_LENGTH, PatternError } from './pattern.js';
import { compileRegex, type RegexMatcher } from './regex.js';
import { isCastError, type CastError } from './scalars.js';
import { resolveType, type PgTypeInfo, type TypeResolver } from './types.js';
import { flattenArray, parseArrayLiteral } from './pg-array.js';
import { isRelativeLiteral, valueOps, type ArrayValue, type OpsContext, type ValueOps } from './value-ops.js';

export interface FilterColumn {
  readonly name: string;
  readonly typeOid: number;
}

export interface CompileOptions {
  types?: TypeResolver;
  /** has_column_privilege(role, table, column, 'SELECT'); absent = every column. */
  selectable?: (column: string) => boolean;
  /** Clock for `now`/`today` literals (ms since the epoch). */
  now?: () => number;
}

/** A rejected filter: Postgres' SQLSTATE, condition name and message (see {@link postgresErrorText}). */
export interface FilterCheckError extends CastError {
  readonly column: string;
}

export type CompileResult = { ok: true; filters: CompiledFilters } | { ok: false; error: FilterCheckError };

/** Row values in relation order: text, null for SQL NULL, undefined for a column missing from the image. */
export type RowValues = ReadonlyArray<string | null | undefined>;

export interface CompiledCondition {
  readonly filter: Filter;
  readonly index: number;
  /** The condition's SQL truth value for one column value (null = NULL). */
  test(value: string | null): boolean | null;
}

export interface CompiledFilters {
  readonly conditions: readonly CompiledCondition[];
  matches(values: RowValues): boolean;
  /** Same on a pgoutput tuple: unchanged-TOAST and binary columns count as missing. */
  matchesTuple(tuple: TupleData): boolean;
}

const raise = (column: string, message: string): FilterCheckError => ({
  column,
  sqlstate: 'P0001',
  condition: 'raise_exception',
  message,
});

const noOperator = (column: string, message: string): FilterCheckError => ({
  column,
  sqlstate: '42883',
  condition: 'undefined_function',
  message,
});

/** `ERROR P0001 (raise_exception) invalid column for filter x`: how upstream prints the Postgres error. */
export function postgresErrorText(err: CastError): string {
  return `ERROR ${err.sqlstate} (${err.condition}) ${err.message}`;
}

const IS_VALUES = new Set(['null', 'true', 'false', 'unknown']);
const SYMBOL: Partial<Record<FilterOp, string>> = { eq: '=', neq: '<>', lt: '<', lte: '<=', gt: '>', gte: '>=' };

/** Checks the filters against the table's columns and compiles them. Stops at the first error, as upstream. */
export function compileFilters(
  filters: readonly Filter[],
  columns: readonly FilterColumn[],
  opts: CompileOptions = {},
): CompileResult {
  const ctx: OpsContext = { types: opts.types, now: opts.now ?? Date.now };
  const conditions: CompiledCondition[] = [];
  for (const f of filters) {
    const index = columns.findIndex((c) => c.name === f.column);
    if (index < 0 || (opts.selectable && !opts.selectable(f.column))) {
      return { ok: false, error: raise(f.column, `invalid column for filter ${f.column}`) };
    }
    const type = resolveType(columns[index]!.typeOid, opts.types);
    const compiled = compileCondition(f, index, type, valueOps(type, ctx), ctx);
    if ('sqlstate' in compiled) return { ok: false, error: compiled };
    conditions.push(compiled);
  }
  return { ok: true, filters: compiledFilters(conditions) };
}

/** Upstream's trigger also rejects unknown or unreadable `select` columns. */
export function checkSelectColumns(
  select: readonly string[] | null,
  columns: readonly FilterColumn[],
  selectable?: (column: string) => boolean,
): FilterCheckError | null {
  for (const name of select ?? []) {
    if (!columns.some((c) => c.name === name) || (selectable && !selectable(name))) {
      return raise(name, `invalid column for select ${name}`);
    }
  }
  return null;
}

function compiledFilters(conditions: CompiledCondition[]): CompiledFilters {
  return {
    conditions,
    matches(values) {
      for (const c of conditions) {
        const v = values[c.index];
        if (v === undefined || c.test(v) !== true) return false;
      }
      return true;
    },
    matchesTuple(tuple) {
      for (const c of conditions) {
        const col = tuple[c.index];
        if (col === undefined) return false;
        const v = col.kind === 'text' ? col.value : col.kind === 'null' ? null : undefined;
        if (v === undefined || c.test(v) !== true) return false;
      }
      return true;
    },
  };
}

function compileCondition(
  f: Filter,
  index: number,
  type: PgTypeInfo,
  ops: ValueOps,
  ctx: OpsContext,
): CompiledCondition | FilterCheckError {
  const col = f.column;
  const make = (test: (v: string | null) => boolean | null): CompiledCondition => ({
    filter: f,
    index,
    test: f.negate ? (v) => negate(test(v)) : test,
  });

  switch (f.op) {
    case 'is': {
      if (!IS_VALUES.has(f.value)) {
        return raise(col, 'invalid value for is filter: must be null, true, false, or unknown');
      }
      if (f.value !== 'null' && type.kind !== 'bool') {
        return raise(col, `is ${f.value} filter requires a boolean column, got ${type.sqlName}`);
      }
      if (f.value === 'true') return make((v) => v === 't');
      if (f.value === 'false') return make((v) => v === 'f');
      return make((v) => v === null);
    }
    case 'like':
    case 'ilike':
      return compileLike(f, type, ops, make);
    case 'match':
    case 'imatch':
      return compileMatch(f, type, make);
    case 'in':
      return compileIn(f, type, ops, ctx, make);
    default: {
      const operand = literal(f, type, ops);
      if (isCastError(operand)) return { ...operand, column: col };
      if (!ops.hasEquality) {
        return noOperator(col, `operator does not exist: ${type.sqlName} ${SYMBOL[f.op] ?? '='} ${type.sqlName}`);
      }
      const ordering = f.op !== 'eq' && f.op !== 'neq' && f.op !== 'isdistinct';
      if (ordering && !ops.compare) return unsupported(col, f.op, type);
      const cmp = comparator(ops);
      const read = (v: string): unknown => ops.read(v);
      if (f.op === 'isdistinct') {
        return make((v) => (v === null ? true : nullable(cmp(read(v), operand()), (r) => r !== 0)));
      }
      const decide = DECIDE[f.op as keyof typeof DECIDE];
      return make((v) => (v === null ? null : nullable(cmp(read(v), operand()), decide)));
    }
  }
}

const DECIDE = {
  eq: (r: number) => r === 0,
  neq: (r: number) => r !== 0,
  lt: (r: number) => r < 0,
  lte: (r: number) => r <= 0,
  gt: (r: number) => r > 0,
  gte: (r: number) => r >= 0,
};

const negate = (r: boolean | null): boolean | null => (r === null ? null : !r);
const nullable = (r: number | null, decide: (r: number) => boolean): boolean | null => (r === null ? null : decide(r));

// A column value we cannot read (outside the forms we parse) counts as NULL: the row stays hidden.
function comparator(ops: ValueOps): (a: unknown, b: unknown) => number | null {
  const cmp = ops.compare;
  return (a, b) => {
    if (isCastError(a) || isCastError(b)) return null;
    if (cmp) return cmp(a, b);
    return a === b ? 0 : 1;
  };
}

// The cast literal, re-cast on every evaluation when it is relative to the clock (`now`, `today`).
function literal(f: Filter, type: PgTypeInfo, ops: ValueOps): (() => unknown) | CastError {
  const value = ops.cast(f.value);
  if (isCastError(value)) return value;
  return isRelativeLiteral(type, f.value) ? () => ops.cast(f.value) : () => value;
}

function compileIn(
  f: Filter,
  type: PgTypeInfo,
  ops: ValueOps,
  ctx: OpsContext,
  make: (t: (v: string | null) => boolean | null) => CompiledCondition,
): CompiledCondition | FilterCheckError {
  if (type.kind === 'array' || !ops.hasEquality) {
    const right = type.kind === 'array' ? elementName(type) : type.sqlName;
    return noOperator(f.column, `operator does not exist: ${type.sqlName} = ${right}`);
  }
  // Upstream casts the list to `<type>[]`; reuse the array machinery with this column type as the element.
  const arrayType: PgTypeInfo = {
    oid: 0,
    name: `_${type.name}`,
    sqlName: `${type.sqlName}[]`,
    kind: 'array',
    elementOid: type.oid,
    delimiter: type.delimiter,
  };
  const listOps = valueOps(arrayType, { types: (oid) => (oid === type.oid ? type : ctx.types?.(oid)), now: ctx.now });
  const list = listOps.cast(f.value);
  if (isCastError(list)) return { ...list, column: f.column };
  const arr = list as ArrayValue;
  if ((arr.dims[0] ?? 0) > 100) return raise(f.column, 'too many values for `in` filter. Maximum 100');
  const relative = flattenArray(parseArrayLiteral(f.value, type.delimiter)).some(
    (e) => e !== null && isRelativeLiteral(type, e),
  );
  const items = (): unknown[] => (relative ? (listOps.cast(f.value) as ArrayValue).items : arr.items);
  const cmp = comparator(ops);
  return make((v) => {
    const list = items();
    // `NULL = ANY('{}')` is false: with no elements there is nothing to be unknown about.
    if (v === null) return list.length === 0 ? false : null;
    const x = ops.read(v);
    let sawNull = false;
    for (const item of list) {
      const r = item === null ? null : cmp(x, item);
      if (r === null) sawNull = true;
      else if (r === 0) return true;
    }
    // `x = ANY(list)` is NULL, not false, when no element matched and some comparison was NULL.
    return sawNull ? null : false;
  });
}

function elementName(type: PgTypeInfo): string {
  return type.sqlName.endsWith('[]') ? type.sqlName.slice(0, -2) : type.sqlName;
}

// like/ilike need a `~~` operator whose left side is the column type (upstream's check): text, name, bpchar,
// bytea and citext.
const LIKE_KINDS = new Set(['text', 'name', 'bpchar', 'bytea', 'citext']);
// match/imatch need `~` with both sides of the column type: text and citext only (varchar is rejected upstream).
const MATCH_KINDS = new Set(['text', 'citext']);

// varchar and "char" share the `text` kind but have no operators of their own, so upstream rejects them.
const ownsTextOperators = (type: PgTypeInfo): boolean => type.kind !== 'text' || type.name === 'text';

function compileLike(
  f: Filter,
  type: PgTypeInfo,
  ops: ValueOps,
  make: (t: (v: string | null) => boolean | null) => CompiledCondition,
): CompiledCondition | FilterCheckError {
  if (!LIKE_KINDS.has(type.kind) || !ownsTextOperators(type)) {
    return raise(f.column, `operator ${f.op} requires a text-compatible column type, got ${type.sqlName}`);
  }
  const bytea = type.kind === 'bytea';
  if (bytea && f.op === 'ilike') return noOperator(f.column, 'operator does not exist: bytea ~~* bytea');
  let pattern = f.value;
  if (bytea) {
    const bytes = ops.cast(f.value);
    if (isCastError(bytes)) return { ...bytes, column: f.column };
    pattern = (bytes as Buffer).toString('latin1');
  }
  if (characterLength(pattern) > MAX_PATTERN_LENGTH) return tooLong(f);
  let matcher: LikeMatcher;
  try {
    matcher = compileLikePattern(pattern, f.op === 'ilike' || type.kind === 'citext');
  } catch (err) {
    if (!(err instanceof PatternError)) throw err;
    return { column: f.column, sqlstate: '22025', condition: 'invalid_escape_sequence', message: err.message };
  }
  const subject = bytea ? (v: string) => Buffer.from(v.slice(2), 'hex').toString('latin1') : (v: string) => v;
  return make((v) => (v === null ? null : matcher.test(subject(v))));
}

function compileMatch(
  f: Filter,
  type: PgTypeInfo,
  make: (t: (v: string | null) => boolean | null) => CompiledCondition,
): CompiledCondition | FilterCheckError {
  if (!MATCH_KINDS.has(type.kind) || !ownsTextOperators(type)) {
    return raise(f.column, `operator ${f.op} requires a text-compatible column type, got ${type.sqlName}`);
  }
  if (characterLength(f.value) > MAX_PATTERN_LENGTH) return tooLong(f);
  let matcher: RegexMatcher;
  try {
    matcher = compileRegex(f.value, f.op === 'imatch' || type.kind === 'citext');
  } catch (err) {
    if (!(err instanceof PatternError)) throw err;
    return raise(f.column, `invalid regular expression for ${f.op} filter: invalid regular expression: ${err.message}`);
  }
  return make((v) => (v === null ? null : matcher.test(v)));
}

// Patterns are bounded so that evaluating one stays cheap (the matchers are linear in the value, times the pattern).
function tooLong(f: Filter): FilterCheckError {
  return raise(f.column, `pattern for ${f.op} filter is too long. Maximum ${MAX_PATTERN_LENGTH} characters`);
}

function unsupported(column: string, op: FilterOp, type: PgTypeInfo): FilterCheckError {
  return {
    column,
    sqlstate: '0A000',
    condition: 'feature_not_supported',
    message: `filter operator ${op} is not supported on columns of type ${type.sqlName}`,
  };
}
