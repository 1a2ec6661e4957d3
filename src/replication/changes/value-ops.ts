/**
 * Per-type operations for filter evaluation: `cast` reads a filter literal like `'<literal>'::type` would (and
 * reports Postgres' error when it would fail), `read` reads a column value from pgoutput's text output, `compare`
 * is the type's btree order (null when we cannot order the type: only equality of the text form is offered then).
 */
import { isRelativeDateTime, parseDate, parseTimestamp, parseTime, parseTimetz } from './datetime.js';
import { parseIntervalSpan } from './interval.js';
import { compareJsonb, JsonSyntaxError, parseJsonb, type Jsonb } from './jsonb-value.js';
import { ArrayLiteralError, parseArrayLiteral, type PgArray } from './pg-array.js';
import {
  compareBigint,
  compareCodePoints,
  compareFloat,
  compareNumeric,
  invalidSyntax,
  isCastError,
  parseBool,
  parseBytea,
  parseFloat8,
  parseInteger,
  parseNumeric,
  parseUuid,
  stripTrailingSpaces,
  type CastError,
  type Numeric,
} from './scalars.js';
import { resolveType, type PgTypeInfo, type TypeResolver } from './types.js';

export interface ValueOps {
  readonly type: PgTypeInfo;
  cast(text: string): unknown;
  read(text: string): unknown;
  /** Total order, or null when only equality of text is supported for this type. */
  readonly compare: ((a: unknown, b: unknown) => number) | null;
  /** False for types without an `=` operator (json). */
  readonly hasEquality: boolean;
}

export interface OpsContext {
  types?: TypeResolver;
  now: () => number;
}

const datetimeLabel = {
  date: 'date',
  timestamp: 'timestamp',
  timestamptz: 'timestamp with time zone',
  time: 'time',
  timetz: 'time with time zone',
  interval: 'interval',
} as const;

function ops<T>(
  type: PgTypeInfo,
  cast: (text: string) => T | CastError,
  compare: ((a: T, b: T) => number) | null,
  read: (text: string) => T = (t) => cast(t) as T,
): ValueOps {
  return {
    type,
    cast,
    read,
    compare: compare as ((a: unknown, b: unknown) => number) | null,
    hasEquality: true,
  };
}

const orUndefined = <T>(label: string, parse: (t: string) => T | undefined) => (text: string): T | CastError => {
  const v = parse(text);
  if (v !== undefined) return v;
  return { ...invalidSyntax(label, text), sqlstate: '22007', condition: 'invalid_datetime_format' };
};

export function valueOps(type: PgTypeInfo, ctx: OpsContext): ValueOps {
  switch (type.kind) {
    case 'int2':
    case 'int4':
    case 'int8':
    case 'oid': {
      const kind = type.kind;
      return ops(type, (t) => parseInteger(t, kind), compareBigint, (t) => BigInt(t));
    }
    case 'numeric':
      return ops(type, parseNumeric, compareNumeric, (t) => parseNumeric(t) as Numeric);
    case 'float4':
    case 'float8': {
      const kind = type.kind;
      const read = kind === 'float4' ? (t: string) => Math.fround(Number(t)) : Number;
      return ops(type, (t) => parseFloat8(t, kind), compareFloat, read);
    }
    case 'bool':
      return ops(type, parseBool, (a, b) => Number(a) - Number(b), (t) => t === 't');
    case 'text':
    case 'name':
      return ops(type, (t) => t, compareCodePoints);
    case 'bpchar':
      return ops(type, stripTrailingSpaces, compareCodePoints);
    case 'citext':
      return ops(type, (t) => t.toLowerCase(), compareCodePoints);
    case 'enum':
      return enumOps(type);
    case 'uuid':
      return ops(type, parseUuid, compareCodePoints);
    case 'bytea':
      return ops(type, parseBytea, (a, b) => Buffer.compare(a, b));
    case 'date':
      return ops(type, orUndefined(datetimeLabel.date, (t) => parseDate(t, ctx.now())), (a, b) =>
        a < b ? -1 : a > b ? 1 : 0,
      );
    case 'timestamp':
    case 'timestamptz': {
      const withZone = type.kind === 'timestamptz';
      const cast = orUndefined(datetimeLabel[type.kind], (t) => parseTimestamp(t, withZone, ctx.now()));
      return ops(type, cast, compareBigint);
    }
    case 'time':
      return ops(type, orUndefined(datetimeLabel.time, (t) => parseTime(t)?.micros), compareBigint);
    case 'timetz':
      // Postgres orders timetz by UTC time, then by zone (seconds west, so a smaller offset sorts higher).
      return ops(type, orUndefined(datetimeLabel.timetz, parseTimetz), (a, b) => {
        return compareBigint(a.utc, b.utc) || b.zone - a.zone;
      });
    case 'interval':
      return ops(type, orUndefined(datetimeLabel.interval, parseIntervalSpan), compareBigint);
    case 'jsonb':
      return ops(type, castJson, compareJsonb);
    case 'json':
      return { ...ops(type, castJson, null), hasEquality: false };
    case 'array':
      return arrayOps(type, ctx);
    default:
      return ops(type, (t) => t, null);
  }
}

function castJson(text: string): Jsonb | CastError {
  try {
    return parseJsonb(text);
  } catch (err) {
    // Postgres reports json syntax errors without the input (the position goes into DETAIL).
    if (err instanceof JsonSyntaxError) {
      return { ...invalidSyntax('json', text), message: 'invalid input syntax for type json' };
    }
    throw err;
  }
}

function enumOps(type: PgTypeInfo): ValueOps {
  const labels = type.enumLabels;
  if (!labels) return ops(type, (t) => t, null);
  const cast = (t: string): number | CastError => {
    const i = labels.indexOf(t);
    return i >= 0
      ? i
      : { ...invalidSyntax('', t), message: `invalid input value for enum ${type.sqlName}: "${t}"` };
  };
  return ops(type, cast, (a, b) => a - b, (t) => labels.indexOf(t));
}

/** An array value: elements in row-major order plus the dimensions (Postgres compares both). */
export interface ArrayValue {
  items: unknown[];
  dims: number[];
}

function arrayOps(type: PgTypeInfo, ctx: OpsContext): ValueOps {
  const element = valueOps(resolveType(type.elementOid, ctx.types), ctx);
  const build = (text: string, each: (t: string) => unknown): ArrayValue | CastError => {
    let parsed: PgArray;
    try {
      parsed = parseArrayLiteral(text, type.delimiter);
    } catch (err) {
      if (err instanceof ArrayLiteralError) return { ...invalidSyntax('', text), message: err.message };
      throw err;
    }
    const items: unknown[] = [];
    const dims: number[] = [];
    const walk = (node: PgArray, depth: number): CastError | undefined => {
      dims[depth] = node.length;
      for (const el of node) {
        if (Array.isArray(el)) {
          const e = walk(el, depth + 1);
          if (e) return e;
        } else if (el === null) items.push(null);
        else {
          const v = each(el);
          if (isCastError(v)) return v;
          items.push(v);
        }
      }
      return undefined;
    };
    return walk(parsed, 0) ?? { items, dims };
  };
  const cmp = element.compare;
  const compare = cmp
    ? (a: ArrayValue, b: ArrayValue): number => {
        const n = Math.min(a.items.length, b.items.length);
        for (let i = 0; i < n; i++) {
          const x = a.items[i];
          const y = b.items[i];
          // Array comparison treats NULL elements as equal to each other and larger than any value.
          if (x === null || y === null) {
            if (x !== y) return x === null ? 1 : -1;
            continue;
          }
          const r = cmp(x, y);
          if (r !== 0) return r;
        }
        if (a.items.length !== b.items.length) return a.items.length - b.items.length;
        if (a.dims.length !== b.dims.length) return a.dims.length - b.dims.length;
        for (let d = 0; d < a.dims.length; d++) if (a.dims[d] !== b.dims[d]) return a.dims[d]! - b.dims[d]!;
        return 0;
      }
    : null;
  return {
    type,
    cast: (t) => build(t, (e) => element.cast(e)),
    read: (t) => build(t, (e) => element.read(e)),
    compare: compare as ((a: unknown, b: unknown) => number) | null,
    hasEquality: element.hasEquality,
  };
}

/** Literals whose value depends on when they are evaluated (`now`, `today`, ...) for date/time kinds. */
export function isRelativeLiteral(type: PgTypeInfo, text: string): boolean {
  const k = type.kind;
  return (k === 'date' || k === 'timestamp' || k === 'timestamptz') && isRelativeDateTime(text);
}
