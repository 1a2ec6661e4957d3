/**
 * The `filter` string of a postgres_changes binding: `col=op.value`, comma-separated conditions ANDed, optional
 * `not.` before the operator. Parsing follows upstream's subscription parser (§6.1):
 *
 * - the string is trimmed; empty means no filter;
 * - it is split on commas outside parentheses and outside double quotes, where a quote only opens right after
 *   `.`, `(` or `,` and a backslash inside quotes escapes the next character;
 * - each trimmed segment must be non-empty, splits on its first `=`, then an optional `not.`, then the first `.`;
 * - `in` needs `(...)` and becomes the Postgres array literal `{...}` (evaluated by casting to `<type>[]`);
 * - any other value wrapped whole in double quotes loses them, with `\x` -> `x` inside; a value with text after the
 *   closing quote, or an unterminated quote, is kept literally.
 *
 * Errors carry upstream's text after `Error parsing \`filter\` params: ` - an Elixir-inspected list of the parts
 * that did not form a filter (`["wrong"]`, `["foo", "hey"]`) or one of the two messages below.
 */
import { inspectList } from './elixir-inspect.js';

export const FILTER_OPS = [
  'eq',
  'neq',
  'lt',
  'lte',
  'gt',
  'gte',
  'in',
  'like',
  'ilike',
  'is',
  'match',
  'imatch',
  'isdistinct',
] as const;

export type FilterOp = (typeof FILTER_OPS)[number];

/** One condition, in upstream's stored shape (column, op, value, negate); `in` values are `{a,b}` literals. */
export interface Filter {
  readonly column: string;
  readonly op: FilterOp;
  readonly value: string;
  readonly negate: boolean;
}

export type FilterParseResult = { ok: true; filters: Filter[] } | { ok: false; reason: string };

export const EMPTY_SEGMENT_REASON = 'filter must not contain empty segments (check for extra commas)';
export const IN_PARENS_REASON = '`in` filter value must be wrapped by parentheses';

const OPS = new Set<string>(FILTER_OPS);

export function isFilterOp(op: string): op is FilterOp {
  return OPS.has(op);
}

/** The full upstream message for a parse failure reason. */
export function filterErrorMessage(reason: string): string {
  return `Error parsing \`filter\` params: ${reason}`;
}

export function parseFilters(filter: string): FilterParseResult {
  const trimmed = filter.trim();
  if (trimmed === '') return { ok: true, filters: [] };
  const filters: Filter[] = [];
  for (const segment of splitTopLevel(trimmed)) {
    const parsed = parseSegment(segment);
    if ('reason' in parsed) return { ok: false, reason: parsed.reason };
    filters.push(parsed);
  }
  return { ok: true, filters };
}

/** Commas split segments only outside parentheses and quoted values. */
export function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let depth = 0;
  let quoted = false;
  let prev = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '\\' && i + 1 < text.length) {
        current += c + text[i + 1];
        prev = text[i + 1]!;
        i++;
        continue;
      }
      if (c === '"') quoted = false;
      current += c;
      prev = c;
      continue;
    }
    if (c === '"' && (prev === '.' || prev === '(' || prev === ',')) quoted = true;
    else if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (c === ',' && depth === 0) {
      out.push(current);
      current = '';
      prev = '';
      continue;
    }
    current += c;
    prev = c;
  }
  out.push(current);
  return out;
}

function parseSegment(segment: string): Filter | { reason: string } {
  const trimmed = segment.trim();
  if (trimmed === '') return { reason: EMPTY_SEGMENT_REASON };
  const eq = trimmed.indexOf('=');
  if (eq < 0) return { reason: inspectList([trimmed]) };
  const column = trimmed.slice(0, eq);
  let rest = trimmed.slice(eq + 1);
  let negate = false;
  if (rest.startsWith('not.')) {
    negate = true;
    rest = rest.slice(4);
  }
  const dot = rest.indexOf('.');
  if (dot < 0) return { reason: inspectList([rest]) };
  const op = rest.slice(0, dot);
  const raw = rest.slice(dot + 1);
  if (!isFilterOp(op)) return { reason: inspectList([op, raw]) };
  if (op === 'in') {
    if (raw.length < 2 || raw[0] !== '(' || raw[raw.length - 1] !== ')') return { reason: IN_PARENS_REASON };
    return { column, op, value: `{${raw.slice(1, -1)}}`, negate };
  }
  return { column, op, value: unquoteValue(raw), negate };
}

/** PostgREST-style quoting: only a value quoted as a whole is unquoted; otherwise it stays as written. */
export function unquoteValue(raw: string): string {
  if (raw[0] !== '"') return raw;
  let out = '';
  for (let i = 1; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\') {
      if (i + 1 >= raw.length) return raw;
      out += raw[++i];
    } else if (c === '"') {
      return i === raw.length - 1 ? out : raw;
    } else out += c;
  }
  return raw;
}

/**
 * A filter string that parses back to exactly these filters. Values are quoted whenever reading them bare could
 * change them (separators, parentheses, quotes, backslashes, edge whitespace). `in` values are printed from their
 * array literal, so they round-trip when the literal came from parsing or from {@link inList}.
 */
export function printFilters(filters: readonly Filter[]): string {
  return filters.map(printFilter).join(',');
}

export function printFilter(f: Filter): string {
  const prefix = `${f.column}=${f.negate ? 'not.' : ''}${f.op}.`;
  if (f.op === 'in') return `${prefix}(${f.value.slice(1, -1)})`;
  return prefix + (needsQuotes(f.value) ? quoteValue(f.value) : f.value);
}

function needsQuotes(value: string): boolean {
  return value === '' || /[,()"\\]/.test(value) || value.trim() !== value;
}

export function quoteValue(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The `{...}` literal for an `in` list of plain values, quoting elements as array_in expects. */
export function inList(values: ReadonlyArray<string | null>): string {
  const parts = values.map((v) =>
    v === null ? 'NULL' : /^$|[{}",\\\s()]|^null$/i.test(v) ? `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"` : v,
  );
  return `{${parts.join(',')}}`;
}

/**
 * Upstream stores filters sorted (column, op, value, negate) so identical subscriptions de-duplicate whatever order
 * they were written in; this key is equal for such filter sets.
 */
export function filtersKey(filters: readonly Filter[]): string {
  return filters
    .map((f) => JSON.stringify([f.column, f.op, f.value, f.negate]))
    .sort()
    .join('\u0000');
}
