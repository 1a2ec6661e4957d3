/**
 * The query string of a REST request, parsed as PostgREST's QueryParams.parse: reserved keys (`select`, `order`,
 * `limit`, `offset`, `or`, `and`, `columns`, `on_conflict`, also prefixed by an embed path) and filters. Errors are
 * PGRST100 with PostgREST's message and details; every input is bounded first (see ../limits.ts).
 */
import type { EmbedPath, Filter, LogicTree, OpExpr, OrderTerm, QueryParams, RowRange, SelectItem } from './ast.js';
import { NestingTooDeep } from './bounds.js';
import { filterExpr, logicPath, logicTree, treePath } from './filters.js';
import { fieldName, lexeme } from './lexical.js';
import { orderTerms } from './order.js';
import { alt, char, type Parser, pure, runParser, sepBy1 } from './parsec.js';
import { rangeFromParams } from './range.js';
import { selectForest } from './select.js';
import { fastSelect } from './select-fast.js';
import { fastFilterExpr, fastOrder, fastTreePath } from './params-fast.js';
import { RestError } from '../errors.js';
import { MAX_FILTERS, MAX_QUERY_BYTES, MAX_QUERY_PARAMS, MAX_SELECT_ITEMS } from '../limits.js';

export type QueryPair = [key: string, value: string | null];

const decoder = new TextDecoder('utf-8', { fatal: false });

/** Percent-decoding as http-types' urlDecode: `+` is a space, malformed escapes stay as they are. */
function urlDecode(s: string): string {
  if (!/[%+]/.test(s)) return s; // nothing to decode (the common case): the text as it is
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let k = 0; k < raw.length; k++) {
    const b = raw[k];
    if (b === 0x2b) bytes.push(0x20);
    else if (b === 0x25 && k + 2 < raw.length + 0 && isHex(raw[k + 1]) && isHex(raw[k + 2])) {
      bytes.push(parseInt(String.fromCharCode(raw[k + 1], raw[k + 2]), 16));
      k += 2;
    } else bytes.push(b);
  }
  return decoder.decode(Uint8Array.from(bytes));
}

const isHex = (b: number | undefined): boolean =>
  b !== undefined && ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66));

/**
 * Splits a raw query string (with or without the leading `?`) on `&` and `;` into decoded pairs; a key without `=`
 * has a null value. Throws PGRST100 over MAX_QUERY_BYTES or MAX_QUERY_PARAMS.
 */
export function parseQueryString(raw: string): QueryPair[] {
  const qs = raw.startsWith('?') ? raw.slice(1) : raw;
  const bytes = Buffer.byteLength(qs, 'utf8');
  if (bytes > MAX_QUERY_BYTES) {
    throw RestError.queryParam('Query string too long', `The query string has ${bytes} bytes; the limit is ${MAX_QUERY_BYTES}.`);
  }
  if (qs === '') return [];
  const parts = qs.split(/[&;]/);
  if (parts.length > MAX_QUERY_PARAMS) {
    throw RestError.queryParam('Too many query parameters', `The query string has ${parts.length} parameters; the limit is ${MAX_QUERY_PARAMS}.`);
  }
  return parts.map((part): QueryPair => {
    const eq = part.indexOf('=');
    return eq < 0 ? [urlDecode(part), null] : [urlDecode(part.slice(0, eq)), urlDecode(part.slice(eq + 1))];
  });
}

function parseWith<T>(p: Parser<T>, source: string, input: string): T {
  let r;
  try {
    r = runParser(p, source, input);
  } catch (err) {
    if (err instanceof NestingTooDeep) throw err.restError;
    throw err;
  }
  if (!r.ok) throw RestError.queryParam(r.failure.message, r.failure.details);
  return r.value;
}

const lastSegment = (key: string): string => key.slice(key.lastIndexOf('.') + 1);
const RESERVED = new Set(['select', 'columns', 'on_conflict']);
const RESERVED_EMBEDDABLE = new Set(['order', 'limit', 'offset', 'and', 'or']);
const columnList: Parser<string[]> = sepBy1(fieldName, lexeme(char(',')));

export interface ParseOptions {
  /** GET/HEAD on /rpc/fn: a parameter without an operator is a function argument. */
  rpcRead?: boolean;
}

function countSelectItems(items: readonly SelectItem[]): number {
  return items.reduce((n, item) => n + 1 + (item.type === 'field' ? 0 : countSelectItems(item.children)), 0);
}

function countConditions(tree: LogicTree): number {
  return tree.type === 'filter' ? 1 : tree.children.reduce((n, c) => n + countConditions(c), 0);
}

/** Parses decoded query pairs into QueryParams. Throws RestError (PGRST100) on the first bad parameter. */
export function parseQueryParams(pairs: readonly QueryPair[], options: ParseOptions = {}): QueryParams {
  if (pairs.length > MAX_QUERY_PARAMS) {
    throw RestError.queryParam('Too many query parameters', `The query string has ${pairs.length} parameters; the limit is ${MAX_QUERY_PARAMS}.`);
  }
  const nonEmpty = pairs.filter((p): p is [string, string] => p[1] !== null);
  const lookup = (name: string): string | null | undefined => pairs.find((p) => p[0] === name)?.[1];

  const order: Array<{ path: EmbedPath; terms: OrderTerm[] }> = [];
  for (const [k, v] of nonEmpty.filter(([k]) => lastSegment(k) === 'order')) {
    const { path } = fastTreePath(k) ?? parseWith(treePath, `failed to parse tree path (${k})`, k);
    order.push({ path, terms: fastOrder(v) ?? parseWith(orderTerms, `failed to parse order (${v})`, v) });
  }

  const logic: Array<{ path: EmbedPath; tree: LogicTree }> = [];
  for (const [k, v] of nonEmpty.filter(([k]) => ['and', 'or'].includes(lastSegment(k)))) {
    const { path, op } = parseWith(logicPath, `failed to parse logic path (${k})`, k);
    logic.push({ path, tree: parseWith(logicTree, `failed to parse logic tree (${v})`, `${op}${v}`) });
  }

  const columnsText = lookup('columns');
  const columns = columnsText == null ? undefined : parseWith(columnList, `failed to parse columns parameter (${columnsText})`, columnsText);

  const selectText = lookup('select') ?? '*';
  const select = fastSelect(selectText) ?? parseWith(selectForest, `failed to parse select parameter (${selectText})`, selectText);

  const filters: Array<{ path: EmbedPath; filter: Filter }> = [];
  const rpcArguments: QueryParams['rpcArguments'] = [];
  const filterPairs = nonEmpty.filter(([k]) => !RESERVED_EMBEDDABLE.has(lastSegment(k)) && !RESERVED.has(k));
  // On a GET rpc call a value that is not an operator expression is an argument (`pOpExpr <|> pure NoOpExpr`):
  // one that starts like an operator and then fails is still an error.
  const valueParser: Parser<OpExpr | null> = options.rpcRead ? alt<OpExpr | null>(filterExpr, pure(null)) : filterExpr;
  for (const [k, v] of filterPairs) {
    const { path, field } = fastTreePath(k) ?? parseWith(treePath, `failed to parse tree path (${k})`, k);
    const expr = fastFilterExpr(v) ?? parseWith(valueParser, `failed to parse filter (${v})`, v);
    if (expr === null) rpcArguments.push({ name: field.name, value: v });
    else filters.push({ path, filter: { field, expr } });
  }

  const onConflictText = lookup('on_conflict');
  const onConflict =
    onConflictText == null ? undefined : parseWith(columnList, `failed to parse on_conflict parameter (${onConflictText})`, onConflictText);

  const ranges = new Map<string, { path: EmbedPath; range: RowRange }>();
  const limitKeys = new Map<string, { limit?: string; offset?: string }>();
  for (const [k, v] of nonEmpty) {
    const last = lastSegment(k);
    if (last !== 'limit' && last !== 'offset') continue;
    const key = `${k.slice(0, k.length - last.length)}limit`;
    const entry = limitKeys.get(key) ?? {};
    entry[last] = v; // later duplicates win, as HashMap.fromList
    limitKeys.set(key, entry);
  }
  for (const [key, { limit, offset }] of limitKeys) {
    const { path } = fastTreePath(key) ?? parseWith(treePath, `failed to parse tree path (${key})`, key);
    ranges.set(path.join('.'), { path, range: rangeFromParams(limit, offset) });
  }

  const conditionCount = filters.length + logic.reduce((n, l) => n + countConditions(l.tree), 0);
  if (conditionCount > MAX_FILTERS) {
    throw RestError.queryParam('Too many filters', `The request has ${conditionCount} filter conditions; the limit is ${MAX_FILTERS}.`);
  }
  const selectItems = countSelectItems(select);
  if (selectItems > MAX_SELECT_ITEMS) {
    throw RestError.queryParam('Too many select items', `The select parameter has ${selectItems} items; the limit is ${MAX_SELECT_ITEMS}.`);
  }

  return {
    select,
    filters,
    logic,
    order,
    ranges,
    ...(columns !== undefined ? { columns } : {}),
    ...(onConflict !== undefined ? { onConflict } : {}),
    rpcArguments,
    filterFields: filterPairs.map(([k]) => k),
  };
}
