/**
 * Row ranges from `limit`/`offset` (per embed path) and the `Range` header, combined as PostgREST's RangeQuery
 * does, plus the `Content-Range` header and 200/206/416 status of a read.
 */
import type { RowRange } from './ast.js';
import { RestError } from '../errors.js';

export const ALL_ROWS: RowRange = Object.freeze({ offset: 0n, upper: null });
/** The canonical empty range (Data.Ranged's emptyRange): never mistaken for `limit=0`. */
export const NO_ROWS: RowRange = Object.freeze({ offset: 1n, upper: 0n });
/** `limit=0`: rows 0..-1, allowed although empty. */
export const LIMIT_ZERO: RowRange = Object.freeze({ offset: 0n, upper: -1n });

export const isEmptyRange = (r: RowRange): boolean => r.upper !== null && r.upper < r.offset;
export const isAllRows = (r: RowRange): boolean => !isEmptyRange(r) && r.offset === 0n && r.upper === null;
export const hasLimitZero = (r: RowRange): boolean => r.upper === -1n;
/** Rows the range asks for, null when unbounded. */
export const rangeLimit = (r: RowRange): bigint | null => (r.upper === null ? null : 1n + r.upper - r.offset);

export function intersectRanges(a: RowRange, b: RowRange): RowRange {
  if (isEmptyRange(a) || isEmptyRange(b)) return NO_ROWS;
  const offset = a.offset > b.offset ? a.offset : b.offset;
  const upper = a.upper === null ? b.upper : b.upper === null ? a.upper : a.upper < b.upper ? a.upper : b.upper;
  return { offset, upper };
}

/** `restrictRange (Just n) r`: at most n rows from r's offset. */
export function restrictRange(limit: bigint, r: RowRange): RowRange {
  if (isEmptyRange(r)) return NO_ROWS;
  const cap = r.offset + limit - 1n;
  return { offset: r.offset, upper: r.upper === null || cap < r.upper ? cap : r.upper };
}

/**
 * Haskell's `readMaybe :: Maybe Integer`: white space, parentheses and a leading `-` allowed; decimal, `0x` or
 * `0o` digits; anything else (fractions, `+5`) is not a number. Bounded by the query length.
 */
export function readInteger(text: string): bigint | null {
  let s = text.trim();
  while (s.startsWith('(') && s.endsWith(')')) s = s.slice(1, -1).trim();
  let negative = false;
  if (s.startsWith('-')) {
    negative = true;
    s = s.slice(1).trim();
    while (s.startsWith('(') && s.endsWith(')')) s = s.slice(1, -1).trim();
  }
  let value: bigint;
  if (/^[0-9]+$/.test(s)) value = BigInt(s);
  else if (/^0[xX][0-9a-fA-F]+$/.test(s)) value = BigInt(s);
  else if (/^0[oO][0-7]+$/.test(s)) value = BigInt(`0o${s.slice(2)}`);
  else return null;
  return negative ? -value : value;
}

/** The range of `limit`/`offset` values for one embed path (either may be absent). */
export function rangeFromParams(limit: string | undefined, offset: string | undefined): RowRange {
  const limitRange = limit === undefined ? undefined : (() => {
    const n = readInteger(limit);
    return n === null ? ALL_ROWS : restrictRange(n, ALL_ROWS);
  })();
  const offsetRange = offset === undefined ? undefined : (() => {
    const n = readInteger(offset);
    return n === null ? ALL_ROWS : { offset: n, upper: null };
  })();
  if (limitRange && offsetRange) {
    const l = rangeLimit(limitRange) ?? 0n;
    const o = offsetRange.offset;
    return { offset: o, upper: o + l - 1n };
  }
  return limitRange ?? offsetRange ?? ALL_ROWS;
}

/** `Range: 0-19` / `Range: 10-`; anything else means all rows. */
export function parseRangeHeader(value: string | undefined): RowRange {
  if (value === undefined) return ALL_ROWS;
  const dash = value.indexOf('-');
  if (dash <= 0) return ALL_ROWS;
  const lower = value.slice(0, dash);
  const upper = value.slice(dash + 1);
  if (!/^[0-9]+$/.test(lower) || !/^[0-9]*$/.test(upper)) return ALL_ROWS;
  return { offset: BigInt(lower), upper: upper === '' ? null : BigInt(upper) };
}

/**
 * The top-level range of a request: the `Range` header (GET only, as upstream) intersected with `limit`/`offset`;
 * `limit=0` always wins. Throws PGRST103 for an empty range, PGRST114 for a limit on PUT.
 */
export function topLevelRange(method: string, rootRange: RowRange | undefined, rangeHeader: string | undefined): RowRange {
  const headerRange = method === 'GET' ? parseRangeHeader(rangeHeader) : ALL_ROWS;
  const limitRange = rootRange ?? ALL_ROWS;
  const combined = hasLimitZero(limitRange) ? LIMIT_ZERO : intersectRanges(headerRange, limitRange);
  if (isEmptyRange(combined) && !hasLimitZero(limitRange)) {
    throw RestError.invalidRange({ kind: isEmptyRange(headerRange) ? 'lower-gt-upper' : 'negative-limit' });
  }
  if (method === 'PUT' && !isAllRows(combined)) {
    throw new RestError(400, 'PGRST114', 'limit/offset querystring parameters are not allowed for PUT');
  }
  return combined;
}

/** `db-max-rows`: caps a read range (limit=0 stays). */
export function capRange(r: RowRange, maxRows: bigint | null): RowRange {
  if (maxRows === null) return r;
  return hasLimitZero(r) ? LIMIT_ZERO : restrictRange(maxRows, r);
}

export function contentRange(lower: bigint, upper: bigint, total: bigint | null): string {
  const range = total !== 0n && lower <= upper ? `${lower}-${upper}` : '*';
  return `${range}/${total === null ? '*' : total}`;
}

/** Status and Content-Range of a read: 206 when the page is smaller than the total, 416 past the end. */
export function readStatus(range: RowRange, pageTotal: bigint, total: bigint | null): { status: number; contentRange: string } {
  const lower = range.offset;
  const upper = lower + pageTotal - 1n;
  let status = 200;
  if (total !== null) {
    if (lower > total) status = 416;
    else if (1n + upper - lower < total) status = 206;
  }
  return { status, contentRange: contentRange(lower, upper, total) };
}
